//! The daily queue: new alerts grouped by person, the most severe person first, with filters, counts
//! per category and bulk triage. Only alerts within the viewer's role scope are ever read.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::response::Response;

use super::html::{url_encode, Html};
use super::layout::{self, severity, status_label, STATUSES};
use super::roles::Viewer;
use super::store::{AlertFilter, UiAlert};
use super::{
    now_us, page_response, query_pairs, redirect, Ctx, FormData, Posted, Signed, Ui, UiError,
};
use crate::html;
use crate::store::Micros;

/// Most alerts one queue page lists (the counts cover every match).
pub const QUEUE_LIMIT: u32 = 500;

/// The viewer's scope as a store filter.
pub fn scoped(viewer: &Viewer) -> AlertFilter {
    let scope = viewer.alert_scope();
    AlertFilter {
        scope_pupils_all: scope.pupils_all,
        scope_pupil_groups: scope.pupil_groups,
        scope_staff: scope.staff,
        scope_device: scope.device,
        staff_groups: super::roles::STAFF_GROUPS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..AlertFilter::default()
    }
}

fn date_us(value: Option<&str>, ui: &Ui, end_of_day: bool) -> Option<Micros> {
    let date: jiff::civil::Date = value?.parse().ok()?;
    let date = if end_of_day {
        date.tomorrow().ok()?
    } else {
        date
    };
    let zoned = date
        .to_zoned(ui.app.config().silent.timezone.clone())
        .ok()?;
    Some(zoned.timestamp().as_microsecond())
}

fn nonempty(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_string)
}

/// Builds the filter from the query string.
fn filter_from(query: &FormData, viewer: &Viewer, ui: &Ui) -> AlertFilter {
    let status = match query.get("status") {
        None => Some("new".to_string()),
        Some("any") => None,
        Some(s) => nonempty(Some(s)),
    };
    AlertFilter {
        since: date_us(query.get("from"), ui, false),
        until: date_us(query.get("to"), ui, true),
        category: nonempty(query.get("category")),
        min_severity: query.get("severity").and_then(|s| s.parse().ok()),
        status,
        group: nonempty(query.get("group")),
        device: nonempty(query.get("device")),
        user: nonempty(query.get("user")),
        text: nonempty(query.get("q")),
        ..scoped(viewer)
    }
}

/// Groups alerts by person; the most severe (then most recent) person first.
pub fn group_by_person(alerts: Vec<UiAlert>) -> Vec<(String, Vec<UiAlert>)> {
    let mut groups: HashMap<String, Vec<UiAlert>> = HashMap::new();
    for alert in alerts {
        let key = match (&alert.user, alert.source.as_str()) {
            (Some(user), _) => user.clone(),
            (None, "device") => format!("device {}", alert.device),
            (None, _) => format!("unknown user on {}", alert.device),
        };
        groups.entry(key).or_default().push(alert);
    }
    let mut groups: Vec<(String, Vec<UiAlert>)> = groups.into_iter().collect();
    for (_, alerts) in &mut groups {
        alerts.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.time.cmp(&a.time)));
    }
    groups.sort_by(|(an, a), (bn, b)| {
        let key = |v: &Vec<UiAlert>| (v[0].severity, v.iter().map(|x| x.time).max().unwrap_or(0));
        key(b).cmp(&key(a)).then(an.cmp(bn))
    });
    groups
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(String, String)]) -> Html {
    let opts: Html = options
        .iter()
        .map(|(value, text)| {
            if Some(value.as_str()) == current {
                html!("<option value=\"{}\" selected>{}</option>", value, text)
            } else {
                html!("<option value=\"{}\">{}</option>", value, text)
            }
        })
        .collect();
    html!(
        "<div><label for=\"f-{}\">{}</label><select id=\"f-{}\" name=\"{}\">{}</select></div>",
        name,
        label,
        name,
        name,
        opts
    )
}

