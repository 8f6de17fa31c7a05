//! The review web UI: where the DSL and IT do their daily work.
//!
//! Server-rendered HTML on the collector's one TLS port, beside `/api/v1`. No script is needed to use
//! any page (a few lines of progressive enhancement add keyboard shortcuts). Every route identifies the
//! viewer from the session cookie, checks their roles (see [`roles`]) before it reads anything, and
//! records views of alert content in the append-only audit log ([`store`]). Every form carries a CSRF
//! token bound to the session; a POST without it is refused before anything else happens.

pub mod admin;
pub mod alert;
pub mod auth;
pub mod block;
pub mod block_tls;
pub mod chart;
pub mod csv;
pub mod html;
pub mod layout;
pub mod login;
pub mod notify;
pub mod policy;
pub mod queue;
pub mod reports;
pub mod roles;
pub mod session;
pub mod settings;
pub mod store;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use jiff::Timestamp;

use crate::app::App;
use crate::store::Micros;
use html::Html;
use roles::Viewer;
use session::{cookie_value, token_hash, UiKey, SESSION_COOKIE};
pub use settings::UiSettings;
use store::UiStore;

/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 10;

/// What every UI handler shares. Cheap to clone.
#[derive(Clone)]
pub struct Ui {
    /// The collector's state (core store, screenshots, policy hub, config).
    pub app: App,
    /// The UI's own tables.
    pub store: Arc<dyn UiStore>,
    /// HMAC key for CSRF tokens and screenshot links.
    pub key: UiKey,
    /// UI settings (notifications, approvals, second factor).
    pub settings: Arc<UiSettings>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui").finish_non_exhaustive()
    }
}

impl Ui {
    /// Opens the UI's store beside the collector's database and loads (or creates) its key.
    ///
    /// # Errors
    /// The database cannot be opened.
    pub fn open(app: App, settings: UiSettings) -> anyhow::Result<Ui> {
        use anyhow::Context;
        use base64::Engine;
        let config = app.config();
        let store = store::open(&config.database, &config.data_dir)
            .context("cannot open the review UI's tables")?;
        let engine = base64::engine::general_purpose::STANDARD;
        let fresh = engine.encode(UiKey::generate().bytes());
        let stored = store.ui_key(&fresh)?;
        let key = engine
            .decode(stored)
            .ok()
            .and_then(|b| UiKey::from_bytes(&b))
            .context("the review UI key in the database is damaged")?;
        Ok(Ui {
            app,
            store,
            key,
            settings: Arc::new(settings),
        })
    }

    /// Runs a blocking UI-store call on the blocking pool.
    ///
    /// # Errors
    /// The store's error as a [`UiError::Internal`].
    pub async fn db<T, F>(&self, f: F) -> Result<T, UiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn UiStore) -> crate::store::Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| UiError::Internal(format!("store task: {e}")))?
            .map_err(|e| UiError::Internal(e.to_string()))
    }

    /// Appends to the audit log.
    ///
    /// # Errors
    /// The store failed; the caller must not show what it meant to audit.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), UiError> {
        let (actor, action, subject, detail) = (
            actor.to_string(),
            action.to_string(),
            subject.to_string(),
            detail.to_string(),
        );
        self.db(move |s| s.append_audit(now_us(), &actor, &action, &subject, &detail))
            .await
            .map(|_| ())
    }

    /// Formats a stored time in the school's time zone.
    pub fn time(&self, us: Micros) -> String {
        match Timestamp::from_microsecond(us) {
            Ok(t) => t
                .to_zoned(self.app.config().silent.timezone.clone())
                .strftime("%a %-d %b %Y %H:%M")
                .to_string(),
            Err(_) => "?".into(),
        }
    }
}

/// Now, in stored microseconds.
pub fn now_us() -> Micros {
    Timestamp::now().as_microsecond()
}

/// Builds the UI's routes (merged by the server with the API's).
pub fn router(ui: Ui) -> Router {
    Router::new()
        .route("/", get(queue::page))
        .route("/alerts/bulk", post(queue::bulk))
        .route("/alerts/{id}", get(alert::page))
        .route("/alerts/{id}/triage", post(alert::triage))
        .route("/alerts/{id}/screenshot", get(alert::screenshot))
        .route("/login", get(login::page).post(login::submit))
        .route(
            "/login/totp",
            get(login::totp_page).post(login::totp_submit),
        )
        .route("/logout", post(login::logout))
        .route(
            "/account/password",
            get(login::password_page).post(login::password_submit),
        )
        .route(
            "/account/totp",
            get(login::enrol_page).post(login::enrol_submit),
        )
        .route("/suppressions", get(admin::suppressions))
        .route("/audit", get(admin::audit))
        .route("/users", get(admin::users).post(admin::add_user))
        .route("/users/{name}", post(admin::change_user))
        .route("/devices", get(admin::devices))
        .route("/notices", get(admin::notices))
        .route("/policy", get(policy::page).post(policy::propose))
        .route(
            "/policy/changes/{id}",
            get(policy::change).post(policy::decide),
        )
        .route("/unblock", get(policy::unblock_queue))
        .route("/unblock/{id}", post(policy::decide_unblock))
        .route("/reports", get(reports::page))
        .route("/reports/alerts.csv", get(reports::export))
        .route("/blocked", get(block::page))
        .route("/blocked/request", post(block::request))
        .route("/assets/ward.css", get(layout::stylesheet))
        .route("/assets/ward.js", get(layout::script))
        .with_state(ui)
}

