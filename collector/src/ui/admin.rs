//! Pages for IT and the DSL that are not alerts: accounts (with recovery by an admin), devices, who
//! was shown the monitoring notice, the audit log, and suggested wordlist suppressions from false
//! positives.

use axum::extract::{Path, Request, State};
use axum::response::Response;

use super::auth;
use super::html::Html;
use super::layout;
use super::queue::days_ago;
use super::roles::{parse_roles, Role};
use super::store::verify_audit_chain;
use super::{now_us, page_response, query_pairs, split_csv, Ctx, Posted, Signed, Ui, UiError};
use crate::html;

fn require(ok: bool, why: &'static str) -> Result<(), UiError> {
    if ok {
        Ok(())
    } else {
        Err(UiError::Forbidden(why))
    }
}

/// `GET /audit`: the newest entries and whether the hash chain holds.
pub async fn audit(
    State(ui): State<Ui>,
    Signed(ctx): Signed,
    request: Request,
) -> Result<Response, UiError> {
    require(
        ctx.viewer.sees_audit(),
        "The audit log is for the DSL and administrators.",
    )?;
    let subject = query_pairs(request.uri().query())
        .get("subject")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let s2 = subject.clone();
    let (entries, chain) = ui
        .db(move |s| Ok((s.audit(s2.as_deref(), 500)?, s.audit_chain()?)))
        .await?;
    let broken = verify_audit_chain(&chain);
    ui.audit(
        &ctx.viewer.name,
        "audit.view",
        subject.as_deref().unwrap_or("audit"),
        "",
    )
    .await?;
    let state = match broken {
        None => html!("<p class=\"ok\">All {} entries are intact: each one's hash matches its content and its predecessor.</p>", chain.len()),
        Some(seq) => html!("<p class=\"notice\" role=\"alert\">The audit log has been altered outside Ward: the chain breaks at entry {}.</p>", seq),
    };
    let rows: Html = entries
        .iter()
        .map(|e| {
            let subject = if e.action.starts_with("alert.") || e.action.starts_with("screenshot.") {
                html!("<a href=\"/alerts/{}\">{}</a>", e.subject, e.subject)
            } else {
                super::html::text(&e.subject)
            };
            html!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.seq,
                ui.time(e.time),
                e.actor,
                e.action,
                subject,
                e.detail
            )
        })
        .collect();
    let body = html!(
        "{}<p class=\"muted\">Every view of an alert or screenshot and every action is recorded here. No one can edit or delete an entry.</p>\
         <form method=\"get\" action=\"/audit\" class=\"filters\"><div><label for=\"subject\">Subject (alert id, user)</label>\
         <input type=\"text\" id=\"subject\" name=\"subject\" value=\"{}\"></div><div><button type=\"submit\">Show</button></div></form>\
         <table id=\"audit-log\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">Action</th>\
         <th scope=\"col\">Subject</th><th scope=\"col\">Detail</th></tr></thead><tbody>{}</tbody></table>",
        state,
        subject.unwrap_or_default(),
        rows
    );
    Ok(page_response(layout::page(
        &ctx,
        "Audit log",
        "/audit",
        body,
    )))
}

/// `GET /suppressions`: phrases the team keeps marking as false positives.
pub async fn suppressions(State(ui): State<Ui>, Signed(ctx): Signed) -> Result<Response, UiError> {
    let v = &ctx.viewer;
    require(
        v.has(Role::Dsl) || v.has(Role::Head) || v.is_admin(),
        "Suppressions are for the DSL and administrators.",
    )?;
    let since = days_ago(90);
    let stats = ui.db(move |s| s.false_positive_phrases(since)).await?;
    let rows: Html = stats
        .iter()
        .map(|p| {
            let rate = p.false_positives * 100 / p.triaged.max(1);
            let advice = if rate >= 80 && p.false_positives >= 3 {
                "suppress, or add an exclusion context"
            } else if rate >= 50 {
                "add an exclusion context or lower the severity"
            } else {
                "keep; review the contexts"
            };
            html!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}%</td><td>{}</td></tr>",
                p.phrase,
                p.category,
                p.false_positives,
                p.triaged,
                rate,
                advice
            )
        })
        .collect();
    let body = html!(
        "<p>Wordlist entries marked <em>false positive</em> in the last 90 days. Changes to the wordlists are made by \
         editing the files in <code>wordlists/</code>, which are reviewed like any other change.</p>\
         <table id=\"suppressions\"><thead><tr><th scope=\"col\">Phrase</th><th scope=\"col\">Category</th><th scope=\"col\">False positives</th>\
         <th scope=\"col\">Triaged</th><th scope=\"col\">Rate</th><th scope=\"col\">Suggestion</th></tr></thead><tbody>{}</tbody></table>",
        rows
    );
    Ok(page_response(layout::page(
        &ctx,
        "Suggested wordlist suppressions",
        "/suppressions",
        body,
    )))
}

