//! One alert: who, where, when, the phrase in its context, a link to the screenshot, the person's
//! other recent alerts, triage with a note, and who has looked at it. Every view is audited before
//! the page is sent; the screenshot is served only through a short-lived link signed for this viewer.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::html::{url_encode, Html};
use super::layout::{self, severity, status_label, STATUSES};
use super::queue::{days_ago, row, scoped};
use super::store::UiAlert;
use super::{
    now_us, page_response, query_pairs, redirect, secure_headers, Ctx, Posted, Signed, Ui, UiError,
};
use crate::html;

/// How long a screenshot link works.
const SCREENSHOT_LINK_SECONDS: i64 = 300;

/// Loads an alert the viewer may see; anything else is "not found" so ids disclose nothing.
async fn visible_alert(ui: &Ui, ctx: &Ctx, id: &str) -> Result<UiAlert, UiError> {
    if ctx.pending.is_some() {
        return Err(UiError::Redirect(ctx.pending.unwrap_or("/").into()));
    }
    if !ctx.viewer.sees_alerts() {
        return Err(UiError::Forbidden(
            "Your role sees reports only, never individual alerts.",
        ));
    }
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(UiError::NotFound);
    }
    let lookup = id.to_string();
    let alert = ui
        .db(move |s| s.alert(&lookup))
        .await?
        .ok_or(UiError::NotFound)?;
    if !ctx
        .viewer
        .may_see_alert(alert.group.as_deref(), &alert.source)
    {
        tracing::warn!(user = %ctx.viewer.name, alert = id, "alert outside the viewer's scope refused");
        ui.audit(
            &ctx.viewer.name,
            "alert.refused",
            id,
            "outside the viewer's role scope",
        )
        .await?;
        return Err(UiError::NotFound);
    }
    Ok(alert)
}

/// The context with the phrase highlighted (case-insensitive; unhighlighted when it cannot be found,
/// e.g. when the typed text was obfuscated and matched after normalisation).
pub fn highlight(context: &str, phrase: &str) -> Html {
    let lower = context.to_lowercase();
    let needle = phrase.to_lowercase();
    // Lower-casing can change byte lengths; only use the match when offsets line up.
    if !needle.is_empty() && lower.len() == context.len() {
        if let Some(start) = lower.find(&needle) {
            let end = start + needle.len();
            if context.is_char_boundary(start) && context.is_char_boundary(end) {
                return html!(
                    "{}<mark>{}</mark>{}",
                    &context[..start],
                    &context[start..end],
                    &context[end..]
                );
            }
        }
    }
    super::html::text(context)
}

fn screenshot_part(ui: &Ui, ctx: &Ctx, alert: &UiAlert) -> Html {
    let no_capture = alert
        .category
        .parse::<ward_protocol::Category>()
        .is_ok_and(|c| c.no_capture());
    if no_capture {
        let csam = if alert.category == "csam" {
            Html::lit(
                " <strong>Do not look at, copy or photograph the device's screen or files. Leave the device \
                 as it is and follow your safeguarding procedure (police referral).</strong>",
            )
        } else {
            Html::new()
        };
        return html!(
            "<p class=\"notice\">No screenshot: alerts in the {} category never capture the screen, because it may \
             show an indecent image of a child, which staff must never copy or store.{}</p>",
            alert.category,
            csam
        );
    }
    match &alert.screenshot_sha256 {
        Some(_) => {
            let expires = now_us() / 1_000_000 + SCREENSHOT_LINK_SECONDS;
            let sig = ui
                .key
                .sign_link("screenshot", &alert.id, &ctx.viewer.name, expires);
            html!(
                "<p><a class=\"button\" id=\"screenshot-link\" href=\"/alerts/{}/screenshot?exp={}&amp;sig={}\" target=\"_blank\" \
                 rel=\"noopener\">View the screenshot (full size, opens in a new tab)</a> \
                 <span class=\"muted\">The link works for you for five minutes; viewing it is recorded.</span></p>",
                alert.id,
                expires,
                url_encode(&sig)
            )
        }
        None => html!(
            "<p class=\"muted\">No screenshot: {}.</p>",
            alert
                .no_screenshot_reason
                .clone()
                .unwrap_or_else(|| match alert.source.as_str() {
                    "dns" => "a blocked DNS query has no screen to capture".into(),
                    "device" => "this alert is about the device itself".into(),
                    _ => "none was taken".into(),
                })
        ),
    }
}

