//! The page shell: skip link, header with the sections this viewer may use, main landmark, and the
//! stylesheet. One place decides the navigation so a link never appears to a role that would be
//! refused (the routes check again).

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::html::Html;
use super::{secure_headers, Ctx};
use crate::html;

/// The stylesheet (plain CSS, no build step).
const CSS: &str = include_str!("../../assets/ward.css");
/// Keyboard shortcuts for the queue and alert pages; everything works without it.
const JS: &str = include_str!("../../assets/ward.js");

/// Serves the stylesheet.
pub async fn stylesheet() -> Response {
    let mut response = CSS.into_response();
    secure_headers(response.headers_mut(), "text/css; charset=utf-8");
    response
}

/// Serves the keyboard-shortcut script.
pub async fn script() -> Response {
    let mut response = JS.into_response();
    secure_headers(response.headers_mut(), "text/javascript; charset=utf-8");
    response
}

/// A page for a signed-in viewer.
pub fn page(ctx: &Ctx, title: &str, current: &str, body: Html) -> Html {
    let v = &ctx.viewer;
    let mut links: Vec<(&str, &str)> = Vec::new();
    if v.sees_alerts() && ctx.pending.is_none() {
        links.push(("/", "Queue"));
    }
    if v.sees_reports() {
        links.push(("/reports", "Reports"));
    }
    if v.may_export() || v.has(super::roles::Role::Dsl) {
        links.push(("/suppressions", "Suppressions"));
    }
    if v.is_admin() || v.has(super::roles::Role::Dsl) {
        links.push(("/notices", "Notices"));
    }
    if v.is_admin() {
        links.push(("/devices", "Devices"));
        links.push(("/policy", "Filtering"));
        links.push(("/unblock", "Unblock requests"));
        links.push(("/users", "Users"));
    }
    if v.sees_audit() {
        links.push(("/audit", "Audit log"));
    }
    let nav: Html = links
        .into_iter()
        .map(|(href, label)| {
            if href == current {
                html!(
                    "<li><a href=\"{}\" aria-current=\"page\">{}</a></li>",
                    href,
                    label
                )
            } else {
                html!("<li><a href=\"{}\">{}</a></li>", href, label)
            }
        })
        .collect();
    let roles: Vec<&str> = v.roles.iter().map(|r| r.as_str()).collect();
    html!(
        "<!doctype html><html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Ward</title><link rel=\"stylesheet\" href=\"/assets/ward.css\">\
         <script src=\"/assets/ward.js\" defer></script></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><span class=\"brand\">Ward</span><nav aria-label=\"Sections\"><ul>{}</ul></nav>\
         <form method=\"post\" action=\"/logout\" class=\"who\">{}<span>{} ({})</span> \
         <a href=\"/account/totp\">Account</a> <button type=\"submit\">Sign out</button></form></header>\
         <main id=\"main\"><h1>{}</h1>{}</main></body></html>",
        title,
        nav,
        ctx.csrf_field(),
        v.name,
        roles.join(", "),
        title,
        body
    )
}

/// A page with no viewer (sign-in, errors, the block page).
pub fn bare(title: &str, body: Html) -> String {
    html!(
        "<!doctype html><html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Ward</title><link rel=\"stylesheet\" href=\"/assets/ward.css\"></head>\
         <body class=\"bare\"><main id=\"main\"><h1>{}</h1>{}</main></body></html>",
        title,
        title,
        body
    )
    .into_string()
}

/// A severity badge with its word, so colour is never the only cue.
pub fn severity(level: i64) -> Html {
    let word = match level {
        5 => "critical",
        4 => "high",
        3 => "medium",
        2 => "low",
        _ => "info",
    };
    html!(
        "<span class=\"sev sev{}\">{} · {}</span>",
        level.clamp(1, 5),
        level,
        word
    )
}

/// The triage statuses, as stored and as shown.
pub const STATUSES: [(&str, &str); 6] = [
    ("new", "New"),
    ("false-positive", "False positive"),
    ("no-action", "No action needed"),
    ("actioned", "Actioned"),
    ("escalated", "Escalated to DSL"),
    ("referred", "Referred to police or Prevent"),
];

/// The label of a status.
pub fn status_label(status: &str) -> &str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or(status, |(_, l)| l)
}

/// Whether a request's headers ask for something other than the collector's own host name.
pub fn host_of(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
    let host = if host.starts_with('[') {
        host.split_once(']').map(|(h, _)| format!("{h}]"))?
    } else {
        host.split(':').next()?.to_string()
    };
    Some(host.to_ascii_lowercase())
}
