//! ward-resolver enrolled with a running ward-collector, driven with `dig` as a school's devices
//! would:
//! - policy comes only from the collector: a local edit is refused with a log line, a change that a
//!   second administrator approves in the review UI applies within seconds, a changed list file
//!   applies under the collector's policy, and the resolver keeps the collector's last copy and
//!   filters by it after a restart with the collector gone;
//! - an identity lease posted by an enrolled agent changes how that address is filtered within two
//!   seconds, and survives the collector going away;
//! - a high-risk block reaches the collector as one `dns` alert, also when the collector was down
//!   while it happened; alerts the collector refuses for good are kept aside without holding back
//!   later ones.

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
/// A BYOD phone, also unknown.
const PHONE: &str = "127.0.0.41";

/// The policy file on the resolver's disk (the bootstrap until the collector sends one).
const POLICY: &str = r#"
default_tier = "byod-strict"
[block_page]
ipv4 = "192.0.2.80"
[[lists]]
path = "games.txt"
category = "games"
[[lists]]
path = "harm.txt"
category = "self-harm"
[tiers.staff]
[tiers.pupil]
block = ["games", "self-harm"]
[tiers.byod-strict]
block = ["games", "self-harm"]
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

/// Runs a `ward-collector` administration command and returns its standard output.
fn collector_cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(program("ward-collector"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn token(config: &Path) -> String {
    collector_cli(config, &["token", "create", "--uses", "5"])
        .trim()
        .to_string()
}

/// What the resolver answers `name A` to `client`: an address, or the RCODE.
fn answer(resolver: SocketAddr, client: &str, name: &str) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", resolver.ip()))
        .args([
            "-p",
            &resolver.port().to_string(),
            "-b",
            client,
            "+time=3",
            "+tries=1",
        ])
        .args([name, "A"])
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
        .find(|l| l.starts_with(&format!("{name}.")) && l.contains("\tA\t"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("no answer")
        .to_string()
}

/// Polls until `check` holds, for at most `within`; says what it was waiting for otherwise.
fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: not within {within:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A test folder holding the policy, its lists, and both programs' configuration and state.
struct Site {
    dir: PathBuf,
    collector_config: PathBuf,
    state: PathBuf,
}

impl Site {
    fn new(name: &str, collector_extra: &str) -> Site {
        let dir = tempdir(name);
        let site = Site {
            collector_config: dir.join("collector.toml"),
            state: dir.join("resolver-state"),
            dir,
        };
        site.write("games.txt", "roblox.test\n");
        site.write("harm.txt", "cutting-forum.test\nproana-board.test\n");
        site.write("policy.toml", POLICY);
        site.write(
            "resolver.toml",
            "listen = [\"127.0.0.1:0\"]\nupstreams = [\"127.0.0.1:9\"]\npolicy = \"policy.toml\"\n",
        );
        site.collector_on("127.0.0.1:0", collector_extra);
        site
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    /// (Re)writes the collector's configuration for `listen`.
    fn collector_on(&self, listen: &str, extra: &str) {
        self.write(
            "collector.toml",
            &format!(
                "listen = \"{listen}\"\ndata_dir = \"collector-data\"\n\
                 [limits]\ndevice_requests_per_second = 1000.0\ndevice_request_burst = 1000.0\n\
                 [ui]\nblock_page_listen = \"none\"\n{extra}"
            ),
        );
    }

    /// Starts the collector; returns it with its HTTPS address.
    fn start_collector(&self) -> (Running, String) {
        let mut collector = Running::start({
            let mut c = Command::new(program("ward-collector"));
            c.args(["--log-format", "json", "--config"])
                .arg(&self.collector_config);
            c
        });
        let listening = collector.wait_for("ward-collector listening");
        let url = format!("https://{}", json_field(&listening, "listen"));
        (collector, url)
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("collector-data/ca.pem")
    }

    /// The technician enrols the resolver with the collector at `url`.
    fn enrol_resolver(&self, url: &str) {
        let out = Command::new(program("ward-resolver"))
            .args([
                "enrol",
                "--collector",
                url,
                "--token",
                &token(&self.collector_config),
                "--ca",
            ])
            .arg(self.ca())
            .arg("--state-dir")
            .arg(&self.state)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start_resolver(&self) -> (Running, SocketAddr) {
        let mut command = Command::new(program("ward-resolver"));
        command
            .args(["--log-format", "json", "--config"])
            .arg(self.dir.join("resolver.toml"))
            .arg("--state-dir")
            .arg(&self.state)
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
}

/// An administrator signed in to the review UI (curl with a cookie jar).
struct Admin {
    url: String,
    ca: PathBuf,
    jar: PathBuf,
}

impl Admin {
    /// Creates the account, signs in with its one-time password and sets a new one.
    fn sign_in(site: &Site, url: &str, name: &str) -> Admin {
        let one_time = collector_cli(
            &site.collector_config,
            &["user", "add", "--role", "admin", name],
        );
        let admin = Admin {
            url: url.to_string(),
            ca: site.ca(),
            jar: site.dir.join(format!("{name}.cookies")),
        };
        let csrf = admin.csrf("/login");
        let status = admin.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", "/"),
                ("name", name),
                ("password", one_time.trim()),
            ],
        );
        assert_eq!(status, 303, "sign-in of {name}");
        let csrf = admin.csrf("/account/password");
        let new = format!("{name}-long-enough-password-1");
        let status = admin.post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", one_time.trim()),
                ("new", &new),
                ("confirm", &new),
            ],
        );
        assert_eq!(status, 303, "password change of {name}");
        admin
    }

    fn curl(&self) -> Command {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "60", "--cacert"])
            .arg(&self.ca)
            .arg("-c")
            .arg(&self.jar)
            .arg("-b")
            .arg(&self.jar);
        c
    }

    fn get(&self, path: &str) -> String {
        let out = self
            .curl()
            .arg(format!("{}{path}", self.url))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// A hidden form field's value on the page at `path`.
    fn field(&self, path: &str, name: &str) -> String {
        let page = self.get(path);
        let marker = format!("name=\"{name}\" value=\"");
        page.split(&marker)
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no {name} field on {path}: {page}"))
            .to_string()
    }

    fn csrf(&self, path: &str) -> String {
        self.field(path, "csrf")
    }

    /// Posts a form; returns the HTTP status.
    fn post(&self, path: &str, form: &[(&str, &str)]) -> u16 {
        let mut c = self.curl();
        c.args(["-o", "/dev/null", "-w", "%{http_code}"]);
        for (k, v) in form {
            c.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        let out = c.arg(format!("{}{path}", self.url)).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// Proposes `policy` as the next revision; returns the change's page.
    fn propose(&self, policy: &str, reason: &str) -> String {
        let base = self.field("/policy", "base");
        let csrf = self.csrf("/policy");
        let mut c = self.curl();
        c.args(["-o", "/dev/null", "-w", "%{redirect_url}"]);
        for (k, v) in [
            ("csrf", csrf.as_str()),
            ("base", &base),
            ("policy", policy),
            ("reason", reason),
        ] {
            c.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        let out = c.arg(format!("{}/policy", self.url)).output().unwrap();
        let to = String::from_utf8_lossy(&out.stdout).to_string();
        let path = to.trim_start_matches(&self.url).to_string();
        assert!(
            path.starts_with("/policy/changes/"),
            "proposal refused: {to}"
        );
        path
    }
}

/// Posts a lease for `address` as an enrolled workstation agent would.
fn sign_in_pupil(site: &Site, url: &str, address: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ca_pem = std::fs::read_to_string(site.ca()).unwrap();
    let agent_token = token(&site.collector_config);
    runtime.block_on(async {
        let identity = Enrolment {
            collector: url.to_string(),
            token: agent_token,
            ca_pem,
            hostname: "ws-101".into(),
            os: "linux".into(),
            kind: DeviceKind::Agent,
            program_version: "test".into(),
        }
        .enrol(&site.dir.join("agent-state"))
        .await
        .unwrap();
        let client = Client::new(url, &identity).unwrap();
        let lease = IdentityLease {
            version: PROTOCOL_VERSION,
            addresses: vec![address.parse().unwrap()],
            user: "jsmith".into(),
            group: "pupil".into(),
            expires: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
        };
        client.send_lease(&lease).await.unwrap();
    });
}

#[test]
fn an_enrolled_resolver_takes_policy_and_leases_only_from_the_collector_and_keeps_them() {
    let site = Site::new(
        "resolver-enrolled",
        "totp_roles = []\npolicy_approval = true\n",
    );
    let (mut collector, url) = site.start_collector();
    site.enrol_resolver(&url);
    let (mut resolver, addr) = site.start_resolver();
    resolver.wait_for("subscribed to the collector stream");
    assert_eq!(
        answer(addr, LAPTOP, "roblox.test"),
        "NXDOMAIN",
        "unknown laptop: byod-strict from the bootstrap policy"
    );

    // Someone edits the resolver's own policy file to let games through: refused, and said so.
    site.write(
        "policy.toml",
        &POLICY.replace(
            "[tiers.byod-strict]\nblock = [\"games\", \"self-harm\"]",
            "[tiers.byod-strict]\nblock = [\"self-harm\"]",
        ),
    );
    resolver.wait_for("local policy change ignored");
    assert_eq!(answer(addr, LAPTOP, "roblox.test"), "NXDOMAIN");

    // A workstation agent reports the pupil signing in on the laptop.
    sign_in_pupil(&site, &url, LAPTOP);
    eventually(
        Duration::from_secs(2),
        "the pupil tier applies",
        || match answer(addr, LAPTOP, "roblox.test") {
            a if a == "192.0.2.80" => Ok(()),
            other => Err(other),
        },
    );

    // One administrator proposes a new block page; nothing changes until a second approves it.
    let alice = Admin::sign_in(&site, &url, "alice");
    let bob = Admin::sign_in(&site, &url, "bob");
    std::fs::create_dir_all(site.dir.join("social")).unwrap();
    site.write("social/apps.txt", "tiktok.test\n");
    let change = alice.propose(
        &format!(
            "{}\n[[lists]]\npath = \"social/apps.txt\"\ncategory = \"social-media\"\n",
            POLICY.replace("192.0.2.80", "192.0.2.99").replace(
                "[tiers.pupil]\nblock = [\"games\"",
                "[tiers.pupil]\nblock = [\"social-media\", \"games\""
            )
        ),
        "block page moved to the new web server; social media blocked for pupils",
    );
    assert_eq!(answer(addr, LAPTOP, "roblox.test"), "192.0.2.80");
    let csrf = bob.csrf(&change);
    assert_eq!(
        bob.post(&change, &[("csrf", &csrf), ("action", "approve")]),
        303
    );
    let approved = Instant::now();
    eventually(
        Duration::from_secs(5),
        "the approved change applies",
        || match answer(addr, LAPTOP, "roblox.test") {
            a if a == "192.0.2.99" => Ok(()),
            other => Err(other),
        },
    );
    eprintln!("approved change applied after {:?}", approved.elapsed());
    resolver.wait_for("policy change from the collector: block page");
    let saved =
        std::fs::read_to_string(site.state.join("collector-policy.toml")).expect("kept on disk");
    assert!(saved.contains("192.0.2.99"));

    assert_eq!(answer(addr, LAPTOP, "tiktok.test"), "192.0.2.99");

    // The school's list files are data, not policy: new entries apply under the collector's policy,
    // also in a folder that only the collector's policy names.
    for (file, text, name) in [
        (
            "social/apps.txt",
            "tiktok.test\nsnapchat.test\n",
            "snapchat.test",
        ),
        ("games.txt", "roblox.test\nfortnite.test\n", "fortnite.test"),
    ] {
        site.write(file, text);
        eventually(
            Duration::from_secs(10),
            "the list change applies",
            || match answer(addr, LAPTOP, name) {
                a if a == "192.0.2.99" => Ok(()),
                other => Err(other),
            },
        );
    }

    // The collector goes away: the resolver keeps filtering the same way, also after a restart,
    // by the collector's last policy and not the (edited) local file.
    collector.stop();
    assert_eq!(answer(addr, LAPTOP, "roblox.test"), "192.0.2.99");
    resolver.stop();
    let (mut resolver, addr) = site.start_resolver();
    resolver.wait_for("using the collector's last policy");
    assert_eq!(
        answer(addr, LAPTOP, "roblox.test"),
        "192.0.2.99",
        "policy and leases kept in the state dir"
    );
    assert_eq!(answer(addr, PHONE, "roblox.test"), "NXDOMAIN");
}

/// DNS alerts stored by the collector, as `ward-collector alerts --json` prints them (the
/// collector's own device alerts left out).
fn stored_alerts(site: &Site) -> Vec<serde_json::Value> {
    collector_cli(&site.collector_config, &["alerts", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|a| a["source"] != "device")
        .collect()
}

fn count_alerts(alerts: &[serde_json::Value], phrase: &str) -> usize {
    alerts.iter().filter(|a| a["phrase"] == phrase).count()
}

#[test]
fn a_high_risk_block_reaches_the_collector_once_even_when_it_was_down() {
    let site = Site::new("resolver-alerts", "");
    let (mut collector, url) = site.start_collector();
    site.enrol_resolver(&url);
    let (mut resolver, addr) = site.start_resolver();
    resolver.wait_for("subscribed to the collector stream");

    // A phone looks up a self-harm forum, twice (a retrying app): blocked, one alert.
    assert_eq!(answer(addr, PHONE, "www.cutting-forum.test"), "NXDOMAIN");
    assert_eq!(answer(addr, PHONE, "www.cutting-forum.test"), "NXDOMAIN");
    let mut alerts = Vec::new();
    eventually(Duration::from_secs(15), "the alert is stored", || {
        alerts = stored_alerts(&site);
        match count_alerts(&alerts, "cutting-forum.test") {
            0 => Err(format!("{alerts:?}")),
            _ => Ok(()),
        }
    });
    let alert = alerts
        .iter()
        .find(|a| a["phrase"] == "cutting-forum.test")
        .unwrap();
    assert_eq!(alert["source"], "dns", "{alert}");
    assert_eq!(alert["category"], "self-harm", "{alert}");
    assert_eq!(alert["screenshot"], false, "{alert}");
    assert_eq!(count_alerts(&alerts, "cutting-forum.test"), 1, "{alerts:?}");

    // The collector is down while another one is blocked: the alert waits on the resolver's disk.
    let port = url.rsplit(':').next().unwrap().to_string();
    collector.stop();
    assert_eq!(answer(addr, PHONE, "proana-board.test"), "NXDOMAIN");
    resolver.wait_for("alerts not delivered; will retry");

    // Back on the same address: delivered, and exactly once.
    site.collector_on(&format!("127.0.0.1:{port}"), "");
    let (_collector, _) = site.start_collector();
    eventually(
        Duration::from_secs(15),
        "the queued alert is delivered",
        || {
            alerts = stored_alerts(&site);
            let queued = ["queue.jsonl", "queue.sending.jsonl"]
                .iter()
                .any(|f| site.state.join("alerts").join(f).exists());
            match count_alerts(&alerts, "proana-board.test") {
                1 if !queued => Ok(()),
                n => Err(format!("{n} stored, queue left: {queued}")),
            }
        },
    );
    assert_eq!(count_alerts(&alerts, "cutting-forum.test"), 1, "{alerts:?}");
    assert_eq!(count_alerts(&alerts, "proana-board.test"), 1, "{alerts:?}");
    assert_eq!(alerts.len(), 2, "{alerts:?}");

    // The resolver is revoked at the collector: its alerts are refused for good, kept aside on its
    // disk for IT, and one refused batch does not hold back the next.
    let device = std::fs::read_to_string(site.state.join("device-id")).unwrap();
    collector_cli(&site.collector_config, &["device", "revoke", device.trim()]);
    let queue = site.state.join("alerts");
    for name in ["cutting-forum.test", "proana-board.test"] {
        assert_eq!(answer(addr, LAPTOP, name), "NXDOMAIN");
        eventually(
            Duration::from_secs(15),
            "the refused alert is set aside",
            || {
                let kept: String = std::fs::read_dir(&queue)
                    .unwrap()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("refused-"))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap())
                    .collect();
                match kept.contains(&format!("\"phrase\":\"{name}\"")) {
                    true => Ok(()),
                    false => Err(kept),
                }
            },
        );
    }
    resolver.wait_for("the collector refused these alerts; kept aside");
    assert_eq!(stored_alerts(&site).len(), 2);
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
