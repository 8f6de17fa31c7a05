//! The review UI in a real browser (headless Chromium over WebDriver) against the real
//! `ward-collector`, with alerts that arrived the way agents send them (enrolment, mutual TLS, ingest
//! API, driven by curl and openssl). One browser session walks the DSL's morning: sign in, enrol the
//! authenticator, see the queue, open an alert and its screenshot, triage with a note, find the audit
//! entry; then checks the refusals by URL: a governor and a reviewer of another group reach no alert
//! or screenshot, a form without its CSRF token is refused, a pupil's markup stays text, and a
//! screenshot link cannot be guessed or reused by someone else. Page screenshots go to tests/artifacts.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use ward_tests::program;

use crate::browser::{Browser, TempDir};
use crate::totp;

/// A running collector; killed on drop.
struct Collector {
    child: Child,
    dir: PathBuf,
    config: PathBuf,
    https: String,
    block_http: String,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Collector {
    fn start(dir: &Path) -> Collector {
        let config = dir.join("collector.toml");
        std::fs::write(
            &config,
            "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n[ui]\nblock_page_listen = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let mut child = Command::new(program("ward-collector"))
            .args(["--log-format", "json", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ward-collector");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut https, mut block_http) = (None, None);
        while https.is_none() || block_http.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("ward-collector said where it listens");
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            match v["message"].as_str() {
                Some("ward-collector listening") => {
                    https = v["listen"].as_str().map(|a| format!("https://{a}"))
                }
                Some("block page listening") => {
                    block_http = v["listen"].as_str().map(|a| format!("http://{a}"))
                }
                _ => {}
            }
        }
        // Keep draining the log so the collector never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Collector {
            child,
            dir: dir.join("data"),
            config,
            https: https.unwrap(),
            block_http: block_http.unwrap(),
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(program("ward-collector"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ward-collector user add`; returns the one-time password.
    fn add_user(&self, name: &str, roles: &str, groups: &str) -> String {
        let mut args = vec!["user", "add", "--role", roles];
        if !groups.is_empty() {
            args.extend(["--groups", groups]);
        }
        args.push(name);
        self.cli(&args).trim().to_string()
    }
}

fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Enrols a device as an agent would (key and CSR from openssl) and returns its curl TLS arguments.
fn enrol(c: &Collector, dir: &Path, hostname: &str) -> (String, Vec<String>) {
    let token = c.cli(&["token", "create"]).trim().to_string();
    let key = dir.join(format!("{hostname}.key"));
    let csr = dir.join(format!("{hostname}.csr"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
        ])
        .arg(format!("/CN={hostname}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    let ca = c.dir.join("ca.pem");
    let body = json!({
        "version": 1, "token": token, "csr_pem": std::fs::read_to_string(&csr).unwrap(),
        "hostname": hostname, "os": "linux", "kind": "agent", "program_version": "0.1.0"
    });
    let (code, answer) = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "-H",
        "content-type: application/json",
        "--data-binary",
        &body.to_string(),
        &format!("{}/api/v1/enrol", c.https),
    ]);
    assert_eq!(code, 200, "enrol: {answer}");
    let cert = dir.join(format!("{hostname}.pem"));
    let answer: Value = serde_json::from_str(&answer).unwrap();
    std::fs::write(&cert, answer["certificate_pem"].as_str().unwrap()).unwrap();
    let device = answer["device_id"].as_str().unwrap().to_string();
    let tls = vec![
        "--cacert".into(),
        ca.display().to_string(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
        "-H".into(),
        "content-type: application/json".into(),
    ];
    (device, tls)
}

fn post(c: &Collector, tls: &[String], path: &str, body: &Value) {
    let mut args: Vec<&str> = tls.iter().map(String::as_str).collect();
    let body = body.to_string();
    let url = format!("{}{path}", c.https);
    args.extend(["--data-binary", &body, &url]);
    let (code, answer) = curl(&args);
    assert!((200..300).contains(&code), "{path}: {code} {answer}");
}

/// A 4x4 PNG, so the screenshot link has a real image behind it.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGM4IScHRwzEcQCxYxBBO0tjggAAAABJRU5ErkJggg==";

const XSS_TITLE: &str = "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>";

fn now_rfc3339(minus_minutes: i64) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - minus_minutes * 60;
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[allow(clippy::too_many_arguments)]
fn alert(
    device: &str,
    id: &str,
    user: &str,
    category: &str,
    severity: u8,
    phrase: &str,
    context: &str,
    minutes_ago: i64,
) -> Value {
    json!({
        "id": id, "device": device, "user": user, "time": now_rfc3339(minutes_ago),
        "source": "keyboard", "category": category, "severity": severity, "phrase": phrase,
        "context": context, "application": "chromium", "window_title": XSS_TITLE,
    })
}

const SELF_HARM: &str = "0197a1b2-0000-7000-8000-000000000001";
const BULLYING: &str = "0197a1b2-0000-7000-8000-000000000002";
const STAFF: &str = "0197a1b2-0000-7000-8000-000000000003";
const SEXTING: &str = "0197a1b2-0000-7000-8000-000000000004";

/// Seeds a queue the way agents fill it: two pupils, one member of staff.
fn seed(c: &Collector, dir: &Path) {
    let (device, tls) = enrol(c, dir, "ict-suite-07");
    let alert = |id, user, category, severity, phrase, context, minutes_ago| {
        alert(
            &device,
            id,
            user,
            category,
            severity,
            phrase,
            context,
            minutes_ago,
        )
    };
    let lease = |user: &str, group: &str, ip: &str| json!({"version": 1, "addresses": [ip], "user": user, "group": group, "expires": now_rfc3339(-120)});
    post(
        c,
        &tls,
        "/api/v1/leases",
        &lease("alex.p", "7a", "127.0.0.1"),
    );
    post(
        c,
        &tls,
        "/api/v1/leases",
        &lease("sam.q", "8b", "10.20.0.9"),
    );
    post(
        c,
        &tls,
        "/api/v1/leases",
        &lease("mr.teacher", "staff", "10.10.0.5"),
    );
    let mut self_harm = alert(
        SELF_HARM,
        "alex.p",
        "self-harm",
        5,
        "kill myself",
        "i want to <b>KILL MYSELF</b> tonight",
        5,
    );
    self_harm["screenshot"] = json!({"format": "png", "width": 4, "height": 4, "data_base64": PNG});
    let batch = json!({"version": 1, "alerts": [
        self_harm,
        alert(BULLYING, "sam.q", "bullying", 3, "nobody likes you", "<script>window.pwned=3</script> nobody likes you", 30),
        alert(STAFF, "mr.teacher", "weapons", 4, "buy a knife", "where to buy a knife", 10),
        alert(SEXTING, "alex.p", "sexting", 4, "send nudes", "send nudes pls", 20),
    ]});
    post(c, &tls, "/api/v1/alerts", &batch);
}

fn totp_now(secret: &str) -> String {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp::code(secret, unix)
}

/// Signs in through the form; sets a new password and enrols TOTP when asked.
fn sign_in(b: &Browser, base: &str, name: &str, password: &str) -> String {
    b.goto(&format!("{base}/login"));
    b.type_into("#name", name);
    b.type_into("#password", password);
    b.submit("button[type=submit]");
    let mut password = password.to_string();
    if b.url().ends_with("/account/password") {
        let new = format!("{name}-chosen-passphrase");
        b.type_into("#current", &password);
        b.type_into("#new", &new);
        b.type_into("#confirm", &new);
        b.submit("main button[type=submit]");
        password = new;
    }
    if b.url().contains("/account/totp") && b.count("#totp-secret") > 0 {
        let secret = b.body_text_of("#totp-secret").replace(' ', "");
        b.type_into("#code", &totp_now(&secret));
        b.submit("main button[type=submit]");
    }
    password
}

/// The status a same-origin fetch gets (cookies included), from inside the page.
fn fetch_status(b: &Browser, url: &str, method: &str, body: &str) -> u16 {
    let v = b.script(
        "return fetch(arguments[0], {method: arguments[1], credentials: 'same-origin', redirect: 'manual', \
         headers: {'content-type': 'application/x-www-form-urlencoded'}, body: arguments[1] === 'GET' ? undefined : arguments[2]})\
         .then(r => r.type === 'opaqueredirect' ? 303 : r.status)",
        json!([url, method, body]),
    );
    v.as_u64().unwrap_or(0) as u16
}

fn sign_out(b: &Browser) {
    b.submit("header form.who button[type=submit]");
    assert!(b.url().ends_with("/login"), "signed out: {}", b.url());
}

#[test]
fn the_review_ui_works_and_refuses_in_a_real_browser() {
    let dir = TempDir(std::env::temp_dir().join(format!("ward-ui-e2e-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let c = Collector::start(&dir.0);
    seed(&c, &dir.0);
    let dsl_pw = c.add_user("dsl.jones", "dsl", "");
    let gov_pw = c.add_user("gov.smith", "governor", "");
    let rev_pw = c.add_user("rev.brown", "reviewer", "9c");
    let locked_pw = c.add_user("lock.test", "reviewer", "7a");
    let base = c.https.replace("127.0.0.1", "localhost");
    let b = Browser::start();

    // The sign-in page, then a wrong password: refused with a message.
    b.goto(&format!("{base}/login"));
    b.screenshot("ui-login");
    b.type_into("#name", "dsl.jones");
    b.type_into("#password", "not the password");
    b.submit("button[type=submit]");
    assert!(b.body_text().contains("do not match"), "{}", b.body_text());

    // The DSL signs in with the one-time password, chooses a password, enrols TOTP, sees the queue.
    sign_in(&b, &base, "dsl.jones", &dsl_pw);
    assert!(
        b.url().ends_with('/'),
        "at the queue: {} {}",
        b.url(),
        b.body_text()
    );
    let text = b.body_text();
    assert!(
        text.contains("alex.p") && text.contains("sam.q"),
        "pupils in the queue: {text}"
    );
    assert!(
        !text.contains("mr.teacher"),
        "a staff alert is for the head only: {text}"
    );
    assert!(
        text.contains("self-harm") && text.contains("bullying"),
        "{text}"
    );
    // Most severe person first.
    assert!(text.find("alex.p").unwrap() < text.find("sam.q").unwrap());
    // The pupil's markup is text, and nothing ran.
    assert_eq!(
        b.script("return window.pwned === undefined", json!([])),
        json!(true)
    );
    b.screenshot("ui-queue");

    // One alert: phrase highlighted in context, markup inert, screenshot behind a signed link.
    b.goto(&format!("{base}/alerts/{SELF_HARM}"));
    assert_eq!(b.body_text_of("#context mark"), "KILL MYSELF");
    assert!(b
        .body_text_of("#window-title")
        .contains("<script>window.pwned=2</script>"));
    assert_eq!(
        b.count("#window-title img, #window-title script, #context b"),
        0
    );
    assert_eq!(
        b.script("return window.pwned === undefined", json!([])),
        json!(true)
    );
    let shot = b
        .property("#screenshot-link", "href")
        .expect("a screenshot link");
    assert!(shot.contains("sig="), "{shot}");
    b.screenshot("ui-alert");
    b.goto(&shot);
    assert_eq!(
        b.script("return document.contentType", json!([])),
        json!("image/png")
    );
    // A guessed or altered link is refused.
    b.goto(&format!("{base}/alerts/{SEXTING}"));
    assert_eq!(
        fetch_status(
            &b,
            &format!("{base}/alerts/{SELF_HARM}/screenshot"),
            "GET",
            ""
        ),
        403
    );
    assert_eq!(
        fetch_status(&b, &shot.replace("sig=", "sig=AA"), "GET", ""),
        403
    );

    // The no-capture alert says why there is no screenshot.
    b.goto(&format!("{base}/alerts/{SEXTING}"));
    assert!(
        b.body_text().contains("never capture the screen"),
        "{}",
        b.body_text()
    );
    assert_eq!(b.count("#screenshot-link"), 0);

    // Triage with a note; the note and the audit trail show it.
    b.goto(&format!("{base}/alerts/{SELF_HARM}"));
    b.click("#s-escalated");
    b.type_into("#note", "Spoke to Alex; parents called; referral made.");
    b.submit("form[action$='/triage'] button[type=submit]");
    assert!(b.url().contains("saved=1"), "{}", b.url());
    assert_eq!(b.body_text_of("#status"), "Escalated to DSL");
    assert!(b.body_text_of("#notes").contains("parents called"));
    let audit = b.body_text_of("#audit");
    assert!(audit.contains("alert.view by dsl.jones"), "{audit}");
    assert!(audit.contains("screenshot.view by dsl.jones"), "{audit}");
    assert!(
        audit.contains("alert.triage by dsl.jones status escalated"),
        "{audit}"
    );
    b.goto(&format!("{base}/audit"));
    assert!(
        b.body_text().contains("entries are intact"),
        "{}",
        b.body_text()
    );
    b.screenshot("ui-audit");

    // A form without its CSRF token is refused, and changes nothing.
    let status = fetch_status(
        &b,
        &format!("{base}/alerts/{BULLYING}/triage"),
        "POST",
        "status=no-action&note=forged",
    );
    assert_eq!(status, 403);
    b.goto(&format!("{base}/alerts/{BULLYING}"));
    assert_eq!(b.body_text_of("#status"), "New");

    b.goto(&format!("{base}/reports"));
    assert_eq!(b.count("svg.chart"), 2);
    b.screenshot("ui-reports");
    sign_out(&b);

    // A governor reaches no alert, screenshot, audit entry or export, by URL.
    sign_in(&b, &base, "gov.smith", &gov_pw);
    assert!(
        b.url().ends_with("/reports"),
        "a governor starts at the reports: {}",
        b.url()
    );
    assert!(!b.body_text().contains("alex.p"));
    for url in [
        format!("{base}/alerts/{SELF_HARM}"),
        shot.clone(),
        format!("{base}/audit"),
        format!("{base}/reports/alerts.csv"),
        format!("{base}/users"),
    ] {
        assert_eq!(fetch_status(&b, &url, "GET", ""), 403, "governor: {url}");
    }
    b.goto(&format!("{base}/alerts/{SELF_HARM}"));
    assert!(!b.body_text().contains("KILL MYSELF"));
    b.goto(&format!("{base}/reports"));
    sign_out(&b);

    // A reviewer of another group: the alert does not exist for them; the DSL's link is not theirs.
    sign_in(&b, &base, "rev.brown", &rev_pw);
    assert_eq!(
        fetch_status(&b, &format!("{base}/alerts/{SELF_HARM}"), "GET", ""),
        404
    );
    assert_eq!(fetch_status(&b, &shot, "GET", ""), 404);
    assert!(!b.body_text().contains("alex.p"));
    sign_out(&b);

    // The block page, by Host name, with its review form landing in the queue.
    let block = c.block_http.replace("127.0.0.1", "localhost");
    b.goto(&format!("{block}/blocked?host=tiktok.com"));
    assert_eq!(b.body_text_of("#blocked-host"), "tiktok.com");
    b.type_into("#reason", "Needed for a media studies lesson");
    b.screenshot("ui-block-page");
    b.submit("button[type=submit]");
    assert!(b.body_text().contains("was sent"), "{}", b.body_text());
    let admin_pw = std::fs::read_to_string(c.dir.join("initial-admin-password")).unwrap();
    sign_in(&b, &base, "admin", admin_pw.trim());
    b.goto(&format!("{base}/unblock"));
    assert!(b.body_text_of("#unblock").contains("tiktok.com"));
    assert_eq!(
        fetch_status(&b, &format!("{base}/alerts/{SELF_HARM}"), "GET", ""),
        404,
        "admin sees no pupil alert"
    );
    b.goto(&format!("{base}/policy"));
    b.screenshot("ui-policy");
    sign_out(&b);

    // Five wrong passwords lock the account: then even the right one is refused.
    for _ in 0..5 {
        b.type_into("#name", "lock.test");
        b.type_into("#password", "guess");
        b.submit("button[type=submit]");
    }
    b.type_into("#name", "lock.test");
    b.type_into("#password", &locked_pw);
    b.submit("button[type=submit]");
    assert!(b.body_text().contains("locked"), "{}", b.body_text());
    assert!(b.url().contains("/login"), "{}", b.url());
}
