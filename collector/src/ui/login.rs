//! Signing in and account set-up: password (argon2id), the TOTP second factor, lockout after repeated
//! failures, choosing a new password after a one-time one, and enrolling an authenticator app.
//!
//! The sign-in form is protected from cross-site submission by a pre-session cookie its CSRF token is
//! bound to. Failures say the same thing whether the name exists or not, and take the same time.

use std::sync::OnceLock;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;

use super::auth::{self, Lockout};
use super::html::Html;
use super::session::{self, cookie_value, new_token, token_hash, PRE_COOKIE, SESSION_COOKIE};
use super::store::SessionRecord;
use super::{
    layout, now_us, page_response, query_pairs, read_form, redirect, Posted, SignedAny, Ui, UiError,
};
use crate::html;

/// Shortest password accepted.
const MIN_PASSWORD: usize = 12;

fn pre_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| cookie_value(c, PRE_COOKIE))
        .map(str::to_string)
}

fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
    }
}

fn with_cookie(mut response: Response, cookie: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn login_form(csrf: &str, next: &str, message: Option<&str>) -> Html {
    let message = match message {
        Some(m) => html!("<p class=\"notice\" role=\"alert\">{}</p>", m),
        None => Html::new(),
    };
    html!(
        "{}<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"name\">Name</label><input type=\"text\" id=\"name\" name=\"name\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <p><button type=\"submit\">Sign in</button></p></form>\
         <p class=\"muted\">Forgotten your password or lost your authenticator? Ask a Ward administrator to reset \
         your account; you will get a one-time password.</p>",
        message,
        csrf,
        next
    )
}

/// `GET /login`.
pub async fn page(State(ui): State<Ui>, request: Request) -> Response {
    let query = query_pairs(request.uri().query());
    let next = safe_next(query.get("next"));
    let (pre, fresh) = match pre_token(request.headers()) {
        Some(pre) => (pre, false),
        None => (new_token(), true),
    };
    let csrf = ui.key.csrf_token(&pre);
    let mut response = page_response(Html::lit("")); // headers only; body replaced below
    *response.body_mut() = layout::bare("Sign in to Ward", login_form(&csrf, &next, None)).into();
    if fresh {
        response = with_cookie(response, session::set_cookie(PRE_COOKIE, &pre, 3600));
    }
    response
}

/// A hash of a random password, verified when the name is unknown so timing gives nothing away.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| auth::hash_password(&auth::one_time_password()))
}

/// `POST /login`.
pub async fn submit(State(ui): State<Ui>, request: Request) -> Result<Response, UiError> {
    let (parts, body) = request.into_parts();
    let form = read_form(body).await?;
    let pre = pre_token(&parts.headers).unwrap_or_default();
    if pre.is_empty()
        || !ui
            .key
            .check_csrf(&pre, form.get("csrf").unwrap_or_default())
    {
        return Err(UiError::Forbidden(
            "The sign-in form expired or did not come from this site. Reload the page and try again.",
        ));
    }
    let name = form.get("name").unwrap_or_default().to_string();
    let password = form.get("password").unwrap_or_default().to_string();
    let next = safe_next(form.get("next"));
    let fail = |message: &str| -> Response {
        let body = layout::bare(
            "Sign in to Ward",
            login_form(&ui.key.csrf_token(&pre), &next, Some(message)),
        );
        let mut response = page_response(Html::new());
        *response.body_mut() = body.into();
        *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
        response
    };
    let lookup = name.clone();
    let account = ui.db(move |s| s.account(&lookup)).await?;
    let stored = account
        .as_ref()
        .filter(|a| !a.disabled)
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    let now = Timestamp::now();
    let locked = account.as_ref().is_some_and(|a| {
        Lockout::is_locked(
            a.locked_until
                .and_then(|u| Timestamp::from_microsecond(u).ok()),
            now,
        )
    });
    let matches = tokio::task::spawn_blocking(move || auth::verify_password(&password, &stored))
        .await
        .unwrap_or(false);
    let Some(account) = account.filter(|a| !a.disabled) else {
        ui.audit(
            &name,
            "sign-in.failed",
            &name,
            "unknown or disabled account",
        )
        .await?;
        return Ok(fail("That name and password do not match an account."));
    };
    if locked {
        ui.audit(&name, "sign-in.refused", &name, "account locked")
            .await?;
        return Ok(fail(
            "This account is locked after repeated failed sign-ins. Try again in 15 minutes, or ask an administrator to reset it.",
        ));
    }
    if !matches {
        record_failure(&ui, &name, account.failures).await?;
        return Ok(fail("That name and password do not match an account."));
    }
    let n = name.clone();
    ui.db(move |s| s.sign_in_succeeded(&n)).await?;
    let token = new_token();
    let created = now_us();
    let record = SessionRecord {
        token_sha256: token_hash(&token),
        user: name.clone(),
        created,
        expires: created + super::SESSION_HOURS * 3_600_000_000,
        second_factor_done: !account.totp_enabled,
    };
    ui.db(move |s| s.create_session(&record)).await?;
    let to = if account.totp_enabled {
        ui.audit(
            &name,
            "sign-in.password",
            &name,
            "password accepted; second factor next",
        )
        .await?;
        format!("/login/totp?next={}", super::html::url_encode(&next))
    } else {
        ui.audit(&name, "sign-in", &name, "").await?;
        next
    };
    let response = with_cookie(
        redirect(&to),
        session::set_cookie(SESSION_COOKIE, &token, super::SESSION_HOURS * 3600),
    );
    Ok(with_cookie(
        response,
        session::set_cookie(PRE_COOKIE, "", 0),
    ))
}

