//! The Debian packages as a school's technician meets them: build the amd64 packages with the real
//! packaging script, install them with dpkg, start each program from its unit's `ExecStart=` line as
//! the unit's user (systemd is not PID 1 on the test machine), check that the collector answers over
//! TLS with its own CA and that the resolver filters, upgrade with a broken configuration (dpkg must
//! fail naming the file and line while the running resolver keeps answering), then purge and check
//! that nothing is left beyond what the purge policy keeps.
//!
//! Installing packages needs root and a machine that may be changed: CI runs as root on a throwaway
//! machine. Elsewhere (not root, or Ward already installed for real) the test says so and returns.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_tests::repo_root;

const PACKAGES: [&str; 3] = ["ward-resolver", "ward-collector", "ward-agent"];
/// The address the fake upstream gives every name it is asked for (TEST-NET-1).
const UPSTREAM_ANSWER: [u8; 4] = [192, 0, 2, 53];

#[test]
fn debian_packages_install_serve_upgrade_and_purge() {
    let Some(_lock) = InstallLock::acquire() else {
        return;
    };
    let work = scratch_dir("install");
    let version = workspace_version();
    let upgrade = format!("{version}+upgrade1");
    let v1 = build_debs(&work.join("v1"), &version, true);
    let v2 = build_debs(&work.join("v2"), &upgrade, false);
    lintian_reports_no_errors(&v1);

    dpkg(&["-i"], &v1).expect_success("install the packages");
    installed_layout_is_right();

    let upstream = FakeUpstream::start();
    let collector_port = free_port();
    set_collector_listen(collector_port);
    let mut collector = start_from_unit("ward-collector", &[]);
    collector_answers_with_its_own_ca(&mut collector, collector_port);

    let dns_port = free_port();
    let listen = format!("127.0.0.1:{dns_port}");
    let upstream_arg = upstream.addr.to_string();
    let mut resolver = start_from_unit(
        "ward-resolver",
        &["--listen", &listen, "--upstream", &upstream_arg],
    );
    resolver_filters(&mut resolver, dns_port);

    let mut agent = workstation_enrols_and_delivers_a_test_alert(collector_port);

    a_broken_config_fails_the_upgrade_and_leaves_the_service_running(&v2, &mut resolver, dns_port);
    edited_conffiles_survive_an_upgrade(&v2, collector_port);

    assert!(
        agent.is_running(),
        "the agent kept running: {}",
        agent.log()
    );
    drop(agent);
    drop(resolver);
    drop(collector);
    purge_keeps_only_what_the_policy_keeps();
    purge_removes_the_data_when_asked(&v1);
    let _ = std::fs::remove_dir_all(&work);
}