fn filters_form(query: &FormData) -> Html {
    let mut categories = vec![(String::new(), "Any".to_string())];
    categories.extend(
        ward_protocol::Category::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), c.as_str().to_string())),
    );
    let severities: Vec<(String, String)> = [
        ("", "Any"),
        ("5", "5 only"),
        ("4", "4 and above"),
        ("3", "3 and above"),
        ("2", "2 and above"),
    ]
    .iter()
    .map(|(v, t)| (v.to_string(), t.to_string()))
    .collect();
    let mut statuses = vec![("any".to_string(), "Any".to_string())];
    statuses.extend(STATUSES.iter().map(|(v, t)| (v.to_string(), t.to_string())));
    let text = |name: &str, label: &str, kind: &str| {
        html!(
            "<div><label for=\"f-{}\">{}</label><input type=\"{}\" id=\"f-{}\" name=\"{}\" value=\"{}\"></div>",
            name,
            label,
            kind,
            name,
            name,
            query.get(name).unwrap_or_default()
        )
    };
    html!(
        "<form method=\"get\" action=\"/\" class=\"filters\" role=\"search\" aria-label=\"Filter alerts\">\
         {}{}{}{}{}{}{}{}{}<div><button type=\"submit\">Filter</button> <a href=\"/\">Clear</a></div></form>",
        text("from", "From", "date"),
        text("to", "To", "date"),
        select("category", "Category", query.get("category"), &categories),
        select("severity", "Severity", query.get("severity"), &severities),
        select("status", "Status", Some(query.get("status").unwrap_or("new")), &statuses),
        text("group", "Group", "text"),
        text("device", "Device", "text"),
        text("user", "Person", "text"),
        text("q", "Text", "search")
    )
}

/// The link to the queue with one more filter set.
fn with_filter(query: &FormData, name: &str, value: &str) -> String {
    let mut parts: Vec<String> = query
        .0
        .iter()
        .filter(|(k, v)| k != name && !v.is_empty())
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect();
    parts.push(format!("{}={}", url_encode(name), url_encode(value)));
    format!("/?{}", parts.join("&"))
}

/// One alert as a queue row.
pub fn row(ui: &Ui, alert: &UiAlert, checkbox: bool) -> Html {
    let check = if checkbox {
        html!(
            "<td><input type=\"checkbox\" name=\"id\" value=\"{}\" id=\"c-{}\" aria-label=\"Select alert {}\"></td>",
            alert.id,
            alert.id,
            alert.phrase
        )
    } else {
        Html::new()
    };
    let place = alert
        .application
        .clone()
        .or_else(|| alert.window_title.clone())
        .unwrap_or_else(|| alert.source.clone());
    html!(
        "<tr class=\"row\">{}<td>{}</td><td><a href=\"/alerts/{}\">{}</a></td><td>{}</td><td>{}</td>\
         <td class=\"opt\">{}</td><td class=\"opt\">{}</td><td>{}</td></tr>",
        check,
        severity(alert.severity),
        alert.id,
        alert.phrase,
        alert.category,
        ui.time(alert.time),
        place,
        alert.hostname.clone().unwrap_or_else(|| alert.device.clone()),
        status_label(&alert.status)
    )
}

/// `GET /`.
pub async fn page(
    State(ui): State<Ui>,
    Signed(ctx): Signed,
    request: Request,
) -> Result<Response, UiError> {
    if !ctx.viewer.sees_alerts() {
        // Governors (and anyone without an alert role) start at the reports.
        return Ok(redirect("/reports"));
    }
    let query = query_pairs(request.uri().query());
    let filter = filter_from(&query, &ctx.viewer, &ui);
    let f2 = filter.clone();
    let (alerts, counts) = ui
        .db(move |s| Ok((s.queue(&filter, QUEUE_LIMIT)?, s.category_counts(&f2)?)))
        .await?;
    ui.audit(
        &ctx.viewer.name,
        "queue.view",
        "queue",
        &format!(
            "{} alerts listed; filter {}",
            alerts.len(),
            request.uri().query().unwrap_or("")
        ),
    )
    .await?;
    Ok(page_response(layout::page(
        &ctx,
        "Alert queue",
        "/",
        render(&ui, &ctx, &query, alerts, counts),
    )))
}

