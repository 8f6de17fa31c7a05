//! Password fields found through the accessibility bus: a session D-Bus and the AT-SPI bus beside the
//! X desktop, real GTK 3 dialogs (`dialog.py` beside this file), and the agent against a running collector. A phrase typed
//! into a password field raises nothing, before and after a switch to another window; the same
//! phrase typed into a terminal or a plain entry raises an alert.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::desktop::{wait_until, Desktop};
use crate::programs::{keyboard, Agent, Collector, QUICK_NOTICE};

/// Where Debian's at-spi2-core installs the accessibility bus launcher.
const LAUNCHER: &str = "/usr/libexec/at-spi-bus-launcher";

/// A desktop session's buses: a session D-Bus and the accessibility bus its launcher starts (which
/// publishes its address on the X root window as `AT_SPI_BUS`). Killed, with everything they
/// started, when dropped.
struct Buses {
    session: String,
    runtime_dir: PathBuf,
    groups: Vec<Child>,
}

impl Buses {
    fn start(display: &str, runtime_dir: &Path) -> Buses {
        for (program, package) in [
            ("dbus-daemon", "dbus-daemon"),
            (LAUNCHER, "at-spi2-core"),
            ("/usr/bin/python3", "python3"),
        ] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                found,
                "{program} is missing: install the Debian package {package} (tests/packages.txt)"
            );
        }
        let gtk = Command::new("/usr/bin/python3")
            .args(["-c", "import gi; gi.require_version('Gtk', '3.0')"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            gtk,
            "GTK 3 for Python is missing: install the Debian packages python3-gi and \
             gir1.2-gtk-3.0 (tests/packages.txt)"
        );
        std::fs::create_dir_all(runtime_dir).unwrap();
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .env("DISPLAY", display)
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("dbus-daemon runs (package dbus-daemon)");
        let mut session = String::new();
        BufReader::new(daemon.stdout.take().expect("piped"))
            .read_line(&mut session)
            .expect("dbus-daemon prints its address");
        let session = session.trim().to_string();
        assert!(session.starts_with("unix:"), "session bus: {session:?}");
        let mut buses = Buses {
            session,
            runtime_dir: runtime_dir.to_path_buf(),
            groups: vec![daemon],
        };
        let launcher = Command::new(LAUNCHER)
            .arg("--launch-immediately")
            .env("DISPLAY", display)
            .env("DBUS_SESSION_BUS_ADDRESS", &buses.session)
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("at-spi-bus-launcher runs (package at-spi2-core)");
        buses.groups.push(launcher);
        wait_until("the accessibility bus publishes its address", || {
            let out = Command::new("xprop")
                .args(["-display", display, "-root", "AT_SPI_BUS"])
                .output()
                .expect("xprop runs (package x11-utils)");
            String::from_utf8_lossy(&out.stdout).contains("unix:")
        });
        buses
    }

    /// Opens a GTK dialog (`dialog.py`) on `desktop` with this session's buses and accessibility
    /// left on.
    fn dialog(&self, desktop: &Desktop, args: &[&str]) -> KillGroup {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent/dialog.py");
        let child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(args)
            .env("DISPLAY", &desktop.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.session)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            // Settings from memory: no dconf service is started on the test's session bus.
            .env("GSETTINGS_BACKEND", "memory")
            .env_remove("NO_AT_BRIDGE")
            .env_remove("GTK_A11Y")
            .env_remove("GTK_MODULES")
            .env_remove("AT_SPI_BUS")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("the GTK dialog runs (packages python3-gi, gir1.2-gtk-3.0)");
        KillGroup(child)
    }
}

impl Drop for Buses {
    fn drop(&mut self) {
        for child in self.groups.drain(..).rev() {
            drop(KillGroup(child));
        }
    }
}

/// A process and everything it started (its process group), killed when dropped.
struct KillGroup(Child);

impl Drop for KillGroup {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

/// Waits until a window titled exactly `title` is the active window.
fn wait_active(desktop: &Desktop, title: &str) {
    wait_until(&format!("\"{title}\" is the active window"), || {
        let active = desktop.xdotool(&["getactivewindow"]);
        let active = active.trim();
        !active.is_empty() && desktop.xdotool(&["getwindowname", active]).trim() == title
    });
}

#[test]
fn a_phrase_typed_into_a_password_field_is_not_read_and_in_an_entry_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(&tmp.path().join("collector"));
    let mut agent = Agent::new(&tmp.path().join("agent"), &collector.url(), QUICK_NOTICE);
    agent.enrol(&collector);
    let mut desktop = Desktop::start();
    let buses = Buses::start(&desktop.display, &tmp.path().join("runtime"));
    agent.run(Some(&desktop.display));
    wait_until("the agent listens on the accessibility bus", || {
        agent
            .log()
            .contains("password fields are recognised through the accessibility bus")
    });
    desktop.wait_notice_closed("the monitoring notice closes", || agent.log());

    // A sign-in dialog whose title does not say "password": only the field's role tells.
    let mut sign_in = buses.dialog(&desktop, &["--password", "--title", "Sign in"]);
    wait_active(&desktop, "Sign in");
    let what = "the agent knows the password field has the focus (GTK publishes it through \
                libatk-bridge2.0-0)";
    wait_until(what, || {
        agent
            .log()
            .contains("a password field has the focus; typing there is not read")
    });
    desktop.type_text("i will kill myself ");

    // A terminal reports nothing on the accessibility bus: typing there is read again at once.
    desktop.open_terminal("Chat");
    desktop.type_text("i will kill myself ");
    desktop.keys(&["Return"]);
    let chat = collector.wait_alert("the phrase typed into the terminal", keyboard);
    assert_eq!(chat["window_title"], "Chat", "{chat:#}");

    // Back to the dialog: its field has the focus again, and is still not read.
    let dialog = desktop.xdotool(&["search", "--name", "^Sign in$"]);
    let dialog = dialog.lines().next().expect("the dialog is open").trim();
    desktop.xdotool(&["windowactivate", "--sync", dialog]);
    wait_active(&desktop, "Sign in");
    desktop.type_text("i will kill myself ");
    desktop.keys(&["Return"]);
    // Return submits the dialog.
    let exited = sign_in.0.wait().unwrap();
    assert!(exited.success(), "dialog.py --password: {exited}");

    // The same phrase in a plain entry is read.
    let _notes = buses.dialog(&desktop, &["--title", "Notes"]);
    wait_active(&desktop, "Notes");
    desktop.type_text("i will kill myself ");
    desktop.keys(&["Return"]);
    let alert = collector.wait_alert("the phrase typed into the entry", |a| {
        keyboard(a) && a["window_title"] == "Notes"
    });
    assert_eq!(alert["application"], "python3", "{alert:#}");
    // Keys are handled in order: the password's keys were long seen, and raised nothing.
    std::thread::sleep(Duration::from_millis(500));
    let titles: Vec<String> = collector
        .alerts()
        .iter()
        .filter(|a| keyboard(a))
        .map(|a| a["window_title"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles.iter().all(|t| t == "Chat" || t == "Notes"),
        "{titles:?}"
    );
    assert!(!agent.log().contains("kill myself"));
}