async fn record_failure(ui: &Ui, name: &str, failures: i64) -> Result<(), UiError> {
    let rule = Lockout::default();
    let (failures, lock) = rule.after_failure(failures.max(0) as u32, Timestamp::now());
    let until = lock.map(|t| t.as_microsecond());
    let n = name.to_string();
    ui.db(move |s| s.sign_in_failed(&n, i64::from(failures), until))
        .await?;
    ui.audit(name, "sign-in.failed", name, &format!("failure {failures}"))
        .await?;
    if until.is_some() {
        tracing::warn!(user = name, "account locked after repeated failed sign-ins");
        ui.audit(name, "account.locked", name, "locked for 15 minutes")
            .await?;
    }
    Ok(())
}

/// The session of a request that still needs its second factor.
async fn half_session(
    ui: &Ui,
    headers: &HeaderMap,
) -> Result<Option<(String, SessionRecord)>, UiError> {
    let Some(token) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| cookie_value(c, SESSION_COOKIE))
        .map(str::to_string)
    else {
        return Ok(None);
    };
    let hash = token_hash(&token);
    Ok(ui
        .db(move |s| s.session(&hash, now_us()))
        .await?
        .map(|s| (token, s)))
}

fn totp_form(csrf: &str, next: &str, message: Option<&str>) -> String {
    let message = match message {
        Some(m) => html!("<p class=\"notice\" role=\"alert\">{}</p>", m),
        None => Html::new(),
    };
    layout::bare(
        "Your authenticator code",
        html!(
            "{}<form method=\"post\" action=\"/login/totp\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"next\" value=\"{}\">\
             <label for=\"code\">Six-digit code from your authenticator app</label>\
             <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
             pattern=\"[0-9 ]*\" required autofocus><p><button type=\"submit\">Continue</button></p></form>",
            message,
            csrf,
            next
        ),
    )
}

/// `GET /login/totp`.
pub async fn totp_page(State(ui): State<Ui>, request: Request) -> Result<Response, UiError> {
    let next = safe_next(query_pairs(request.uri().query()).get("next"));
    let Some((token, _)) = half_session(&ui, request.headers()).await? else {
        return Ok(redirect("/login"));
    };
    let mut response = page_response(Html::new());
    *response.body_mut() = totp_form(&ui.key.csrf_token(&token), &next, None).into();
    Ok(response)
}

/// `POST /login/totp`.
pub async fn totp_submit(State(ui): State<Ui>, request: Request) -> Result<Response, UiError> {
    let (parts, body) = request.into_parts();
    let form = read_form(body).await?;
    let Some((token, session)) = half_session(&ui, &parts.headers).await? else {
        return Ok(redirect("/login"));
    };
    if !ui
        .key
        .check_csrf(&token, form.get("csrf").unwrap_or_default())
    {
        return Err(UiError::Forbidden("The form expired. Sign in again."));
    }
    let next = safe_next(form.get("next"));
    let name = session.user.clone();
    let n = name.clone();
    let Some(account) = ui.db(move |s| s.account(&n)).await? else {
        return Ok(redirect("/login"));
    };
    if Lockout::is_locked(
        account
            .locked_until
            .and_then(|u| Timestamp::from_microsecond(u).ok()),
        Timestamp::now(),
    ) {
        let hash = session.token_sha256.clone();
        ui.db(move |s| s.delete_session(&hash)).await?;
        return Ok(redirect("/login"));
    }
    let secret = account.totp_secret.clone().unwrap_or_default();
    let code = form.get("code").unwrap_or_default().to_string();
    let last = account.totp_last_step.map(|s| s.max(0) as u64);
    match auth::verify_totp(&secret, &code, Timestamp::now(), last) {
        Some(step) => {
            let (n, hash) = (name.clone(), session.token_sha256.clone());
            ui.db(move |s| {
                s.totp_used(&n, step as i64)?;
                s.sign_in_succeeded(&n)?;
                s.session_second_factor_done(&hash)
            })
            .await?;
            ui.audit(&name, "sign-in", &name, "password and authenticator code")
                .await?;
            Ok(redirect(&next))
        }
        None => {
            record_failure(&ui, &name, account.failures).await?;
            let mut response = page_response(Html::new());
            *response.body_mut() = totp_form(
                &ui.key.csrf_token(&token),
                &next,
                Some("That code is not right (or was already used). Try the next one."),
            )
            .into();
            *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
            Ok(response)
        }
    }
}