fn render(
    ui: &Ui,
    ctx: &Ctx,
    query: &FormData,
    alerts: Vec<UiAlert>,
    counts: Vec<(String, i64)>,
) -> Html {
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let counts_html: Html = counts
        .iter()
        .map(|(category, n)| {
            html!(
                "<li><a href=\"{}\">{} <strong>{}</strong></a></li>",
                with_filter(query, "category", category),
                category,
                n
            )
        })
        .collect();
    let shown = alerts.len();
    let groups = group_by_person(alerts);
    let sections: Html = groups
        .iter()
        .map(|(person, alerts)| {
            let group = alerts[0].group.clone().unwrap_or_else(|| "group not known".into());
            let rows: Html = alerts.iter().map(|a| row(ui, a, true)).collect();
            html!(
                "<section class=\"person\" aria-label=\"{}\"><h2><span>{}</span><span class=\"muted\">{}</span>\
                 <span>{} alert(s)</span>{}</h2><table><thead><tr><th scope=\"col\"><span class=\"muted\">Select</span></th>\
                 <th scope=\"col\">Severity</th><th scope=\"col\">Phrase</th><th scope=\"col\">Category</th><th scope=\"col\">When</th>\
                 <th scope=\"col\" class=\"opt\">Where</th><th scope=\"col\" class=\"opt\">Device</th><th scope=\"col\">Status</th></tr></thead>\
                 <tbody>{}</tbody></table></section>",
                person,
                person,
                group,
                alerts.len(),
                severity(alerts[0].severity),
                rows
            )
        })
        .collect();
    let statuses: Html = STATUSES
        .iter()
        .filter(|(s, _)| *s != "new")
        .map(|(value, label)| html!("<option value=\"{}\">{}</option>", value, label))
        .collect();
    let more = if (shown as i64) < total {
        html!("<p class=\"muted\">Showing the newest {} of {}; narrow the filters to see the rest.</p>", shown, total)
    } else {
        Html::new()
    };
    let body = if groups.is_empty() {
        Html::lit("<p class=\"ok\">No alerts match. The queue is clear.</p>")
    } else {
        html!(
            "<form method=\"post\" action=\"/alerts/bulk\">{}{}{}\
             <fieldset class=\"panel\"><legend>Triage the selected alerts</legend>\
             <label for=\"bulk-status\">Outcome</label><select id=\"bulk-status\" name=\"status\">{}</select>\
             <label for=\"bulk-note\">Note (recorded with each alert)</label><textarea id=\"bulk-note\" name=\"note\"></textarea>\
             <p><button type=\"submit\">Apply to selected</button></p></fieldset></form>",
            ctx.csrf_field(),
            more,
            sections,
            statuses
        )
    };
    html!(
        "{}<h2>By category <span class=\"muted\">({} matching)</span></h2><ul class=\"counts\">{}</ul>\
         <p class=\"kbdhelp\">Keys: j/k next/previous, o open, x select.</p>{}",
        filters_form(query),
        total,
        counts_html,
        body
    )
}

/// `POST /alerts/bulk`: one outcome and note for every selected alert the viewer may triage.
pub async fn bulk(State(ui): State<Ui>, posted: Posted) -> Result<Response, UiError> {
    let Posted { ctx, form } = posted;
    if ctx.pending.is_some() || !ctx.viewer.sees_alerts() {
        return Err(UiError::Forbidden("Your role does not triage alerts."));
    }
    let ids = form.all("id");
    if ids.is_empty() {
        return Ok(redirect("/"));
    }
    let status = form.get("status").unwrap_or_default().to_string();
    if !STATUSES.iter().any(|(s, _)| *s == status) {
        return Err(UiError::BadRequest("Choose an outcome.".into()));
    }
    let note = form.get("note").unwrap_or_default().to_string();
    super::alert::apply_triage(&ui, &ctx, ids, &status, &note).await?;
    Ok(redirect("/"))
}

/// Now minus `days`, in stored microseconds.
pub fn days_ago(days: i64) -> Micros {
    now_us() - days * 86_400_000_000
}