/// The BYOD gateway: the static aarch64 resolver built with the gateway profile, run under
/// qemu-user with the shipped gateway configuration, filters what dig asks: an unknown client is
/// byod-strict, a client in the staff wifi range gets the staff tier.
#[test]
fn gateway_build_filters_under_qemu() {
    for tool in ["qemu-aarch64-static", "aarch64-linux-gnu-gcc"] {
        if !run(Command::new("which").arg(tool)).status.success() {
            eprintln!("gateway test: {tool} is not installed (tests/packages.txt); skipped");
            return;
        }
    }
    // The Rust target comes from rustup, not a package registry: where it cannot be had, say so.
    let target = "aarch64-unknown-linux-musl";
    let installed = run(Command::new("rustup").args(["target", "list", "--installed"])).text();
    if !installed.lines().any(|l| l.trim() == target)
        && !run(Command::new("rustup").args(["target", "add", target]))
            .status
            .success()
    {
        eprintln!("gateway test: rustup cannot install {target} here; skipped");
        return;
    }
    let work = scratch_dir("gateway");
    let built = run(niced(&repo_root().join("packaging/build-gateway"))
        .args(["--target", "aarch64", "--out"])
        .arg(&work))
    .expect_success("packaging/build-gateway");
    let binary = work.join("ward-resolver-aarch64");
    assert!(
        built.text().contains("ward-resolver-aarch64"),
        "{}",
        built.text()
    );

    // The shipped gateway files, with loopback's 127.0.0.2 standing in for the staff wifi.
    let etc = work.join("etc");
    std::fs::create_dir_all(etc.join("lists")).unwrap();
    let config = repo_root().join("config");
    for file in ["gateway.toml", "gateway-policy.toml"] {
        std::fs::copy(config.join(file), etc.join(file)).unwrap();
    }
    for list in std::fs::read_dir(config.join("lists")).unwrap() {
        let list = list.unwrap().path();
        std::fs::copy(&list, etc.join("lists").join(list.file_name().unwrap())).unwrap();
    }
    let mut policy = std::fs::OpenOptions::new()
        .append(true)
        .open(etc.join("gateway-policy.toml"))
        .unwrap();
    writeln!(
        policy,
        "\n[[networks]]\nname = \"staff wifi (test)\"\ncidr = \"127.0.0.2/32\"\ntier = \"staff\""
    )
    .unwrap();

    let upstream = FakeUpstream::start();
    let port = free_port();
    let mut cmd = Command::new("qemu-aarch64-static");
    cmd.arg(&binary)
        .arg("--config")
        .arg(etc.join("gateway.toml"))
        .arg("--state-dir")
        .arg(work.join("state"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--upstream", &upstream.addr.to_string()]);
    let mut gateway = Daemon::spawn("ward-resolver-aarch64", cmd);
    eventually(&mut gateway, "the gateway answers", || {
        dig(port, "example.org").status == "NOERROR"
    });

    let allowed = dig(port, "example.org");
    assert_eq!(allowed.answers, ["192.0.2.53"], "allowed: {}", allowed.text);
    let doh = first_listed_domain(etc.join("lists/doh.txt").to_str().unwrap());
    let blocked = dig(port, &doh);
    assert_eq!(blocked.status, "NXDOMAIN", "{doh}: {}", blocked.text);
    let canary = dig(port, "use-application-dns.net");
    assert_eq!(canary.status, "NXDOMAIN", "DoH canary: {}", canary.text);
    let google = dig(port, "www.google.com");
    assert!(
        google.text.contains("forcesafesearch.google.com"),
        "{}",
        google.text
    );
    // Unknown client: byod-strict, strict YouTube. Staff wifi: the staff tier, moderate YouTube.
    let unknown = dig(port, "www.youtube.com");
    assert!(
        unknown.text.contains("restrict.youtube.com"),
        "unknown client: {}",
        unknown.text
    );
    let staff = dig_from("127.0.0.2", port, "www.youtube.com");
    assert!(
        staff.text.contains("restrictmoderate.youtube.com"),
        "staff wifi: {}",
        staff.text
    );
    drop(gateway);

    enrolled_gateway_keeps_filtering_when_the_collector_is_down(&binary, &etc, &work, &upstream);
    let _ = std::fs::remove_dir_all(&work);
}

/// Enrolled with a collector, the gateway follows it; with the collector gone it goes on filtering
/// with the last good policy it kept.
fn enrolled_gateway_keeps_filtering_when_the_collector_is_down(
    binary: &Path,
    etc: &Path,
    work: &Path,
    upstream: &FakeUpstream,
) {
    let data = work.join("collector");
    let collector_port = free_port();
    let mut cmd = Command::new(ward_tests::program("ward-collector"));
    cmd.arg("--data-dir")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{collector_port}")]);
    let mut collector = Daemon::spawn("ward-collector-for-gateway", cmd);
    let ca = data.join("ca.pem");
    let login = format!("https://127.0.0.1:{collector_port}/login");
    eventually(&mut collector, "the collector serves", || {
        ca.exists()
            && run(Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
                .arg(&ca)
                .arg(&login))
            .text()
            .trim()
                == "200"
    });
    let token = run(Command::new(ward_tests::program("ward-collector"))
        .arg("--data-dir")
        .arg(&data)
        .args(["token", "create"]))
    .expect_success("ward-collector token create");
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let state = work.join("enrolled-state");
    run(Command::new("qemu-aarch64-static")
        .arg(binary)
        .args([
            "enrol",
            "--collector",
            &format!("https://127.0.0.1:{collector_port}"),
        ])
        .args(["--token", &token, "--ca"])
        .arg(&ca)
        .arg("--config")
        .arg(etc.join("gateway.toml"))
        .arg("--state-dir")
        .arg(&state))
    .expect_success("ward-resolver enrol (aarch64)");

    let port = free_port();
    let mut cmd = Command::new("qemu-aarch64-static");
    cmd.arg(binary)
        .arg("--config")
        .arg(etc.join("gateway.toml"))
        .arg("--state-dir")
        .arg(&state)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--upstream", &upstream.addr.to_string()]);
    let mut gateway = Daemon::spawn("ward-resolver-aarch64-enrolled", cmd);
    eventually(&mut gateway, "the enrolled gateway answers", || {
        dig(port, "example.org").status == "NOERROR"
    });
    drop(collector);
    // The collector is gone: filtering goes on as before.
    std::thread::sleep(Duration::from_secs(2));
    assert!(gateway.is_running(), "gateway exited: {}", gateway.log());
    assert_eq!(dig(port, "example.org").answers, ["192.0.2.53"]);
    let canary = dig(port, "use-application-dns.net");
    assert_eq!(canary.status, "NXDOMAIN", "collector down: {}", canary.text);
    let youtube = dig(port, "www.youtube.com");
    assert!(
        youtube.text.contains("restrict.youtube.com"),
        "collector down: {}",
        youtube.text
    );
}

/// Builds the three packages into `out` (the package-test profile: thin on LTO, same scripts as a
/// release) and returns their paths; `build` false repackages the binaries already built.
fn build_debs(out: &Path, version: &str, build: bool) -> Vec<PathBuf> {
    let mut cmd = niced(&repo_root().join("packaging/build-debs"));
    cmd.args(["--profile", "package-test", "--version", version, "--out"])
        .arg(out);
    if !build {
        cmd.arg("--no-build");
    }
    let output = run(&mut cmd).expect_success("packaging/build-debs");
    let debs: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.ends_with(".deb"))
        .map(PathBuf::from)
        .collect();
    assert_eq!(debs.len(), 3, "three packages: {debs:?}");
    debs
}

fn lintian_reports_no_errors(debs: &[PathBuf]) {
    let output = run(Command::new("lintian")
        .args([
            "--fail-on",
            "error",
            "--allow-root",
            "--no-tag-display-limit",
        ])
        .args(debs));
    let text = output.text();
    assert!(output.status.success(), "lintian: {text}");
    assert!(
        !text.lines().any(|l| l.starts_with("E: ")),
        "lintian: {text}"
    );
}

fn installed_layout_is_right() {
    for (user, state) in [
        ("ward-resolver", "/var/lib/ward/resolver"),
        ("ward-collector", "/var/lib/ward/collector"),
    ] {
        assert!(user_exists(user), "{user} was created");
        let meta = std::fs::metadata(state).unwrap();
        assert!(meta.is_dir(), "{state}");
        let owner = run(Command::new("stat").args(["-c", "%U %a", state])).text();
        assert_eq!(owner.trim(), format!("{user} 750"), "{state}");
    }
    // The collector's configuration may hold secrets: readable by its service group only.
    let mode = run(Command::new("stat").args(["-c", "%U:%G %a", "/etc/ward/collector.toml"]));
    assert_eq!(mode.text().trim(), "root:ward-collector 640");
    // Everything under /etc/ward is a conffile, so upgrades keep a school's edits.
    for (package, file) in [
        ("ward-resolver", "/etc/ward/resolver.toml"),
        ("ward-resolver", "/etc/ward/policy.toml"),
        ("ward-collector", "/etc/ward/collector.toml"),
        ("ward-agent", "/etc/ward/agent.toml"),
    ] {
        let conffiles = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", package]));
        assert!(
            conffiles.text().contains(file),
            "{file} is a conffile of {package}"
        );
    }
    for unit in [
        "ward-resolver.service",
        "ward-collector.service",
        "ward-collector-http.socket",
        "ward-collector-https.socket",
    ] {
        assert!(
            Path::new("/lib/systemd/system").join(unit).exists(),
            "{unit}"
        );
    }
}

/// Points the installed collector at a free loopback port, as a technician edits the conffile.
fn set_collector_listen(port: u16) {
    set_setting(
        "/etc/ward/collector.toml",
        "listen",
        &format!("\"127.0.0.1:{port}\""),
    );
}

/// Replaces a top-level `key = value` line of an installed configuration file.
fn set_setting(path: &str, key: &str, value: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let prefix = format!("{key} =");
    let edited: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with(&prefix) {
                format!("{key} = {value}")
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_ne!(
        edited.join("\n"),
        text.trim_end(),
        "{path} has a {key} line"
    );
    std::fs::write(path, edited.join("\n") + "\n").unwrap();
}

fn collector_answers_with_its_own_ca(collector: &mut Daemon, port: u16) {
    let ca = Path::new("/var/lib/ward/collector/ca.pem");
    let password = Path::new("/var/lib/ward/collector/initial-admin-password");
    let url = format!("https://127.0.0.1:{port}/login");
    eventually(collector, "the collector serves its sign-in page", || {
        ca.exists()
            && run(Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg("--cacert")
                .arg(ca)
                .arg(&url))
            .text()
            .trim()
                == "200"
    });
    // The one-time admin password is where the package says, for root and the service only.
    let mode = run(Command::new("stat").args(["-c", "%U %a"]).arg(password));
    assert_eq!(mode.text().trim(), "ward-collector 600");
}

fn resolver_filters(resolver: &mut Daemon, port: u16) {
    eventually(resolver, "the resolver answers", || {
        dig(port, "example.org").status == "NOERROR"
    });
    // An unknown client (loopback is in no network range) gets byod-strict, the shipped default.
    let allowed = dig(port, "example.org");
    assert_eq!(allowed.answers, ["192.0.2.53"], "allowed: {}", allowed.text);
    let canary = dig(port, "use-application-dns.net");
    assert_eq!(canary.status, "NXDOMAIN", "DoH canary: {}", canary.text);
    let safe = dig(port, "www.google.com");
    assert!(
        safe.text.contains("forcesafesearch.google.com"),
        "safe search: {}",
        safe.text
    );
    let doh = first_listed_domain("/etc/ward/lists/doh.txt");
    let blocked = dig(port, &doh);
    assert_eq!(
        blocked.status, "NXDOMAIN",
        "{doh} (doh list): {}",
        blocked.text
    );
}

/// The workstation path as README.Debian gives it: a token from the installed collector, `ward-agent
/// enrol` with the collector's CA, the agent started from its unit, and `send-test-alert` arriving
/// in the collector's store.
fn workstation_enrols_and_delivers_a_test_alert(collector_port: u16) -> Daemon {
    let collector_files = [
        "--config",
        "/etc/ward/collector.toml",
        "--data-dir",
        "/var/lib/ward/collector",
    ];
    let agent_files = [
        "--config",
        "/etc/ward/agent.toml",
        "--state-dir",
        "/var/lib/ward/agent",
    ];
    // The technician points the agent at the school's collector, then enrols.
    set_setting(
        "/etc/ward/agent.toml",
        "collector",
        &format!("\"https://127.0.0.1:{collector_port}\""),
    );
    let token = run(as_user("ward-collector", "ward-collector")
        .args(["token", "create"])
        .args(collector_files))
    .expect_success("ward-collector token create")
    .stdout;
    let token = String::from_utf8(token).unwrap().trim().to_string();
    run(Command::new("ward-agent")
        .args([
            "enrol",
            "--collector",
            &format!("https://127.0.0.1:{collector_port}"),
        ])
        .args(["--token", &token, "--ca", "/var/lib/ward/collector/ca.pem"])
        .args(agent_files))
    .expect_success("ward-agent enrol");
    let status = run(Command::new("ward-agent")
        .args(["status", "--json"])
        .args(agent_files))
    .expect_success("ward-agent status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["enrolled"], true, "{status}");
    assert!(
        status["wordlist_version"].is_string(),
        "installed wordlists load: {status}"
    );

    let mut agent = start_from_unit("ward-agent", &[]);
    eventually(&mut agent, "the agent service has started", || {
        agent_started(&agent_files)
    });
    run(Command::new("ward-agent")
        .arg("send-test-alert")
        .args(agent_files))
    .expect_success("ward-agent send-test-alert");
    eventually(&mut agent, "the test alert reaches the collector", || {
        let alerts = run(as_user("ward-collector", "ward-collector")
            .args(["alerts", "--json"])
            .args(collector_files))
        .text();
        // The collector's store was empty: a test alert can only have come from this agent.
        alerts.lines().any(|line| {
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|a| a["category"] == "test")
        })
    });
    agent
}

/// The agent service is up once `status` reports a heartbeat sent to the collector.
fn agent_started(files: &[&str]) -> bool {
    let status = run(Command::new("ward-agent")
        .args(["status", "--json"])
        .args(files));
    serde_json::from_slice::<serde_json::Value>(&status.stdout)
        .is_ok_and(|s| !s["last_heartbeat"].is_null())
}

/// `program` run as the system `user`, as its unit runs it.
fn as_user(user: &str, program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        user,
        "--regid",
        user,
        "--init-groups",
        "--",
        program,
    ]);
    cmd
}