/// `POST /logout`.
pub async fn logout(State(ui): State<Ui>, posted: Posted) -> Result<Response, UiError> {
    let hash = token_hash(&posted.ctx.token);
    ui.db(move |s| s.delete_session(&hash)).await?;
    ui.audit(
        &posted.ctx.viewer.name,
        "sign-out",
        &posted.ctx.viewer.name,
        "",
    )
    .await?;
    Ok(with_cookie(
        redirect("/login"),
        session::set_cookie(SESSION_COOKIE, "", 0),
    ))
}

fn password_body(ctx: &super::Ctx, message: Option<&str>) -> Html {
    let message = match message {
        Some(m) => html!("<p class=\"notice\" role=\"alert\">{}</p>", m),
        None if ctx.pending == Some("/account/password") => Html::lit(
            "<p class=\"notice\">Your password was a one-time password. Choose your own to continue.</p>",
        ),
        None => Html::new(),
    };
    html!(
        "{}<form method=\"post\" action=\"/account/password\" class=\"panel\">{}\
         <label for=\"current\">Current password</label><input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\" required>\
         <label for=\"new\">New password (at least {} characters)</label><input type=\"password\" id=\"new\" name=\"new\" autocomplete=\"new-password\" minlength=\"{}\" required>\
         <label for=\"confirm\">New password again</label><input type=\"password\" id=\"confirm\" name=\"confirm\" autocomplete=\"new-password\" required>\
         <p><button type=\"submit\">Change password</button></p></form>",
        message,
        ctx.csrf_field(),
        MIN_PASSWORD,
        MIN_PASSWORD
    )
}

/// `GET /account/password`.
pub async fn password_page(SignedAny(ctx): SignedAny) -> Response {
    page_response(layout::page(
        &ctx,
        "Change your password",
        "",
        password_body(&ctx, None),
    ))
}

/// `POST /account/password`.
pub async fn password_submit(State(ui): State<Ui>, posted: Posted) -> Result<Response, UiError> {
    let Posted { ctx, form } = posted;
    let current = form.get("current").unwrap_or_default().to_string();
    let current_for_file = current.clone();
    let new = form.get("new").unwrap_or_default().to_string();
    let problem = if new != form.get("confirm").unwrap_or_default() {
        Some("The two new passwords differ.")
    } else if new.chars().count() < MIN_PASSWORD {
        Some("The new password is too short.")
    } else if new == current {
        Some("The new password must differ from the current one.")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Ok(page_response(layout::page(
            &ctx,
            "Change your password",
            "",
            password_body(&ctx, Some(problem)),
        )));
    }
    let n = ctx.viewer.name.clone();
    let account = ui
        .db(move |s| s.account(&n))
        .await?
        .ok_or(UiError::NotFound)?;
    let stored = account.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || {
        auth::verify_password(&current, &stored).then(|| auth::hash_password(&new))
    })
    .await
    .map_err(|e| UiError::Internal(e.to_string()))?;
    let Some(hash) = ok else {
        record_failure(&ui, &ctx.viewer.name, account.failures).await?;
        return Ok(page_response(layout::page(
            &ctx,
            "Change your password",
            "",
            password_body(&ctx, Some("The current password is not right.")),
        )));
    };
    let n = ctx.viewer.name.clone();
    ui.db(move |s| s.set_password(&n, &hash, false)).await?;
    if account.must_change_password {
        // The first admin's one-time password file has served its purpose once that password is
        // replaced (the file holds the password, so compare rather than trust the account name).
        let file = ui
            .app
            .config()
            .data_dir
            .join(crate::accounts::INITIAL_PASSWORD_FILE);
        if std::fs::read_to_string(&file).is_ok_and(|p| p.trim() == current_for_file) {
            let _ = std::fs::remove_file(file);
        }
    }
    ui.audit(
        &ctx.viewer.name,
        "account.password",
        &ctx.viewer.name,
        "password changed",
    )
    .await?;
    Ok(redirect("/account/totp"))
}