/// `GET /alerts/{id}`.
pub async fn page(
    State(ui): State<Ui>,
    Signed(ctx): Signed,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, UiError> {
    let alert = visible_alert(&ui, &ctx, &id).await?;
    ui.audit(&ctx.viewer.name, "alert.view", &alert.id, "")
        .await?;
    let mut others = scoped(&ctx.viewer);
    let mut history = Vec::new();
    if let Some(user) = &alert.user {
        others.user = Some(user.clone());
        others.since = Some(days_ago(30));
        history = {
            let f = others.clone();
            ui.db(move |s| s.queue(&f, 50)).await?
        };
        history.retain(|a| a.id != alert.id);
    }
    let (notes, audit) = {
        let (a, b) = (alert.id.clone(), alert.id.clone());
        let sees_audit = ctx.viewer.sees_audit();
        ui.db(move |s| {
            Ok((
                s.triage_notes(&a)?,
                if sees_audit {
                    s.audit(Some(&b), 50)?
                } else {
                    Vec::new()
                },
            ))
        })
        .await?
    };
    let saved = query_pairs(request.uri().query()).get("saved").is_some();
    Ok(page_response(layout::page(
        &ctx,
        &format!("Alert: {}", alert.phrase),
        "",
        render(&ui, &ctx, &alert, &history, &notes, &audit, saved),
    )))
}

fn render(
    ui: &Ui,
    ctx: &Ctx,
    alert: &UiAlert,
    history: &[UiAlert],
    notes: &[super::store::TriageNote],
    audit: &[super::store::AuditRecord],
    saved: bool,
) -> Html {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let facts = html!(
        "<dl class=\"facts\"><dt>Person</dt><dd id=\"who\">{}</dd><dt>Group</dt><dd>{}</dd><dt>Device</dt><dd>{} <span class=\"muted\">({})</span></dd>\
         <dt>When</dt><dd>{}</dd><dt>Severity</dt><dd>{}</dd><dt>Category</dt><dd>{}</dd><dt>Source</dt><dd>{}</dd>\
         <dt>Application</dt><dd>{}</dd><dt>Window title</dt><dd id=\"window-title\">{}</dd><dt>Address</dt><dd>{}</dd>\
         <dt>Status</dt><dd id=\"status\">{}</dd></dl>",
        opt(&alert.user),
        opt(&alert.group),
        alert.hostname.clone().unwrap_or_else(|| alert.device.clone()),
        alert.device,
        ui.time(alert.time),
        severity(alert.severity),
        alert.category,
        alert.source,
        opt(&alert.application),
        opt(&alert.window_title),
        opt(&alert.client_ip),
        status_label(&alert.status)
    );
    let context = if alert.context.is_empty() {
        html!(
            "<p class=\"context\" id=\"context\"><mark>{}</mark></p>",
            alert.phrase
        )
    } else {
        html!(
            "<p class=\"context\" id=\"context\">{}</p>",
            highlight(&alert.context, &alert.phrase)
        )
    };
    let radios: Html = STATUSES
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| *s != "new")
        .map(|(i, (value, label))| {
            html!(
                "<div><input type=\"radio\" name=\"status\" id=\"s-{}\" value=\"{}\" data-key=\"{}\" required> \
                 <label for=\"s-{}\">{} <span class=\"muted\">({})</span></label></div>",
                value,
                value,
                i,
                value,
                label,
                i
            )
        })
        .collect();
    let notes_html: Html = notes
        .iter()
        .map(|n| {
            html!(
                "<li><strong>{}</strong> — {} by {}: {}</li>",
                status_label(&n.status),
                ui.time(n.time),
                n.user,
                n.note
            )
        })
        .collect();
    let history_html = if history.is_empty() {
        Html::lit("<p class=\"muted\">None.</p>")
    } else {
        let rows: Html = history.iter().map(|a| row(ui, a, false)).collect();
        html!(
            "<table><thead><tr><th scope=\"col\">Severity</th><th scope=\"col\">Phrase</th><th scope=\"col\">Category</th>\
             <th scope=\"col\">When</th><th scope=\"col\" class=\"opt\">Where</th><th scope=\"col\" class=\"opt\">Device</th>\
             <th scope=\"col\">Status</th></tr></thead><tbody>{}</tbody></table>",
            rows
        )
    };
    let audit_html = if ctx.viewer.sees_audit() {
        let items: Html = audit
            .iter()
            .map(|e| {
                html!(
                    "<li>{} — {} by {} {}</li>",
                    ui.time(e.time),
                    e.action,
                    e.actor,
                    e.detail
                )
            })
            .collect();
        html!("<section class=\"panel\" aria-labelledby=\"h-audit\"><h2 id=\"h-audit\">Audit trail</h2><ul id=\"audit\">{}</ul></section>", items)
    } else {
        Html::new()
    };
    let saved = if saved {
        Html::lit("<p class=\"ok\" role=\"status\">Saved.</p>")
    } else {
        Html::new()
    };
    html!(
        "{}<div class=\"grid2\"><div>{}<h2>What was typed or shown</h2>{}{}\
         <h2>Other alerts for this person in the last 30 days</h2>{}</div>\
         <div><form method=\"post\" action=\"/alerts/{}/triage\" class=\"panel\">{}<fieldset><legend>Outcome</legend>{}</fieldset>\
         <label for=\"note\">Note</label><textarea id=\"note\" name=\"note\"></textarea>\
         <p><button type=\"submit\">Save triage</button></p></form>\
         <section class=\"panel\" aria-labelledby=\"h-notes\"><h2 id=\"h-notes\">Triage notes</h2><ul id=\"notes\">{}</ul></section>{}</div></div>",
        saved,
        facts,
        context,
        screenshot_part(ui, ctx, alert),
        history_html,
        alert.id,
        ctx.csrf_field(),
        radios,
        notes_html,
        audit_html
    )
}

