//! ward-resolver enrolled with a running ward-collector: an identity lease posted by an enrolled
//! agent reaches the resolver through the collector's stream and changes how that address is
//! filtered within two seconds; stopping the collector changes nothing.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ward_collector_client::{Client, Enrolment};
use ward_protocol::{DeviceKind, IdentityLease, PROTOCOL_VERSION};
use ward_tests::program;

/// The laptop the pupil signs in on: unknown to the resolver's networks.
const LAPTOP: &str = "127.0.0.40";

const POLICY: &str = r#"
default_tier = "byod-strict"
[block_page]
ipv4 = "192.0.2.80"
[[lists]]
path = "games.txt"
category = "games"
[tiers.staff]
[tiers.pupil]
block = ["games"]
[tiers.byod-strict]
block = ["games"]
block_response = "nxdomain"
"#;

/// A child process killed on drop, with its standard error collected.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first log line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no log line with {needle:?}; got {:?}", self.seen),
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of `"key":"value"` in a JSON log line.
fn json_field(line: &str, key: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v[key].as_str().unwrap_or_default().to_string()
}

fn token(config: &Path) -> String {
    let out = Command::new(program("ward-collector"))
        .args(["token", "create", "--uses", "5", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// What the resolver answers `roblox.test A` from the laptop: an address, or the RCODE.
fn answer(resolver: SocketAddr) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", resolver.ip()))
        .args([
            "-p",
            &resolver.port().to_string(),
            "-b",
            LAPTOP,
            "+time=3",
            "+tries=1",
        ])
        .args(["roblox.test", "A"])
        .output()
        .expect("dig (dnsutils)");
    let text = String::from_utf8(out.stdout).unwrap();
    if let Some(status) = text.split("status: ").nth(1) {
        let status = status.split(',').next().unwrap_or_default();
        if status != "NOERROR" {
            return status.to_string();
        }
    }
    text.lines()
        .find(|l| l.starts_with("roblox.test.") && l.contains("\tA\t"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("no answer")
        .to_string()
}

fn start_resolver(dir: &Path, state: &Path) -> (Running, SocketAddr) {
    let mut command = Command::new(program("ward-resolver"));
    command
        .args(["--log-format", "json", "--config"])
        .arg(dir.join("resolver.toml"))
        .arg("--state-dir")
        .arg(state)
        .args(["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"]);
    let mut resolver = Running::start(command);
    let line = resolver.wait_for("listening on ");
    let addr = json_field(&line, "message")
        .split("listening on ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    (resolver, addr)
}

#[test]
fn a_lease_from_the_collector_sets_the_tier_within_two_seconds_and_survives_the_collector() {
    let dir = tempdir("resolver-enrolled");
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write("games.txt", "roblox.test\n");
    write("policy.toml", POLICY);
    write(
        "resolver.toml",
        "listen = [\"127.0.0.1:0\"]\nupstreams = [\"127.0.0.1:9\"]\npolicy = \"policy.toml\"\n",
    );
    write(
        "collector.toml",
        "listen = \"127.0.0.1:0\"\ndata_dir = \"collector-data\"\n\
         [limits]\ndevice_requests_per_second = 1000.0\ndevice_request_burst = 1000.0\n",
    );
    let collector_config = dir.join("collector.toml");
    let mut collector = Running::start({
        let mut c = Command::new(program("ward-collector"));
        c.args(["--log-format", "json", "--config"])
            .arg(&collector_config);
        c
    });
    let listening = collector.wait_for("ward-collector listening");
    let url = format!("https://{}", json_field(&listening, "listen"));
    let ca = dir.join("collector-data/ca.pem");

    // The technician enrols the resolver, then starts it.
    let state = dir.join("resolver-state");
    let out = Command::new(program("ward-resolver"))
        .args([
            "enrol",
            "--collector",
            &url,
            "--token",
            &token(&collector_config),
            "--ca",
        ])
        .arg(&ca)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut resolver, addr) = start_resolver(&dir, &state);
    resolver.wait_for("subscribed to the collector stream");
    assert_eq!(answer(addr), "NXDOMAIN", "unknown laptop: byod-strict");

    // A workstation agent, enrolled with its own token, reports the pupil signing in.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let agent_state = dir.join("agent-state");
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    let agent_token = token(&collector_config);
    let posted = runtime.block_on(async {
        let identity = Enrolment {
            collector: url.clone(),
            token: agent_token,
            ca_pem,
            hostname: "ws-101".into(),
            os: "linux".into(),
            kind: DeviceKind::Agent,
            program_version: "test".into(),
        }
        .enrol(&agent_state)
        .await
        .unwrap();
        let client = Client::new(&url, &identity).unwrap();
        let lease = IdentityLease {
            version: PROTOCOL_VERSION,
            addresses: vec![LAPTOP.parse().unwrap()],
            user: "jsmith".into(),
            group: "pupil".into(),
            expires: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
        };
        client.send_lease(&lease).await.unwrap();
        Instant::now()
    });
    loop {
        if answer(addr) == "192.0.2.80" {
            break;
        }
        assert!(
            posted.elapsed() < Duration::from_secs(2),
            "the pupil tier did not apply within 2 s: {}",
            answer(addr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The collector goes away: the resolver keeps filtering the same way, also after a restart.
    collector.stop();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(answer(addr), "192.0.2.80");
    resolver.stop();
    let (_resolver, addr) = start_resolver(&dir, &state);
    assert_eq!(answer(addr), "192.0.2.80", "leases kept in the state dir");
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
