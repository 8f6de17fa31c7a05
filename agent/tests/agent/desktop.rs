//! A real X desktop for tests: Xvfb (started with `-noreset`), openbox as the window manager, and
//! xdotool to type as a pupil would. Everything started here is killed when the value drops.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running virtual X display with a window manager.
pub struct Desktop {
    /// `:N`, for `DISPLAY`.
    pub display: String,
    children: Vec<Child>,
}

impl Desktop {
    /// Starts Xvfb on a free display number and openbox on it, and waits until both are ready.
    pub fn start() -> Desktop {
        Self::start_with(true)
    }

    /// Starts Xvfb, with or without a window manager.
    pub fn start_with(window_manager: bool) -> Desktop {
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1920x1080x24",
                "-noreset",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (package xvfb)");
        let mut line = String::new();
        BufReader::new(xvfb.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("Xvfb prints its display number");
        let display = format!(":{}", line.trim());
        let mut desktop = Desktop {
            display,
            children: vec![xvfb],
        };
        if window_manager {
            let openbox = Command::new("openbox")
                .env("DISPLAY", &desktop.display)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("openbox runs (package openbox)");
            desktop.children.push(openbox);
            let display = desktop.display.clone();
            wait_until("openbox manages the screen", || {
                let out = Command::new("xprop")
                    .args(["-display", &display, "-root", "_NET_SUPPORTING_WM_CHECK"])
                    .output()
                    .expect("xprop runs (package x11-utils)");
                String::from_utf8_lossy(&out.stdout).contains("window id")
            });
        }
        desktop
    }

    /// Opens an xterm running `cat` with `title`, waits until it is the active window, returns its id.
    pub fn open_terminal(&mut self, title: &str) -> u64 {
        let child = Command::new("xterm")
            .args(["-display", &self.display, "-T", title, "-e", "cat"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xterm runs (package xterm)");
        self.children.push(child);
        let mut window = 0;
        wait_until("the terminal window appears", || {
            let out = self.xdotool(&["search", "--name", &format!("^{title}$")]);
            match out.lines().next().and_then(|l| l.trim().parse().ok()) {
                Some(id) => {
                    window = id;
                    true
                }
                None => false,
            }
        });
        self.xdotool(&["windowactivate", "--sync", &window.to_string()]);
        wait_until("the terminal is active", || {
            self.xdotool(&["getactivewindow"]).trim() == window.to_string()
        });
        window
    }

    /// Opens an xterm with no window manager running and gives it the input focus.
    pub fn open_terminal_unmanaged(&mut self, title: &str) -> u64 {
        let child = Command::new("xterm")
            .args(["-display", &self.display, "-T", title, "-e", "cat"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xterm runs (package xterm)");
        self.children.push(child);
        let mut window = 0;
        wait_until("the terminal window is mapped", || {
            let out = self.xdotool(&["search", "--onlyvisible", "--name", &format!("^{title}$")]);
            match out.lines().next().and_then(|l| l.trim().parse().ok()) {
                Some(id) => {
                    window = id;
                    true
                }
                None => false,
            }
        });
        self.xdotool(&["windowfocus", "--sync", &window.to_string()]);
        window
    }

    /// Types `text` into the focused window, at xdotool's default pace.
    pub fn type_text(&self, text: &str) {
        self.xdotool(&["type", "--delay", "12", text]);
    }

    /// Presses named keys (xdotool key names, e.g. `BackSpace`, `Return`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["key", "--delay", "12"];
        args.extend_from_slice(keys);
        self.xdotool(&args);
    }

    /// Sets a window's title (`WM_NAME` and `_NET_WM_NAME`).
    pub fn set_title(&self, window: u64, title: &str) {
        self.xdotool(&["set_window", "--name", title, &window.to_string()]);
    }

    /// Waits until `log` (the log of whichever process shows the notice) says the monitoring notice
    /// was shown and its window has closed again, so it no longer takes the keyboard focus.
    pub fn wait_notice_closed(&self, what: &str, log: impl Fn() -> String) {
        wait_until(what, || {
            log().contains("monitoring notice shown")
                && self
                    .xdotool(&["search", "--name", "^Monitoring notice$"])
                    .trim()
                    .is_empty()
        });
    }

    /// Runs xdotool on this display and returns its standard output.
    pub fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .expect("xdotool runs (package xdotool)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` until it holds, failing the test after a generous timeout.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
