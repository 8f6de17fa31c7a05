//! Reports for governors, SLT, the DSL and IT: alerts and blocked attempts by category over time
//! (SVG drawn here, with the numbers in a table beside it), device coverage, the filtering change
//! log, and the CSV export of alerts for the school's safeguarding record system (CPOMS, MyConcern).
//!
//! Everything on the report page is an aggregate: no names, phrases or screenshots, so governors can
//! see it. The CSV export carries alert detail and is limited to roles that see alerts, scoped like
//! the queue, and audited.

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::chart::{stacked_bars, Series};
use super::csv::CsvWriter;
use super::html::Html;
use super::layout::{self, status_label};
use super::queue::scoped;
use super::store::PeriodCount;
use super::{now_us, page_response, query_pairs, secure_headers, Signed, Ui, UiError};
use crate::html;
use crate::store::Micros;

/// Weeks shown in the charts.
const WEEKS: i64 = 12;
const WEEK_US: Micros = 7 * 86_400_000_000;

/// Turns per-period counts into chart series, one per category, most frequent first.
pub fn series(counts: &[PeriodCount], periods: usize) -> Vec<Series> {
    let mut by_category: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for c in counts {
        let values = by_category
            .entry(&c.category)
            .or_insert_with(|| vec![0; periods]);
        if let Some(slot) = usize::try_from(c.period)
            .ok()
            .and_then(|p| values.get_mut(p))
        {
            *slot += c.count.max(0) as u64;
        }
    }
    let mut out: Vec<Series> = by_category
        .into_iter()
        .map(|(label, values)| Series {
            label: label.to_string(),
            values,
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.values.iter().sum::<u64>()));
    out
}

fn table(title: &str, periods: &[String], series: &[Series]) -> Html {
    let head: Html = periods
        .iter()
        .map(|p| html!("<th scope=\"col\">{}</th>", p))
        .collect();
    let rows: Html = series
        .iter()
        .map(|s| {
            let cells: Html = s.values.iter().map(|v| html!("<td>{}</td>", *v)).collect();
            html!(
                "<tr><th scope=\"row\">{}</th>{}<td><strong>{}</strong></td></tr>",
                s.label,
                cells,
                s.values.iter().sum::<u64>()
            )
        })
        .collect();
    html!(
        "<details><summary>{} as a table</summary><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Category</th>{}\
         <th scope=\"col\">Total</th></tr></thead><tbody>{}</tbody></table></div></details>",
        title,
        head,
        rows
    )
}

/// `GET /reports`.
pub async fn page(State(ui): State<Ui>, Signed(ctx): Signed) -> Result<Response, UiError> {
    if !ctx.viewer.sees_reports() {
        return Err(UiError::Forbidden(
            "Reports are for governors, SLT, the DSL and IT.",
        ));
    }
    let now = now_us();
    let start = now - WEEKS * WEEK_US;
    let (alerts, blocked, changes) = ui
        .db(move |s| {
            Ok((
                s.period_counts(start, WEEK_US, false)?,
                s.period_counts(start, WEEK_US, true)?,
                s.policy_changes(50)?,
            ))
        })
        .await?;
    let devices = ui.app.with_store(|s| s.devices()).await?;
    let periods: Vec<String> = (0..WEEKS)
        .map(|w| {
            jiff::Timestamp::from_microsecond(start + w * WEEK_US)
                .map(|t| {
                    t.to_zoned(ui.app.config().silent.timezone.clone())
                        .strftime("%-d %b")
                        .to_string()
                })
                .unwrap_or_default()
        })
        .collect();
    let alert_series = series(&alerts, WEEKS as usize);
    let blocked_series = series(&blocked, WEEKS as usize);
    let live = devices.iter().filter(|d| d.revoked.is_none()).count();
    let day_ago = now - 86_400_000_000;
    let reporting = devices
        .iter()
        .filter(|d| d.revoked.is_none() && d.last_heartbeat.is_some_and(|h| h >= day_ago))
        .count();
    let silent = devices
        .iter()
        .filter(|d| d.revoked.is_none() && d.silent_since.is_some())
        .count();
    let helpers = devices
        .iter()
        .filter(|d| d.revoked.is_none() && d.dead_helpers.as_deref().is_some_and(|h| !h.is_empty()))
        .count();
    let export = if ctx.viewer.may_export() {
        html!(
            "<h2>Export alerts for the safeguarding record</h2><form method=\"get\" action=\"/reports/alerts.csv\" class=\"filters\">\
             <div><label for=\"x-from\">From</label><input type=\"date\" id=\"x-from\" name=\"from\"></div>\
             <div><label for=\"x-to\">To</label><input type=\"date\" id=\"x-to\" name=\"to\"></div>\
             <div><label for=\"x-status\">Status</label><select id=\"x-status\" name=\"status\"><option value=\"any\">Any</option>\
             <option value=\"escalated\">{}</option><option value=\"referred\">{}</option><option value=\"actioned\">{}</option></select></div>\
             <div><button type=\"submit\">Download CSV</button></div></form><p class=\"muted\">The file opens in CPOMS and MyConcern's CSV import; \
             the export is recorded in the audit log.</p>",
            status_label("escalated"),
            status_label("referred"),
            status_label("actioned")
        )
    } else {
        Html::new()
    };
    let body = html!(
        "<h2>Safeguarding alerts by category, last {} weeks</h2>{}{}\
         <h2>Blocked attempts reported by the filter, last {} weeks</h2>{}{}\
         <h2>Device coverage</h2><dl class=\"facts\" id=\"coverage\"><dt>Devices enrolled</dt><dd>{}</dd><dt>Reporting in the last 24 hours</dt><dd>{}</dd>\
         <dt>Silent now</dt><dd>{}</dd><dt>With a stopped monitoring helper</dt><dd>{}</dd></dl>\
         <h2>Filtering change log</h2>{}{}",
        WEEKS,
        stacked_bars("Safeguarding alerts per week by category", &periods, &alert_series),
        table("Alerts", &periods, &alert_series),
        WEEKS,
        stacked_bars("Blocked attempts per week by category", &periods, &blocked_series),
        table("Blocked attempts", &periods, &blocked_series),
        live,
        reporting,
        silent,
        helpers,
        super::policy::change_log(&ui, &changes, ctx.viewer.is_admin()),
        export
    );
    ui.audit(&ctx.viewer.name, "reports.view", "reports", "")
        .await?;
    Ok(page_response(layout::page(
        &ctx, "Reports", "/reports", body,
    )))
}