fn role_boxes(prefix: &str, checked: &[Role]) -> Html {
    Role::ALL
        .iter()
        .map(|r| {
            let id = format!("{prefix}-{}", r.as_str());
            if checked.contains(r) {
                html!("<label class=\"inline\"><input type=\"checkbox\" name=\"role\" id=\"{}\" value=\"{}\" checked> {}</label> ", id, r.as_str(), r.as_str())
            } else {
                html!("<label class=\"inline\"><input type=\"checkbox\" name=\"role\" id=\"{}\" value=\"{}\"> {}</label> ", id, r.as_str(), r.as_str())
            }
        })
        .collect()
}

fn users_body(ui: &Ui, ctx: &Ctx, accounts: &[super::store::AccountRecord], message: Html) -> Html {
    let now = now_us();
    let rows: Html = accounts
        .iter()
        .map(|a| {
            let roles = parse_roles(&a.roles).unwrap_or_default();
            let mut state = Vec::new();
            if a.disabled {
                state.push("disabled");
            }
            if a.locked_until.is_some_and(|u| u > now) {
                state.push("locked");
            }
            if a.must_change_password {
                state.push("one-time password");
            }
            state.push(if a.totp_enabled { "two-step on" } else { "two-step off" });
            html!(
                "<tr><th scope=\"row\">{}</th><td><form method=\"post\" action=\"/users/{}\">{}\
                 <fieldset><legend class=\"muted\">Roles</legend>{}</fieldset>\
                 <label for=\"g-{}\">Reviewer groups</label><input type=\"text\" id=\"g-{}\" name=\"groups\" value=\"{}\">\
                 <button type=\"submit\" name=\"action\" value=\"roles\" class=\"secondary\">Save roles</button></form></td>\
                 <td>{}</td><td><form method=\"post\" action=\"/users/{}\">{}\
                 <button type=\"submit\" name=\"action\" value=\"reset\">Reset (one-time password)</button> \
                 <button type=\"submit\" name=\"action\" value=\"{}\" class=\"secondary\">{}</button></form></td></tr>",
                a.name,
                a.name,
                ctx.csrf_field(),
                role_boxes(&format!("r-{}", a.name), &roles),
                a.name,
                a.name,
                a.groups,
                state.join(", "),
                a.name,
                ctx.csrf_field(),
                if a.disabled { "enable" } else { "disable" },
                if a.disabled { "Enable" } else { "Disable" }
            )
        })
        .collect();
    let _ = ui;
    html!(
        "{}<p>A reset gives the person a one-time password, removes their authenticator (they enrol again), unlocks the \
         account and signs them out everywhere. Give the password to them in person.</p>\
         <table id=\"users\"><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Roles</th><th scope=\"col\">State</th><th scope=\"col\">Recovery</th></tr></thead>\
         <tbody>{}</tbody></table><h2>Add an account</h2><form method=\"post\" action=\"/users\" class=\"panel\">{}\
         <label for=\"new-name\">Name</label><input type=\"text\" id=\"new-name\" name=\"name\" required pattern=\"[A-Za-z0-9._@-]+\">\
         <fieldset><legend>Roles</legend>{}</fieldset><label for=\"new-groups\">Reviewer groups (comma-separated)</label>\
         <input type=\"text\" id=\"new-groups\" name=\"groups\"><p><button type=\"submit\">Add</button></p></form>",
        message,
        rows,
        ctx.csrf_field(),
        role_boxes("new", &[])
    )
}