/// Adds the UI's routes to the server's router, and sends requests for blocked names (any Host that
/// is not the collector's own) to the block page.
pub fn mount(api: Router, ui: Ui) -> Router {
    api.merge(router(ui.clone()))
        .layer(axum::middleware::from_fn_with_state(ui, block::by_host))
}

/// Opens the UI beside a started collector: its store and key, the urgent-alert notifier, and the
/// plain-HTTP block page (a port that cannot be bound is logged, not fatal: the API must still run).
///
/// The UI's tables live in the collector's database, SQLite or PostgreSQL; with PostgreSQL every
/// collector of a trust shares them (sessions, lockouts, the UI key, the audit chain), so any one
/// of them can serve any signed-in browser.
///
/// # Errors
/// The UI's tables cannot be opened.
pub async fn start(
    app: &App,
    config: &crate::config::Config,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Ui> {
    start_with(app, config, None, shutdown).await
}

/// [`start`], serving the plain-HTTP block page on `block_http` (a socket systemd passed) instead of
/// binding `[ui] block_page_listen` when it is given.
///
/// # Errors
/// As [`start`].
pub async fn start_with(
    app: &App,
    config: &crate::config::Config,
    block_http: Option<tokio::net::TcpListener>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Ui> {
    let ui = {
        let (app, settings) = (app.clone(), config.ui.settings.clone());
        tokio::task::spawn_blocking(move || Ui::open(app, settings)).await??
    };
    tokio::spawn(notify::run(ui.clone(), shutdown.clone()));
    let bound = match (block_http, config.ui.block_page_listen) {
        (Some(passed), _) => Some((Ok(passed), None)),
        (None, Some(addr)) => Some((tokio::net::TcpListener::bind(addr).await, Some(addr))),
        (None, None) => None,
    };
    if let Some((listener, addr)) = bound {
        match listener {
            Ok(listener) => {
                let local = listener.local_addr()?;
                tracing::info!(listen = %local, "block page listening");
                let ui = ui.clone();
                tokio::spawn(async move {
                    if let Err(e) = block::serve_http(listener, ui, shutdown).await {
                        tracing::error!(error = %e, "block page stopped");
                    }
                });
            }
            Err(e) => {
                tracing::error!(listen = ?addr, error = %e, "cannot serve the block page over HTTP")
            }
        }
    }
    Ok(ui)
}

/// Why a UI request did not get its page.
#[derive(Debug)]
pub enum UiError {
    /// Not signed in (or the session ended): go to this page.
    Redirect(String),
    /// Signed in but not allowed; also what a bad CSRF token gets.
    Forbidden(&'static str),
    /// No such thing (or not one the viewer may know exists).
    NotFound,
    /// A form value that cannot be used, with a reason.
    BadRequest(String),
    /// Anything else; logged, never shown.
    Internal(String),
}

impl From<crate::store::StoreError> for UiError {
    fn from(e: crate::store::StoreError) -> Self {
        UiError::Internal(e.to_string())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            UiError::Redirect(to) => return redirect(&to),
            UiError::Forbidden(why) => (StatusCode::FORBIDDEN, why.to_string()),
            UiError::NotFound => (StatusCode::NOT_FOUND, "There is nothing here.".to_string()),
            UiError::BadRequest(why) => (StatusCode::BAD_REQUEST, why),
            UiError::Internal(e) => {
                tracing::error!(error = %e, "review UI request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong; the error is in the collector's log.".to_string(),
                )
            }
        };
        let body = layout::bare(
            status.canonical_reason().unwrap_or("Error"),
            crate::html!(
                "<p>{}</p><p><a href=\"/\">Back to the start</a></p>",
                message
            ),
        );
        (status, body).into_response()
    }
}

/// A 303 redirect (after a POST, the browser GETs the target).
pub fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A finished page with the headers every UI page carries.
pub fn page_response(html: Html) -> Response {
    let mut response = (StatusCode::OK, html.into_string()).into_response();
    secure_headers(response.headers_mut(), "text/html; charset=utf-8");
    response
}

/// Headers that keep pages out of caches and frames and forbid inline script from data.
pub fn secure_headers(headers: &mut HeaderMap, content_type: &'static str) {
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_TYPE, content_type);
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(
        headers,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000",
    );
}

/// The signed-in viewer of a request, with the session token their forms' CSRF tokens bind to.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Who, with roles.
    pub viewer: Viewer,
    /// The session cookie's token.
    pub token: String,
    /// The CSRF token for this session's forms.
    pub csrf: String,
    /// The account still has to set a password or enrol TOTP.
    pub pending: Option<&'static str>,
}

