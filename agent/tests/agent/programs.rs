//! The real programs for the end-to-end tests: a ward-collector (the built binary from the shared
//! target folder; `cargo build --workspace --bins` runs before the tests) and ward-agent itself.
//! Everything started here is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Path of a built program of this workspace.
pub fn program(name: &str) -> PathBuf {
    if name == "ward-agent" {
        return PathBuf::from(env!("CARGO_BIN_EXE_ward-agent"));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A desktop test's agent configuration: the notice shows for a second (so tests see it go) and a
/// pause of half a second confirms a phrase typed last.
pub const QUICK_NOTICE: &str = "[monitor]\nnotice_seconds = 1\nidle_flush_ms = 500\n";

/// Whether a stored alert came from typing.
pub fn keyboard(alert: &Value) -> bool {
    alert["source"] == "keyboard"
}

/// Polls `check` until it returns `Some`, failing after `secs` seconds.
pub fn wait_for<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running ward-collector with its own data folder.
pub struct Collector {
    pub data: PathBuf,
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Collector {
    /// Starts a collector on a free port in `data`.
    pub fn start(data: &Path) -> Collector {
        Self::start_on(data, 0)
    }

    /// Starts a collector on `port` (0: any free port) in `data`.
    pub fn start_on(data: &Path, port: u16) -> Collector {
        std::fs::create_dir_all(data).unwrap();
        let log = data.with_extension(format!("log{}", std::process::id()));
        let child = Command::new(program("ward-collector"))
            .args(["--data-dir"])
            .arg(data)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--log-format",
                "json",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("ward-collector starts");
        let port = wait_for(
            &format!("the collector to listen ({})", log.display()),
            60,
            || {
                let text = std::fs::read_to_string(&log).ok()?;
                text.lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find(|v| v["message"] == "ward-collector listening")
                    .and_then(|v| v["listen"].as_str()?.rsplit_once(':')?.1.parse().ok())
            },
        );
        Collector {
            data: data.to_path_buf(),
            port,
            child: Some(child),
            log,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA agents pin.
    pub fn ca(&self) -> PathBuf {
        self.data.join("ca.pem")
    }

    /// A fresh enrolment token.
    pub fn token(&self) -> String {
        let out = Command::new(program("ward-collector"))
            .args(["token", "create", "--data-dir"])
            .arg(&self.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Every stored alert.
    pub fn alerts(&self) -> Vec<Value> {
        self.list("alerts")
    }

    /// Every enrolled device, as `ward-collector devices --json` lists them.
    pub fn devices(&self) -> Vec<Value> {
        self.list("devices")
    }

    /// `ward-collector notices --json`: one object per user seen in a monitored session.
    pub fn notices(&self) -> Vec<Value> {
        self.list("notices")
    }

    /// The JSON lines `ward-collector <command> --json` prints for this collector's data.
    fn list(&self, command: &str) -> Vec<Value> {
        let out = Command::new(program("ward-collector"))
            .args([command, "--json", "--data-dir"])
            .arg(&self.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until an alert matching `pick` is stored, and returns it.
    pub fn wait_alert(&self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        wait_for(what, 60, || self.alerts().into_iter().find(|a| pick(a)))
    }

    /// The stored screenshot of an alert, decoded: (width, height).
    pub fn screenshot_size(&self, alert: &Value) -> (u32, u32) {
        let sha = alert["screenshot_sha256"]
            .as_str()
            .expect("has a screenshot");
        let path = self
            .data
            .join("screenshots")
            .join(&sha[..2])
            .join(format!("{sha}.png"));
        let bytes = std::fs::read(&path).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buf).expect("decodes");
        (frame.width, frame.height)
    }

    /// Stops it (it can be started again on the same data and port).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A ward-agent state folder and configuration, and the running service when started.
pub struct Agent {
    pub dir: PathBuf,
    pub config: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// Writes a configuration for `collector_url` with `extra` TOML appended, in `dir`.
    pub fn new(dir: &Path, collector_url: &str, extra: &str) -> Agent {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("agent.toml");
        let wordlists = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wordlists");
        std::fs::write(
            &config,
            format!(
                "collector = \"{collector_url}\"\nwordlists = \"{}\"\nstate_dir = \"state\"\n{extra}",
                wordlists.display()
            ),
        )
        .unwrap();
        Agent {
            dir: dir.to_path_buf(),
            config,
            child: None,
        }
    }

    /// Runs a one-shot command (`enrol`, `send-test-alert`, `status`) and returns its output.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec![args[0], "--config", self.config.to_str().unwrap()];
        all.extend_from_slice(&args[1..]);
        Command::new(program("ward-agent"))
            .args(&all)
            .env_remove("DISPLAY")
            .output()
            .unwrap()
    }

    /// Enrols with `collector`.
    pub fn enrol(&self, collector: &Collector) {
        let out = self.command(&[
            "enrol",
            "--collector",
            &collector.url(),
            "--token",
            &collector.token(),
            "--ca",
            collector.ca().to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `ward-agent run` on `display` (or with no session) and waits until it monitors.
    pub fn run(&mut self, display: Option<&str>) {
        self.spawn(display);
        wait_for("the agent to start", 60, || {
            self.log().contains("ward-agent started").then_some(())
        });
    }

    /// Starts `ward-agent run` on `display` (or with no session) without waiting.
    pub fn spawn(&mut self, display: Option<&str>) {
        let log = std::fs::File::create(self.dir.join("agent.log")).unwrap();
        let mut cmd = Command::new(program("ward-agent"));
        cmd.args(["run", "--log-format", "json", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        match display {
            Some(d) => cmd.env("DISPLAY", d),
            None => cmd.env_remove("DISPLAY").arg("--no-session"),
        };
        self.child = Some(cmd.spawn().expect("ward-agent starts"));
    }

    /// Whether the started `run` is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// Starts the per-display session helper (`run --session-only`) beside the service; killed on drop.
    pub fn session_helper(&self, display: &str) -> KillOnDrop {
        let log = std::fs::File::create(self.dir.join("helper.log")).unwrap();
        let child = Command::new(program("ward-agent"))
            .args(["run", "--session-only", "--log-format", "json", "--config"])
            .arg(&self.config)
            .env("DISPLAY", display)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ward-agent starts");
        KillOnDrop(child)
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for the exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        child.wait().unwrap()
    }

    /// Alerts waiting in the spool.
    pub fn spool_depth(&self) -> usize {
        std::fs::read_dir(self.dir.join("state/spool"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".rec"))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// A child process killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}