/// `GET /users`.
pub async fn users(State(ui): State<Ui>, Signed(ctx): Signed) -> Result<Response, UiError> {
    require(
        ctx.viewer.is_admin(),
        "Accounts are managed by administrators.",
    )?;
    let accounts = ui.db(|s| s.accounts()).await?;
    Ok(page_response(layout::page(
        &ctx,
        "Users",
        "/users",
        users_body(&ui, &ctx, &accounts, Html::new()),
    )))
}

fn one_time_message(name: &str, password: &str) -> Html {
    html!(
        "<div class=\"ok\" role=\"status\"><p>One-time password for <strong>{}</strong> (shown once; they choose their own at first sign-in):</p>\
         <p><code id=\"one-time-password\">{}</code></p></div>",
        name,
        password
    )
}

/// `POST /users`: add an account with a one-time password.
pub async fn add_user(State(ui): State<Ui>, posted: Posted) -> Result<Response, UiError> {
    let Posted { ctx, form } = posted;
    require(
        ctx.viewer.is_admin() && ctx.pending.is_none(),
        "Accounts are managed by administrators.",
    )?;
    let name = form.get("name").unwrap_or_default().to_string();
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
    {
        return Err(UiError::BadRequest(
            "A name is letters, digits and . _ @ - only.".into(),
        ));
    }
    let roles = parse_roles(&form.all("role").join(",")).map_err(UiError::BadRequest)?;
    if roles.is_empty() {
        return Err(UiError::BadRequest("Choose at least one role.".into()));
    }
    let roles_csv = roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let groups = split_csv(form.get("groups").unwrap_or_default()).join(",");
    let password = auth::one_time_password();
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
        .await
        .map_err(|e| UiError::Internal(e.to_string()))?;
    let user = crate::store::NewUser {
        name: name.clone(),
        roles: roles_csv.clone(),
        groups: groups.clone(),
        password_hash: hash,
        must_change_password: true,
        created: now_us(),
    };
    let added = ui.app.with_store(move |s| s.add_user(&user)).await;
    let message = match added {
        Ok(()) => {
            ui.audit(
                &ctx.viewer.name,
                "user.add",
                &name,
                &format!("roles {roles_csv}; groups {groups}"),
            )
            .await?;
            one_time_message(&name, &password)
        }
        Err(crate::store::StoreError::Conflict(_)) => html!(
            "<p class=\"notice\" role=\"alert\">An account named {} already exists.</p>",
            name
        ),
        Err(e) => return Err(e.into()),
    };
    let accounts = ui.db(|s| s.accounts()).await?;
    Ok(page_response(layout::page(
        &ctx,
        "Users",
        "/users",
        users_body(&ui, &ctx, &accounts, message),
    )))
}