fn a_broken_config_fails_the_upgrade_and_leaves_the_service_running(
    v2: &[PathBuf],
    resolver: &mut Daemon,
    port: u16,
) {
    let path = "/etc/ward/resolver.toml";
    let good = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, format!("listne = 5\n{good}")).unwrap();
    let resolver_deb = package_file(v2, "ward-resolver");
    let failed = dpkg(&["-i"], std::slice::from_ref(&resolver_deb));
    let text = failed.text();
    assert!(!failed.status.success(), "the upgrade must fail: {text}");
    assert!(
        text.contains("/etc/ward/resolver.toml:1:"),
        "names file and line: {text}"
    );
    assert!(resolver.is_running(), "the running resolver was left alone");
    assert_eq!(dig(port, "example.org").answers, ["192.0.2.53"]);
    assert_eq!(
        package_status("ward-resolver"),
        "install ok half-configured"
    );

    std::fs::write(path, good).unwrap();
    dpkg(&["--configure", "ward-resolver"], &[]).expect_success("configure after the fix");
    assert!(package_version("ward-resolver").contains("+upgrade1"));
    assert_eq!(package_status("ward-resolver"), "install ok installed");
}

fn edited_conffiles_survive_an_upgrade(v2: &[PathBuf], collector_port: u16) {
    let rest: Vec<PathBuf> = ["ward-collector", "ward-agent"]
        .iter()
        .map(|name| package_file(v2, name))
        .collect();
    dpkg(&["-i"], &rest).expect_success("upgrade the collector and agent");
    let text = std::fs::read_to_string("/etc/ward/collector.toml").unwrap();
    assert!(
        text.contains(&format!("127.0.0.1:{collector_port}")),
        "the edited listen line survived the upgrade: {text}"
    );
}