/// `GET /account/totp`: enrol an authenticator (or see that one is enrolled).
pub async fn enrol_page(
    State(ui): State<Ui>,
    SignedAny(ctx): SignedAny,
) -> Result<Response, UiError> {
    if ctx.pending == Some("/account/password") {
        return Ok(redirect("/account/password"));
    }
    let n = ctx.viewer.name.clone();
    let account = ui
        .db(move |s| s.account(&n))
        .await?
        .ok_or(UiError::NotFound)?;
    let body = if account.totp_enabled {
        html!(
            "<p class=\"ok\">An authenticator app is enrolled for your account. Each sign-in asks for its code.</p>\
             <p>Lost it? An administrator can reset your account; you then enrol again.</p>{}",
            if ctx.pending.is_none() { Html::lit("<p><a href=\"/\">Go to your work</a></p>") } else { Html::new() }
        )
    } else {
        let secret = match account.totp_secret.clone() {
            Some(s) => s,
            None => {
                let s = auth::new_totp_secret();
                let (n, s2) = (ctx.viewer.name.clone(), s.clone());
                ui.db(move |st| st.set_totp(&n, Some(&s2), false)).await?;
                s
            }
        };
        enrol_body(&ctx, &secret, ui.settings.totp_required(&ctx.viewer), None)
    };
    Ok(page_response(layout::page(
        &ctx,
        "Two-step sign-in",
        "",
        body,
    )))
}

fn enrol_body(ctx: &super::Ctx, secret: &str, required: bool, message: Option<&str>) -> Html {
    let uri = auth::otpauth_uri("Ward", &ctx.viewer.name, secret);
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let message = match message {
        Some(m) => html!("<p class=\"notice\" role=\"alert\">{}</p>", m),
        None => Html::new(),
    };
    html!(
        "{}{}<ol><li>Open your authenticator app (Microsoft Authenticator, Google Authenticator, FreeOTP, …) and add an account.</li>\
         <li>Enter this key: <code id=\"totp-secret\" class=\"context\">{}</code> (time-based, 6 digits, 30 seconds), \
         or open <a href=\"{}\" id=\"otpauth\">this otpauth link</a> on the device that holds the app.</li>\
         <li>Type the code it shows.</li></ol>\
         <form method=\"post\" action=\"/account/totp\" class=\"panel\">{}<label for=\"code\">Code</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>\
         <p><button type=\"submit\">Turn on two-step sign-in</button></p></form>",
        message,
        if required {
            Html::lit("<p class=\"notice\">Your role needs two-step sign-in before you can see any alerts.</p>")
        } else {
            Html::new()
        },
        grouped.join(" "),
        uri,
        ctx.csrf_field()
    )
}

/// `POST /account/totp`: confirm enrolment with a first code.
pub async fn enrol_submit(State(ui): State<Ui>, posted: Posted) -> Result<Response, UiError> {
    let Posted { ctx, form } = posted;
    let n = ctx.viewer.name.clone();
    let account = ui
        .db(move |s| s.account(&n))
        .await?
        .ok_or(UiError::NotFound)?;
    let Some(secret) = account
        .totp_secret
        .clone()
        .filter(|_| !account.totp_enabled)
    else {
        return Ok(redirect("/account/totp"));
    };
    let code = form.get("code").unwrap_or_default();
    match auth::verify_totp(&secret, code, Timestamp::now(), None) {
        Some(step) => {
            let n = ctx.viewer.name.clone();
            ui.db(move |s| {
                s.set_totp(&n, Some(&secret), true)?;
                s.totp_used(&n, step as i64)
            })
            .await?;
            ui.audit(
                &ctx.viewer.name,
                "account.totp",
                &ctx.viewer.name,
                "authenticator enrolled",
            )
            .await?;
            Ok(redirect("/"))
        }
        None => Ok(page_response(layout::page(
            &ctx,
            "Two-step sign-in",
            "",
            enrol_body(
                &ctx,
                &secret,
                ui.settings.totp_required(&ctx.viewer),
                Some("That code is not right; check the key and the device's clock."),
            ),
        ))),
    }
}

/// Sends a plain response with a status, for handlers that refuse early.
pub fn plain(status: axum::http::StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}