/// `GET /reports/alerts.csv?from=&to=&status=`.
pub async fn export(
    State(ui): State<Ui>,
    Signed(ctx): Signed,
    request: Request,
) -> Result<Response, UiError> {
    if !ctx.viewer.may_export() {
        return Err(UiError::Forbidden(
            "The export carries alert detail; your role sees aggregates only.",
        ));
    }
    let query = query_pairs(request.uri().query());
    let parse_date = |v: Option<&str>, end: bool| -> Option<Micros> {
        let d: jiff::civil::Date = v?.parse().ok()?;
        let d = if end { d.tomorrow().ok()? } else { d };
        Some(
            d.to_zoned(ui.app.config().silent.timezone.clone())
                .ok()?
                .timestamp()
                .as_microsecond(),
        )
    };
    let mut filter = scoped(&ctx.viewer);
    filter.since = parse_date(query.get("from"), false);
    filter.until = parse_date(query.get("to"), true);
    filter.status = query
        .get("status")
        .filter(|s| !s.is_empty() && *s != "any")
        .map(str::to_string);
    let alerts = ui.db(move |s| s.queue(&filter, 100_000)).await?;
    let mut csv = CsvWriter::new();
    csv.row([
        "alert_id",
        "date_time",
        "pupil",
        "group",
        "category",
        "severity",
        "phrase",
        "context",
        "application",
        "window_title",
        "device",
        "status",
        "notes",
    ]);
    for a in &alerts {
        let id = a.id.clone();
        let notes = ui.db(move |s| s.triage_notes(&id)).await?;
        let notes: Vec<String> = notes
            .iter()
            .map(|n| format!("{} {}: {}", ui.time(n.time), n.user, n.note))
            .collect();
        let time = jiff::Timestamp::from_microsecond(a.time)
            .map(|t| t.to_string())
            .unwrap_or_default();
        csv.row([
            a.id.as_str(),
            &time,
            a.user.as_deref().unwrap_or(""),
            a.group.as_deref().unwrap_or(""),
            &a.category,
            &a.severity.to_string(),
            &a.phrase,
            &a.context,
            a.application.as_deref().unwrap_or(""),
            a.window_title.as_deref().unwrap_or(""),
            a.hostname.as_deref().unwrap_or(&a.device),
            status_label(&a.status),
            &notes.join(" | "),
        ]);
    }
    ui.audit(
        &ctx.viewer.name,
        "alerts.export",
        "export",
        &format!(
            "{} alerts; {}",
            alerts.len(),
            request.uri().query().unwrap_or("")
        ),
    )
    .await?;
    let mut response = csv.finish().into_response();
    secure_headers(response.headers_mut(), "text/csv; charset=utf-8");
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"ward-alerts.csv\""),
    );
    Ok(response)
}