/// Purge with the default answers: configuration, units and binaries go; the resolver's state (no
/// personal data) goes; the collector's and agent's data stay for the school to decide.
fn purge_keeps_only_what_the_policy_keeps() {
    dpkg(&["--purge"], &[]).expect_success("purge");
    for path in [
        "/etc/ward",
        "/var/lib/ward/resolver",
        "/usr/bin/ward-resolver",
        "/usr/bin/ward-collector",
        "/usr/bin/ward-agent",
        "/usr/share/ward",
        "/usr/share/doc/ward-collector",
        "/lib/systemd/system/ward-resolver.service",
        "/lib/systemd/system/ward-collector.service",
        "/lib/systemd/system/ward-collector-http.socket",
    ] {
        assert!(!Path::new(path).exists(), "{path} is left after purge");
    }
    let leftovers = run(Command::new("find")
        .args([
            "/etc/systemd/system",
            "/var/lib/systemd/deb-systemd-helper-enabled",
        ])
        .args(["-name", "ward-*"]));
    assert_eq!(leftovers.text().trim(), "", "unit links left after purge");
    assert!(
        !user_exists("ward-resolver"),
        "ward-resolver's user goes with its data"
    );
    assert!(
        Path::new("/var/lib/ward/collector/ca.pem").exists(),
        "the collector's data is kept"
    );
    assert!(
        user_exists("ward-collector"),
        "the owner of the kept data stays"
    );
}

