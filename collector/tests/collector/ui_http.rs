//! The review UI over real HTTPS with curl, on the configured backend: a DSL signs in with password
//! and authenticator code, loads the queue and an alert an agent sent, and the view is audited. On
//! PostgreSQL a second collector in front of the same database then serves the same browser session
//! (sessions live in the database, not in one process) and a sign-out there ends it at the first.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use ward_collector::config::Database;
use ward_collector::store::NewUser;
use ward_collector::ui::auth;
use ward_protocol::DeviceKind;

use crate::harness::{alert, batch, Collector};

/// One response as curl saw it.
pub(crate) struct Page {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `name=value` of every cookie the response sets.
    fn cookies(&self) -> HashMap<String, String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| {
                let pair = v.split(';').next()?;
                let (name, value) = pair.split_once('=')?;
                Some((name.trim().to_string(), value.to_string()))
            })
            .collect()
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in:\n{}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

/// A browser without a browser: curl, the collector's CA, and the cookies it was given.
pub(crate) struct Browser {
    base: String,
    ca: PathBuf,
    cookies: HashMap<String, String>,
}

impl Browser {
    pub(crate) fn new(collector: &Collector) -> Browser {
        Browser {
            base: collector.url.clone(),
            ca: collector.data_dir().join("ca.pem"),
            cookies: HashMap::new(),
        }
    }

    /// GET `path` as bytes (an image): the status and the body.
    pub(crate) async fn download(&self, path: &str) -> (u16, Vec<u8>) {
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--max-time", "60"])
            .args(["--write-out", "\n%{http_code}"])
            .arg("--cacert")
            .arg(&self.ca);
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        command.args(["--header", &format!("Cookie: {}", cookie.join("; "))]);
        command.arg(format!("{}{path}", self.base));
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("curl (tests/packages.txt)");
        assert!(output.status.success(), "curl {path}");
        let mut body = output.stdout;
        let at = body.iter().rposition(|b| *b == b'\n').unwrap();
        let status = String::from_utf8_lossy(&body[at + 1..]).parse().unwrap();
        body.truncate(at);
        (status, body)
    }

    /// Signs in as a new DSL account (password and authenticator code).
    pub(crate) async fn sign_in_dsl(collector: &Collector) -> Browser {
        collector
            .store()
            .add_user(&NewUser {
                name: "dsl".into(),
                roles: "dsl".into(),
                groups: String::new(),
                password_hash: auth::hash_password(PASSWORD),
                must_change_password: false,
                created: 0,
            })
            .unwrap();
        let ui = ward_collector::ui::store::open(&collector.config.database, &collector.data_dir())
            .unwrap();
        ui.set_totp("dsl", Some(SECRET), true).unwrap();
        let mut browser = Browser::new(collector);
        let form = browser.request("/login", &[]).await;
        let fields = [
            ("csrf", form.csrf()),
            ("name", "dsl".into()),
            ("password", PASSWORD.into()),
        ];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let password = browser.request("/login", &fields).await;
        assert_eq!(password.status, 303, "{}", password.body);
        let totp = browser.request("/login/totp", &[]).await;
        let signed_in = browser
            .request(
                "/login/totp",
                &[("csrf", &totp.csrf()), ("code", &code()), ("next", "/")],
            )
            .await;
        assert_eq!(signed_in.status, 303, "{}", signed_in.body);
        browser
    }

    /// GET (no form) or POST (form fields) `path`; remembers cookies set, forgets cleared ones.
    pub(crate) async fn request(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--include", "--max-time", "60"])
            .arg("--cacert")
            .arg(&self.ca);
        if !self.cookies.is_empty() {
            let cookie: Vec<String> = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            command.args(["--header", &format!("Cookie: {}", cookie.join("; "))]);
        }
        for (name, value) in form {
            command.args(["--data-urlencode", &format!("{name}={value}")]);
        }
        command.arg(format!("{}{path}", self.base));
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("curl (tests/packages.txt)");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "curl {path}: {text}");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {head}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let page = Page {
            status,
            headers,
            body: body.to_string(),
        };
        for (name, value) in page.cookies() {
            if value.is_empty() {
                self.cookies.remove(&name);
            } else {
                self.cookies.insert(name, value);
            }
        }
        page
    }
}