/// `POST /users/{name}`: roles, reset, disable, enable.
pub async fn change_user(
    State(ui): State<Ui>,
    Path(name): Path<String>,
    posted: Posted,
) -> Result<Response, UiError> {
    let Posted { ctx, form } = posted;
    require(
        ctx.viewer.is_admin() && ctx.pending.is_none(),
        "Accounts are managed by administrators.",
    )?;
    let n = name.clone();
    ui.db(move |s| s.account(&n))
        .await?
        .ok_or(UiError::NotFound)?;
    let action = form.get("action").unwrap_or_default().to_string();
    let message = match action.as_str() {
        "roles" => {
            let roles = parse_roles(&form.all("role").join(",")).map_err(UiError::BadRequest)?;
            if name == ctx.viewer.name && !roles.contains(&Role::Admin) {
                return Err(UiError::BadRequest(
                    "You cannot remove your own admin role; ask another administrator.".into(),
                ));
            }
            let roles_csv = roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let groups = split_csv(form.get("groups").unwrap_or_default()).join(",");
            let (n, r, g) = (name.clone(), roles_csv.clone(), groups.clone());
            ui.db(move |s| s.set_roles(&n, &r, &g)).await?;
            ui.audit(
                &ctx.viewer.name,
                "user.roles",
                &name,
                &format!("roles {roles_csv}; groups {groups}"),
            )
            .await?;
            html!(
                "<p class=\"ok\" role=\"status\">Roles of {} saved.</p>",
                name
            )
        }
        "reset" => {
            let password = auth::one_time_password();
            let pw = password.clone();
            let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
                .await
                .map_err(|e| UiError::Internal(e.to_string()))?;
            let n = name.clone();
            ui.db(move |s| {
                s.set_password(&n, &hash, true)?;
                s.set_totp(&n, None, false)?;
                s.delete_user_sessions(&n)
            })
            .await?;
            ui.audit(
                &ctx.viewer.name,
                "user.reset",
                &name,
                "one-time password issued; authenticator removed; sessions ended",
            )
            .await?;
            one_time_message(&name, &password)
        }
        "disable" | "enable" => {
            if name == ctx.viewer.name {
                return Err(UiError::BadRequest(
                    "You cannot disable your own account.".into(),
                ));
            }
            let n = name.clone();
            let when = (action == "disable").then(now_us);
            ui.db(move |s| {
                s.set_disabled(&n, when)?;
                s.delete_user_sessions(&n)
            })
            .await?;
            ui.audit(&ctx.viewer.name, &format!("user.{action}"), &name, "")
                .await?;
            html!("<p class=\"ok\" role=\"status\">{} {}d.</p>", name, action)
        }
        _ => return Err(UiError::BadRequest("Unknown action.".into())),
    };
    let accounts = ui.db(|s| s.accounts()).await?;
    Ok(page_response(layout::page(
        &ctx,
        "Users",
        "/users",
        users_body(&ui, &ctx, &accounts, message),
    )))
}

/// `GET /devices`: enrolled devices, last heartbeat, silent ones first.
pub async fn devices(State(ui): State<Ui>, Signed(ctx): Signed) -> Result<Response, UiError> {
    require(
        ctx.viewer.is_admin(),
        "Devices are managed by administrators.",
    )?;
    let mut devices = ui.app.with_store(|s| s.devices()).await?;
    devices.sort_by_key(|d| {
        (
            d.silent_since.is_none(),
            d.revoked.is_some(),
            d.hostname.clone(),
        )
    });
    let rows: Html = devices
        .iter()
        .map(|d| {
            let state = if d.revoked.is_some() {
                Html::lit("revoked")
            } else if d.silent_since.is_some() {
                Html::lit("<strong class=\"sev sev4\">silent</strong>")
            } else if d.dead_helpers.as_deref().is_some_and(|h| !h.is_empty()) {
                html!("<strong class=\"sev sev3\">helper stopped: {}</strong>", d.dead_helpers.clone().unwrap_or_default())
            } else {
                Html::lit("reporting")
            };
            html!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                d.hostname,
                d.kind,
                d.os,
                d.program_version,
                d.last_heartbeat.map(|t| ui.time(t)).unwrap_or_else(|| "never".into()),
                d.last_ip.clone().unwrap_or_default(),
                d.spool_depth,
                state
            )
        })
        .collect();
    let body = html!(
        "<table id=\"devices\"><thead><tr><th scope=\"col\">Host</th><th scope=\"col\">Kind</th><th scope=\"col\">OS</th><th scope=\"col\">Version</th>\
         <th scope=\"col\">Last heartbeat</th><th scope=\"col\">Address</th><th scope=\"col\">Spool</th><th scope=\"col\">State</th></tr></thead><tbody>{}</tbody></table>",
        rows
    );
    Ok(page_response(layout::page(
        &ctx, "Devices", "/devices", body,
    )))
}

/// `GET /notices`: users seen in monitored sessions and when each was last shown the monitoring
/// notice; users never shown it first. Pupil names on a page: the view is audited.
pub async fn notices(State(ui): State<Ui>, Signed(ctx): Signed) -> Result<Response, UiError> {
    require(
        ctx.viewer.is_admin() || ctx.viewer.has(Role::Dsl),
        "Monitoring notices are for the DSL and administrators.",
    )?;
    let users = ui
        .app
        .with_store(|s| Ok(crate::notices::by_user(s.disclosures()?, &s.devices()?)))
        .await?;
    let never = users.iter().filter(|u| u.never_shown()).count();
    ui.audit(
        &ctx.viewer.name,
        "notices.view",
        "notices",
        &format!("{} users, {never} never shown", users.len()),
    )
    .await?;
    let body = notices_body(&users, |t| ui.time(t));
    Ok(page_response(layout::page(
        &ctx,
        "Monitoring notices",
        "/notices",
        body,
    )))
}