impl Ctx {
    /// The hidden CSRF field every form carries.
    pub fn csrf_field(&self) -> Html {
        crate::html!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            self.csrf
        )
    }
}

/// Resolves the session of a request; `None` when there is none or it ended.
async fn session_ctx(ui: &Ui, headers: &HeaderMap) -> Result<Option<Ctx>, UiError> {
    let Some(token) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| cookie_value(c, SESSION_COOKIE))
        .map(str::to_string)
    else {
        return Ok(None);
    };
    let hash = token_hash(&token);
    let Some(session) = ui.db(move |s| s.session(&hash, now_us())).await? else {
        return Ok(None);
    };
    if !session.second_factor_done {
        return Ok(None);
    }
    let name = session.user.clone();
    let Some(account) = ui.db(move |s| s.account(&name)).await? else {
        return Ok(None);
    };
    if account.disabled {
        return Ok(None);
    }
    let viewer = Viewer {
        name: account.name.clone(),
        roles: roles::parse_roles(&account.roles).unwrap_or_default(),
        groups: split_csv(&account.groups),
    };
    let pending = if account.must_change_password {
        Some("/account/password")
    } else if ui.settings.totp_required(&viewer) && !account.totp_enabled {
        Some("/account/totp")
    } else {
        None
    };
    let csrf = ui.key.csrf_token(&token);
    Ok(Some(Ctx {
        viewer,
        token,
        csrf,
        pending,
    }))
}

/// Splits a comma-separated list, dropping blanks.
pub fn split_csv(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A signed-in viewer who has finished setting up their account (password, TOTP).
#[derive(Debug)]
pub struct Signed(pub Ctx);

/// A signed-in viewer who may still be in account set-up (for the set-up pages themselves).
#[derive(Debug)]
pub struct SignedAny(pub Ctx);

impl FromRequestParts<Ui> for SignedAny {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Self, Self::Rejection> {
        match session_ctx(ui, &parts.headers).await? {
            Some(ctx) => Ok(SignedAny(ctx)),
            None => Err(UiError::Redirect(login_redirect(parts))),
        }
    }
}

impl FromRequestParts<Ui> for Signed {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Self, Self::Rejection> {
        let SignedAny(ctx) = SignedAny::from_request_parts(parts, ui).await?;
        if let Some(to) = ctx.pending {
            return Err(UiError::Redirect(to.to_string()));
        }
        Ok(Signed(ctx))
    }
}

fn login_redirect(parts: &Parts) -> String {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if next == "/" {
        "/login".into()
    } else {
        format!("/login?next={}", html::url_encode(next))
    }
}

/// A submitted form: the raw pairs, so repeated fields (bulk ids) survive.
#[derive(Debug, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of a field, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    /// Every value of a field.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Largest form body accepted (policy documents are the big ones).
const MAX_FORM_BYTES: usize = 1 << 20;

/// A POSTed form from a signed-in viewer whose CSRF token checked out.
#[derive(Debug)]
pub struct Posted {
    /// The viewer (account set-up may still be pending).
    pub ctx: Ctx,
    /// The fields.
    pub form: FormData,
}

impl axum::extract::FromRequest<Ui> for Posted {
    type Rejection = UiError;

    async fn from_request(request: Request, ui: &Ui) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let SignedAny(ctx) = SignedAny::from_request_parts(&mut parts, ui)
            .await
            .map_err(|_| UiError::Forbidden("Your session has ended; sign in again."))?;
        let form = read_form(body).await?;
        let offered = form.get("csrf").unwrap_or_default();
        if !ui.key.check_csrf(&ctx.token, offered) {
            tracing::warn!(user = %ctx.viewer.name, path = %parts.uri.path(), "form refused: missing or wrong CSRF token");
            return Err(UiError::Forbidden(
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ));
        }
        Ok(Posted { ctx, form })
    }
}

/// Reads an `application/x-www-form-urlencoded` body.
///
/// # Errors
/// Too large or not decodable.
pub async fn read_form(body: Body) -> Result<FormData, UiError> {
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| UiError::BadRequest("The form is too large.".into()))?;
    let pairs: Vec<(String, String)> = serde_urlencoded_pairs(&bytes)
        .ok_or_else(|| UiError::BadRequest("The form could not be read.".into()))?;
    Ok(FormData(pairs))
}

fn serde_urlencoded_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
pub fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The query string of a request as form pairs.
pub fn query_pairs(query: Option<&str>) -> FormData {
    FormData(
        query
            .and_then(|q| serde_urlencoded_pairs(q.as_bytes()))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_repeated_fields_and_escapes() {
        let pairs = serde_urlencoded_pairs(b"id=a&id=b&note=hello+there%21&empty=").unwrap();
        let form = FormData(pairs);
        assert_eq!(form.all("id"), ["a", "b"]);
        assert_eq!(form.get("note"), Some("hello there!"));
        assert_eq!(form.get("empty"), Some(""));
        assert!(serde_urlencoded_pairs(b"bad=%zz").is_none());
    }
}