const PASSWORD: &str = "correct horse battery staple";
const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// The authenticator's code now.
fn code() -> String {
    let secret = auth::base32_decode(SECRET).unwrap();
    let step = jiff::Timestamp::now().as_second() as u64 / 30;
    format!("{:06}", auth::totp_code(&secret, step))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dsl_signs_in_and_works_the_queue_over_https() {
    let first = Collector::start().await;
    let (identity, client) = first.enrol(DeviceKind::Agent).await;
    let sent = alert(&identity.device_id);
    client
        .send_alerts(&batch(vec![sent.clone()]))
        .await
        .unwrap();
    let store = first.store();
    store
        .add_user(&NewUser {
            name: "dsl".into(),
            roles: "dsl".into(),
            groups: String::new(),
            password_hash: auth::hash_password(PASSWORD),
            must_change_password: false,
            created: 0,
        })
        .unwrap();
    let ui = ward_collector::ui::store::open(&first.config.database, &first.data_dir()).unwrap();
    // An authenticator already enrolled: the DSL role needs the second factor.
    ui.set_totp("dsl", Some(SECRET), true).unwrap();

    let mut browser = Browser::new(&first);
    let queue = browser.request("/", &[]).await;
    assert_eq!(queue.status, 303, "signed out, the queue sends to sign-in");
    assert!(queue.header("location").unwrap().starts_with("/login"));
    let form = browser.request("/login", &[]).await;
    assert_eq!(form.status, 200);
    let wrong = browser
        .request(
            "/login",
            &[
                ("csrf", &form.csrf()),
                ("name", "dsl"),
                ("password", "wrong password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(ui.account("dsl").unwrap().unwrap().failures, 1);
    let password = browser
        .request(
            "/login",
            &[
                ("csrf", &wrong.csrf()),
                ("name", "dsl"),
                ("password", PASSWORD),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(password.status, 303, "{}", password.body);
    assert!(password
        .header("location")
        .unwrap()
        .starts_with("/login/totp"));
    let before_code = browser.request("/", &[]).await;
    assert_eq!(before_code.status, 303, "no queue before the second factor");
    let totp = browser.request("/login/totp", &[]).await;
    assert_eq!(totp.status, 200);
    let signed_in = browser
        .request(
            "/login/totp",
            &[("csrf", &totp.csrf()), ("code", &code()), ("next", "/")],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.header("location"), Some("/"));

    let queue = browser.request("/", &[]).await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    let id = sent.id.to_string();
    assert!(queue.body.contains("pupil.jones"), "{}", queue.body);
    assert!(queue.body.contains(&format!("/alerts/{id}")));
    let page = browser.request(&format!("/alerts/{id}"), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("again tonight"));
    let views = ui.audit(Some(&id), 10).unwrap();
    assert!(
        views
            .iter()
            .any(|e| e.actor == "dsl" && e.action == "alert.view"),
        "{views:?}"
    );

    let Database::Postgres(_) = &first.config.database else {
        return;
    };
    // A second collector of the trust, same database, its own disk: the session is good there.
    let database = first.config.database.clone();
    let second = Collector::start_with(move |c| c.database = database).await;
    let mut elsewhere = Browser::new(&second);
    elsewhere.cookies = browser.cookies.clone();
    let page = elsewhere.request(&format!("/alerts/{id}"), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("again tonight"));
    // Signing out there ends the session everywhere.
    let out = elsewhere
        .request("/logout", &[("csrf", &page.csrf())])
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    let after = browser.request("/", &[]).await;
    assert_eq!(
        after.status, 303,
        "the first collector no longer knows the session"
    );
    assert!(after.header("location").unwrap().starts_with("/login"));
    second.stop().await;
    first.stop().await;
}