/// The notices table; `time` formats a stored time for the reader.
fn notices_body(users: &[crate::notices::UserNotice], time: impl Fn(i64) -> String) -> Html {
    let never = users.iter().filter(|u| u.never_shown()).count();
    let rows: Html = users
        .iter()
        .map(|u| {
            let unshown: Vec<String> = u
                .unshown_devices()
                .map(|d| d.hostname.clone().unwrap_or_else(|| d.device.clone()))
                .collect();
            let state = if u.never_shown() {
                Html::lit("<strong class=\"sev sev4\">never shown</strong>")
            } else if !unshown.is_empty() {
                html!(
                    "<strong class=\"sev sev3\">not shown on {}</strong>",
                    unshown.join(", ")
                )
            } else {
                Html::lit("shown")
            };
            let hosts: Vec<String> = u
                .devices
                .iter()
                .map(|d| d.hostname.clone().unwrap_or_else(|| d.device.clone()))
                .collect();
            html!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                u.user,
                u.last_shown.map(&time).unwrap_or_else(|| "never".into()),
                u.notice_sha256.as_deref().map(|h| &h[..h.len().min(12)]).unwrap_or("-"),
                time(u.last_seen),
                hosts.join(", "),
                state
            )
        })
        .collect();
    let summary = if never > 0 {
        html!(
            "<p class=\"notice\" role=\"alert\">{} of {} users seen in monitored sessions were never shown the monitoring notice: \
             check that the notice is switched on (<code>notice_seconds</code>) on their devices.</p>",
            never,
            users.len()
        )
    } else {
        html!(
            "<p class=\"ok\">All {} users seen in monitored sessions were shown the monitoring notice.</p>",
            users.len()
        )
    };
    html!(
        "{}<p class=\"muted\">Monitoring is never covert: the agent shows the school's notice at each logon and reports it \
         with every heartbeat. <em>Notice</em> is the start of the SHA-256 of the text shown, so a change of wording shows here.</p>\
         <table id=\"notices\"><thead><tr><th scope=\"col\">User</th><th scope=\"col\">Last shown</th><th scope=\"col\">Notice</th>\
         <th scope=\"col\">Last seen</th><th scope=\"col\">Devices</th><th scope=\"col\">State</th></tr></thead><tbody>{}</tbody></table>",
        summary,
        rows
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notices::{DeviceNotice, UserNotice};

    fn user(name: &str, shown: &[Option<i64>]) -> UserNotice {
        let devices: Vec<DeviceNotice> = shown
            .iter()
            .enumerate()
            .map(|(i, s)| DeviceNotice {
                device: format!("dev-{i}"),
                hostname: Some(format!("ws-{i}")),
                last_seen: 100,
                shown: *s,
                notice_sha256: s.map(|_| "ab".repeat(32)),
            })
            .collect();
        UserNotice {
            user: name.into(),
            first_seen: 1,
            last_seen: 100,
            last_shown: shown.iter().flatten().max().copied(),
            notice_sha256: shown.iter().flatten().next().map(|_| "ab".repeat(32)),
            devices,
        }
    }

    #[test]
    fn the_notices_page_flags_users_never_shown_and_escapes_names() {
        let users = vec![
            user("<b>bo</b>", &[None]),
            user("alex", &[Some(50), None]),
            user("cy", &[Some(60)]),
        ];
        let page = notices_body(&users, |t| format!("t{t}")).into_string();
        assert!(page.contains("1 of 3 users"), "{page}");
        assert!(page.contains("&lt;b&gt;bo&lt;/b&gt;"), "{page}");
        assert!(!page.contains("<b>bo"), "{page}");
        assert!(page.contains("never shown"), "{page}");
        assert!(page.contains("not shown on ws-1"), "{page}");
        assert!(page.contains("<code>abababababab</code>"), "{page}");
        let all = notices_body(&users[2..], |t| format!("t{t}")).into_string();
        assert!(all.contains("All 1 users"), "{all}");
    }
}