/// Reinstall and purge the collector with purge-data answered yes: now its data and user go too.
fn purge_removes_the_data_when_asked(v1: &[PathBuf]) {
    dpkg(&["-i"], &[package_file(v1, "ward-collector")]).expect_success("reinstall");
    assert!(
        Path::new("/var/lib/ward/collector/ca.pem").exists(),
        "a reinstall finds the kept data"
    );
    let mut preseed = Command::new("debconf-set-selections")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    preseed
        .stdin
        .take()
        .unwrap()
        .write_all(b"ward-collector ward-collector/purge-data boolean true\n")
        .unwrap();
    assert!(preseed.wait().unwrap().success());
    let purge = run(Command::new("dpkg")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["--purge", "ward-collector"]));
    purge.expect_success("purge with data");
    for path in [
        "/var/lib/ward/collector",
        "/var/lib/ward/agent",
        "/etc/ward",
    ] {
        if path.ends_with("agent") {
            // The agent's kept data is the school's to remove; clear it so the machine is clean.
            let _ = std::fs::remove_dir_all(path);
            continue;
        }
        assert!(
            !Path::new(path).exists(),
            "{path} is left after purge with data"
        );
    }
    assert!(
        !user_exists("ward-collector"),
        "ward-collector's user goes with its data"
    );
    let _ = std::fs::remove_dir("/var/lib/ward");
    let _ = Command::new("deluser")
        .args(["--system", "ward-agent"])
        .output();
}