/// Records one outcome and note on each alert the viewer may see, auditing each.
///
/// # Errors
/// A store failure.
pub async fn apply_triage(
    ui: &Ui,
    ctx: &Ctx,
    ids: Vec<String>,
    status: &str,
    note: &str,
) -> Result<usize, UiError> {
    let mut allowed = Vec::new();
    for id in ids.into_iter().take(500) {
        if visible_alert(ui, ctx, &id).await.is_ok() {
            allowed.push(id);
        }
    }
    let (list, st, nt, by) = (
        allowed.clone(),
        status.to_string(),
        note.to_string(),
        ctx.viewer.name.clone(),
    );
    let changed = ui
        .db(move |s| s.triage(&list, &st, &nt, &by, now_us()))
        .await?;
    for id in &allowed {
        ui.audit(
            &ctx.viewer.name,
            "alert.triage",
            id,
            &format!("status {status}; note: {note}"),
        )
        .await?;
    }
    Ok(changed)
}

/// `POST /alerts/{id}/triage`.
pub async fn triage(
    State(ui): State<Ui>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, UiError> {
    let Posted { ctx, form } = posted;
    let alert = visible_alert(&ui, &ctx, &id).await?;
    let status = form.get("status").unwrap_or_default().to_string();
    if !STATUSES.iter().any(|(s, _)| *s == status) {
        return Err(UiError::BadRequest("Choose an outcome.".into()));
    }
    let note = form.get("note").unwrap_or_default().to_string();
    if matches!(status.as_str(), "escalated" | "referred") && note.is_empty() {
        return Err(UiError::BadRequest(
            "An escalation or referral needs a note saying what was done.".into(),
        ));
    }
    apply_triage(&ui, &ctx, vec![alert.id.clone()], &status, &note).await?;
    Ok(redirect(&format!("/alerts/{}?saved=1", alert.id)))
}

/// `GET /alerts/{id}/screenshot?exp=..&sig=..`.
pub async fn screenshot(
    State(ui): State<Ui>,
    Signed(ctx): Signed,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, UiError> {
    let alert = visible_alert(&ui, &ctx, &id).await?;
    let query = query_pairs(request.uri().query());
    let expires: i64 = query.get("exp").and_then(|e| e.parse().ok()).unwrap_or(0);
    let signature = query.get("sig").unwrap_or_default();
    let now = now_us() / 1_000_000;
    if !ui.key.check_link(
        "screenshot",
        &alert.id,
        &ctx.viewer.name,
        expires,
        now,
        signature,
    ) {
        ui.audit(
            &ctx.viewer.name,
            "screenshot.refused",
            &alert.id,
            "link missing, expired or not issued to this viewer",
        )
        .await?;
        return Err(UiError::Forbidden(
            "This screenshot link has expired or was issued to someone else. Open it again from the alert page.",
        ));
    }
    let no_capture = alert
        .category
        .parse::<ward_protocol::Category>()
        .is_ok_and(|c| c.no_capture());
    let (Some(sha), Some(format), false) = (
        alert.screenshot_sha256.clone(),
        alert.screenshot_format.clone(),
        no_capture,
    ) else {
        return Err(UiError::NotFound);
    };
    let app = ui.app.clone();
    let wanted = (sha.clone(), format.clone());
    let bytes = tokio::task::spawn_blocking(move || app.screenshots().read(&wanted.0, &wanted.1))
        .await
        .map_err(|e| UiError::Internal(format!("screenshot task: {e}")))?
        .map_err(|e| UiError::Internal(format!("{e:#}")))?
        .ok_or(UiError::NotFound)?;
    ui.audit(&ctx.viewer.name, "screenshot.view", &alert.id, "")
        .await?;
    let content_type = if format == "webp" {
        "image/webp"
    } else {
        "image/png"
    };
    let mut response = bytes.into_response();
    secure_headers(response.headers_mut(), content_type);
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrase_is_highlighted_and_everything_escaped() {
        let html = highlight("I want to <b>KILL</b> myself", "kill");
        assert_eq!(
            html.as_str(),
            "I want to &lt;b&gt;<mark>KILL</mark>&lt;/b&gt; myself"
        );
        let html = highlight("k i l l", "kill");
        assert_eq!(html.as_str(), "k i l l");
    }
}