/// A program started the way its unit starts it: `ExecStart=` run as `User=`, killed on drop.
struct Daemon {
    child: Child,
    name: String,
    log: PathBuf,
}

fn start_from_unit(name: &str, extra: &[&str]) -> Daemon {
    let unit = std::fs::read_to_string(format!("/lib/systemd/system/{name}.service")).unwrap();
    let value = |key: &str| {
        unit.lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or_else(|| panic!("{name}.service has no {key}"))
            .to_string()
    };
    let exec: Vec<String> = value("ExecStart=")
        .split_whitespace()
        .map(String::from)
        .collect();
    let user = value("User=");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", &user, "--regid", &user, "--init-groups", "--"])
        .args(&exec)
        .args(extra);
    Daemon::spawn(name, cmd)
}

impl Daemon {
    fn spawn(name: &str, mut cmd: Command) -> Daemon {
        let log = std::env::temp_dir().join(format!("{name}-{}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon {
            child,
            name: name.to_string(),
            log,
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Polls `condition` for up to a minute (the test machine may be loaded), failing early with the
/// program's log if it exits.
fn eventually(daemon: &mut Daemon, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        assert!(
            daemon.is_running(),
            "{} exited: {}",
            daemon.name,
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "timed out waiting until {what}; {} log: {}",
        daemon.name,
        daemon.log()
    );
}

/// An upstream resolver on loopback that answers every A query with [`UPSTREAM_ANSWER`] and every
/// other type with no records, so allowed names resolve without a network.
struct FakeUpstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl FakeUpstream {
    fn start() -> FakeUpstream {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    if let Some(reply) = upstream_reply(&buf[..len]) {
                        let _ = socket.send_to(&reply, from);
                    }
                }
            }
        });
        FakeUpstream { addr, stop }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The reply to one query: header with the query's id, the question echoed, and one A record
/// pointing back at the question's name for A queries. EDNS and other sections are dropped.
fn upstream_reply(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + usize::from(query[end]);
    }
    let question = query.get(12..end + 5)?;
    let qtype = u16::from_be_bytes([query[end + 1], query[end + 2]]);
    let answers: u16 = if qtype == 1 { 1 } else { 0 };
    let mut reply = Vec::with_capacity(64);
    reply.extend_from_slice(&query[..2]);
    reply.extend_from_slice(&[0x81, 0x80, 0, 1]);
    reply.extend_from_slice(&answers.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if answers == 1 {
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&UPSTREAM_ANSWER);
    }
    Some(reply)
}

struct Dig {
    status: String,
    answers: Vec<String>,
    text: String,
}

fn dig(port: u16, name: &str) -> Dig {
    dig_from("127.0.0.1", port, name)
}

/// Asks the resolver on loopback `port` for `name`'s A records from the loopback address `source`.
fn dig_from(source: &str, port: u16, name: &str) -> Dig {
    let output = run(Command::new("dig")
        .args(["-b", source, "@127.0.0.1", "-p", &port.to_string()])
        .args(["+time=5", "+tries=2", "+nocookie", name, "A"]));
    let text = output.text();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("no answer")
        .to_string();
    let short = run(Command::new("dig")
        .args(["-b", source, "@127.0.0.1", "-p", &port.to_string()])
        .args(["+time=5", "+tries=2", "+nocookie", "+short", name, "A"]))
    .text();
    let answers = short
        .lines()
        .filter(|l| l.parse::<std::net::Ipv4Addr>().is_ok())
        .map(String::from)
        .collect();
    Dig {
        status,
        answers,
        text,
    }
}

fn first_listed_domain(list: &str) -> String {
    std::fs::read_to_string(list)
        .unwrap()
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("the list names a domain")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Serialises install tests on one machine and refuses a machine where Ward is installed for real.
struct InstallLock(PathBuf);

impl InstallLock {
    fn acquire() -> Option<InstallLock> {
        let uid = run(Command::new("id").arg("-u")).text();
        if uid.trim() != "0" {
            eprintln!("install test: not root, so the packages cannot be installed here; skipped");
            return None;
        }
        let path = PathBuf::from("/run/lock/ward-install-test");
        let deadline = Instant::now() + Duration::from_secs(1800);
        while std::fs::create_dir(&path).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} held for 30 minutes",
                path.display()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        let lock = InstallLock(path);
        for package in PACKAGES {
            let status = package_status(package);
            if status.contains("installed") || status.contains("config-files") {
                eprintln!("install test: {package} is already on this machine ({status}); skipped");
                return None;
            }
        }
        Some(lock)
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn dpkg(args: &[&str], debs: &[PathBuf]) -> Output {
    let mut cmd = Command::new("dpkg");
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .args(["--force-confdef", "--force-confold"])
        .args(args);
    if args == ["--purge"] {
        cmd.args(PACKAGES);
    }
    run(cmd.args(debs))
}

fn package_file(debs: &[PathBuf], name: &str) -> PathBuf {
    debs.iter()
        .find(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&format!("{name}_")))
        })
        .unwrap_or_else(|| panic!("no {name} package in {debs:?}"))
        .clone()
}

fn package_status(name: &str) -> String {
    run(Command::new("dpkg-query").args(["-W", "-f=${Status}", name]))
        .text()
        .trim()
        .to_string()
}

fn package_version(name: &str) -> String {
    run(Command::new("dpkg-query").args(["-W", "-f=${Version}", name])).text()
}

fn user_exists(name: &str) -> bool {
    run(Command::new("getent").args(["passwd", name]))
        .status
        .success()
}

fn free_port() -> u16 {
    // Both protocols free on the same port: the resolver binds UDP and TCP.
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A build script run at the lowest CPU priority, so the other end-to-end tests running beside it
/// keep their timing on a 2-core machine.
fn niced(script: &Path) -> Command {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "19"]).arg(script);
    cmd
}

fn workspace_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// A folder of this process for one test (`what`), so tests running side by side never share one.
fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

trait OutputExt {
    fn text(&self) -> String;
    fn expect_success(self, what: &str) -> Output;
}

impl OutputExt for Output {
    /// Standard output and error together, as a technician would see them.
    fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    fn expect_success(self, what: &str) -> Output {
        assert!(self.status.success(), "{what} failed: {}", self.text());
        self
    }
}
