//! Filter policy pages: the policy as tiers, categories, allow/deny lists and schedules; editing the
//! policy document the resolvers load; the change-control log (who, what, when, why, with a diff);
//! optional approval by a second person before a change reaches resolvers; and the unblock requests
//! raised from the block page.
//!
//! The document is edited as TOML, the form resolvers read, so there is one format and one parser;
//! a change is checked here (TOML, known categories, nothing that lifts an unliftable category) and
//! resolvers check it again before they use it.

use axum::extract::{Path, State};
use axum::response::Response;
use sha2::{Digest, Sha256};
use ward_protocol::Category;

use super::html::Html;
use super::layout;
use super::store::PolicyChange;
use super::{now_us, page_response, redirect, Ctx, Posted, Signed, Ui, UiError};
use crate::html;

fn require_admin(ctx: &Ctx) -> Result<(), UiError> {
    if ctx.viewer.is_admin() && ctx.pending.is_none() {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "Filtering is managed by administrators.",
        ))
    }
}

/// A line diff of two documents in unified style (`-`, `+`, two lines of context).
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table, from the end (documents are a few hundred lines).
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        let lo = k.saturating_sub(2);
        let hi = (k + 3).min(ops.len());
        ops[lo..hi].iter().any(|(op, _)| *op != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if *op == ' ' && !near_change(k) {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("…\n");
            skipped = false;
        }
        out.push(*op);
        out.push(' ');
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Checks a policy document; every problem found, one per line.
pub fn check_policy(text: &str) -> Result<toml::Table, Vec<String>> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| vec![format!("not valid TOML: {e}")])?;
    let mut problems = Vec::new();
    let Some(tiers) = table.get("tiers").and_then(|t| t.as_table()) else {
        return Err(vec!["the policy defines no [tiers]".into()]);
    };
    let known = |name: &str, at: &str, problems: &mut Vec<String>| {
        if name.parse::<Category>().is_err() {
            problems.push(format!("{at}: `{name}` is not a category"));
        }
    };
    for (tier_name, tier) in tiers {
        let strings = |key: &str, t: &toml::Value| -> Vec<String> {
            t.get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        for c in strings("block", tier) {
            known(&c, &format!("tiers.{tier_name}.block"), &mut problems);
        }
        let schedules = tier
            .get("schedule")
            .and_then(|s| s.as_array())
            .cloned()
            .unwrap_or_default();
        for (i, schedule) in schedules.iter().enumerate() {
            for key in ["block", "allow"] {
                for c in strings(key, schedule) {
                    let at = format!("tiers.{tier_name}.schedule[{i}].{key}");
                    known(&c, &at, &mut problems);
                    if key == "allow" && c.parse::<Category>().is_ok_and(|c| c.unliftable()) {
                        problems.push(format!("{at}: `{c}` can never be allowed, by anyone"));
                    }
                }
            }
        }
    }
    if let Some(default) = table.get("default_tier").and_then(|d| d.as_str()) {
        if !tiers.contains_key(default) {
            problems.push(format!("default_tier: `{default}` is not a tier"));
        }
    }
    if problems.is_empty() {
        Ok(table)
    } else {
        Err(problems)
    }
}

fn list(value: Option<&toml::Value>) -> String {
    value
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The tiers as a table a technician or governor can read.
fn summary(table: &toml::Table) -> Html {
    let Some(tiers) = table.get("tiers").and_then(|t| t.as_table()) else {
        return Html::new();
    };
    let rows: Html = tiers
        .iter()
        .map(|(name, tier)| {
            let schedules: Html = tier
                .get("schedule")
                .and_then(|s| s.as_array())
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            html!(
                                "<li>{}: {}{} {} {}–{}</li>",
                                s.get("name").and_then(|n| n.as_str()).unwrap_or("schedule"),
                                if s.get("allow").is_some() { format!("allow {}", list(s.get("allow"))) } else { String::new() },
                                if s.get("block").is_some() { format!("block {}", list(s.get("block"))) } else { String::new() },
                                list(s.get("days")),
                                s.get("from").and_then(|n| n.as_str()).unwrap_or(""),
                                s.get("to").and_then(|n| n.as_str()).unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            html!(
                "<tr><th scope=\"row\">{}<div class=\"muted\">{}</div></th><td>{}</td><td>{}</td><td>{}</td><td><ul>{}</ul></td><td>{}</td></tr>",
                name,
                tier.get("description").and_then(|d| d.as_str()).unwrap_or(""),
                list(tier.get("block")),
                list(tier.get("allow")),
                list(tier.get("deny")),
                schedules,
                tier.get("safe_search").and_then(|d| d.as_str()).unwrap_or("")
            )
        })
        .collect();
    html!(
        "<table id=\"tiers\"><thead><tr><th scope=\"col\">Tier</th><th scope=\"col\">Blocked categories</th><th scope=\"col\">Allow</th>\
         <th scope=\"col\">Deny</th><th scope=\"col\">Schedules</th><th scope=\"col\">Safe search</th></tr></thead><tbody>{}</tbody></table>\
         <p class=\"muted\">Illegal content (IWF and police-assessed lists) is blocked for every tier; no setting can lift it.</p>",
        rows
    )
}

/// The change-control log as a table (also shown to governors in reports).
pub fn change_log(ui: &Ui, changes: &[PolicyChange], links: bool) -> Html {
    let rows: Html = changes
        .iter()
        .map(|c| {
            let what = if links {
                html!("<a href=\"/policy/changes/{}\">change {}</a>", c.id, c.id)
            } else {
                html!("change {}", c.id)
            };
            let added = c.diff.lines().filter(|l| l.starts_with('+')).count();
            let removed = c.diff.lines().filter(|l| l.starts_with('-')).count();
            html!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>+{} −{}</td><td>{}{}</td></tr>",
                what,
                ui.time(c.time),
                c.author,
                c.reason,
                added,
                removed,
                c.status,
                match (&c.decided_by, c.revision) {
                    (Some(by), Some(rev)) => format!(" (by {by}, revision {rev})"),
                    (Some(by), None) => format!(" (by {by})"),
                    _ => String::new(),
                }
            )
        })
        .collect();
    html!(
        "<table id=\"change-log\"><thead><tr><th scope=\"col\">Change</th><th scope=\"col\">When</th><th scope=\"col\">Who</th>\
         <th scope=\"col\">Why</th><th scope=\"col\">Lines</th><th scope=\"col\">State</th></tr></thead><tbody>{}</tbody></table>",
        rows
    )
}

async fn current_policy(ui: &Ui) -> Result<(i64, String), UiError> {
    let latest = ui.app.with_store(|s| s.latest_policy()).await?;
    Ok(latest
        .map(|p| (p.revision, p.policy_toml))
        .unwrap_or((0, String::new())))
}

async fn render_page(
    ui: &Ui,
    ctx: &Ctx,
    text: Option<String>,
    message: Html,
) -> Result<Response, UiError> {
    let (revision, current) = current_policy(ui).await?;
    let changes = ui.db(|s| s.policy_changes(100)).await?;
    let table = toml::from_str::<toml::Table>(&current).unwrap_or_default();
    let approval = if ui.settings.policy_approval {
        "Changes need a second administrator's approval before they reach the resolvers."
    } else {
        "Changes reach the resolvers as soon as they are saved; each is logged."
    };
    let body = html!(
        "{}<p>Revision {} is in force. {}</p><h2>Tiers</h2>{}\
         <h2>Edit the policy</h2><form method=\"post\" action=\"/policy\" class=\"panel\">{}\
         <input type=\"hidden\" name=\"base\" value=\"{}\"><label for=\"policy\">Policy document (TOML)</label>\
         <textarea class=\"policy\" id=\"policy\" name=\"policy\" spellcheck=\"false\">{}</textarea>\
         <label for=\"reason\">Why (recorded in the change-control log; governors read it)</label>\
         <input type=\"text\" id=\"reason\" name=\"reason\" required class=\"wide\">\
         <p><button type=\"submit\">Propose change</button></p></form>\
         <h2>Filtering change-control log</h2>{}",
        message,
        revision,
        approval,
        summary(&table),
        ctx.csrf_field(),
        revision,
        text.unwrap_or(current),
        change_log(ui, &changes, true)
    );
    Ok(page_response(layout::page(
        ctx,
        "Filtering policy",
        "/policy",
        body,
    )))
}

/// `GET /policy`.
pub async fn page(State(ui): State<Ui>, Signed(ctx): Signed) -> Result<Response, UiError> {
    require_admin(&ctx)?;
    render_page(&ui, &ctx, None, Html::new()).await
}

/// `POST /policy`: propose a change (applied at once unless approval is required).
pub async fn propose(State(ui): State<Ui>, posted: Posted) -> Result<Response, UiError> {
    let Posted { ctx, form } = posted;
    require_admin(&ctx)?;
    let text = form.get("policy").unwrap_or_default().replace("\r\n", "\n");
    let reason = form.get("reason").unwrap_or_default().to_string();
    let base: i64 = form.get("base").and_then(|b| b.parse().ok()).unwrap_or(-1);
    let (revision, current) = current_policy(&ui).await?;
    let problem = if reason.is_empty() {
        Some(vec!["say why the change is needed".to_string()])
    } else if base != revision {
        Some(vec![format!("the policy changed (now revision {revision}) while you edited; review it and propose again")])
    } else if text.trim() == current.trim() {
        Some(vec!["nothing changed".to_string()])
    } else {
        check_policy(&text).err()
    };
    if let Some(problems) = problem {
        let items: Html = problems.iter().map(|p| html!("<li>{}</li>", p)).collect();
        let message = html!("<div class=\"notice\" role=\"alert\"><p>The change was not saved:</p><ul>{}</ul></div>", items);
        return render_page(&ui, &ctx, Some(text), message).await;
    }
    let change = PolicyChange {
        id: 0,
        time: now_us(),
        author: ctx.viewer.name.clone(),
        reason: reason.clone(),
        base_revision: revision,
        policy_toml: text,
        diff: line_diff(
            &current,
            &form.get("policy").unwrap_or_default().replace("\r\n", "\n"),
        ),
        status: "pending".into(),
        decided_by: None,
        decided: None,
        revision: None,
    };
    let diff = change.diff.clone();
    let id = ui.db(move |s| s.propose_policy(&change)).await?;
    ui.audit(
        &ctx.viewer.name,
        "policy.propose",
        &format!("policy-change-{id}"),
        &format!("{reason}\n{diff}"),
    )
    .await?;
    if !ui.settings.policy_approval {
        apply(&ui, &ctx, id).await?;
    }
    Ok(redirect(&format!("/policy/changes/{id}")))
}

/// Stores the change as a new policy revision and tells subscribed resolvers.
async fn apply(ui: &Ui, ctx: &Ctx, id: i64) -> Result<i64, UiError> {
    let change = ui
        .db(move |s| s.policy_change(id))
        .await?
        .ok_or(UiError::NotFound)?;
    let (revision, _) = current_policy(ui).await?;
    if change.base_revision != revision {
        return Err(UiError::BadRequest(format!(
            "The policy changed (now revision {revision}) since this change was written; propose it again."
        )));
    }
    let sha = hex::encode(Sha256::digest(change.policy_toml.as_bytes()));
    let (text, author, reason) = (
        change.policy_toml.clone(),
        change.author.clone(),
        change.reason.clone(),
    );
    let record = ui
        .app
        .with_store(move |s| s.add_policy(&text, &sha, &author, &reason, now_us()))
        .await?;
    ui.app.hub().policy_changed();
    let (by, rev) = (ctx.viewer.name.clone(), record.revision);
    ui.db(move |s| s.decide_policy_change(id, "applied", &by, Some(rev), now_us()))
        .await?;
    ui.audit(
        &ctx.viewer.name,
        "policy.apply",
        &format!("policy-change-{id}"),
        &format!("revision {rev}"),
    )
    .await?;
    tracing::info!(change = id, revision = rev, by = %ctx.viewer.name, "policy change applied");
    Ok(rev)
}

/// `GET /policy/changes/{id}`.
pub async fn change(
    State(ui): State<Ui>,
    Signed(ctx): Signed,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    require_admin(&ctx)?;
    let change = ui
        .db(move |s| s.policy_change(id))
        .await?
        .ok_or(UiError::NotFound)?;
    let diff: Html = change
        .diff
        .lines()
        .map(|l| match l.chars().next() {
            Some('+') => html!("<span class=\"add\">{}</span>\n", l),
            Some('-') => html!("<span class=\"del\">{}</span>\n", l),
            _ => html!("{}\n", l),
        })
        .collect();
    let actions = if change.status == "pending" {
        if change.author == ctx.viewer.name {
            Html::lit("<p class=\"notice\">Waiting for another administrator to approve it.</p>")
        } else {
            html!(
                "<form method=\"post\" action=\"/policy/changes/{}\" class=\"panel\">{}\
                 <button type=\"submit\" name=\"action\" value=\"approve\">Approve and apply</button> \
                 <button type=\"submit\" name=\"action\" value=\"reject\" class=\"secondary\">Reject</button></form>",
                change.id,
                ctx.csrf_field()
            )
        }
    } else {
        Html::new()
    };
    let body = html!(
        "<dl class=\"facts\"><dt>Proposed by</dt><dd>{}</dd><dt>When</dt><dd>{}</dd><dt>Why</dt><dd>{}</dd>\
         <dt>Written against</dt><dd>revision {}</dd><dt>State</dt><dd id=\"change-state\">{}</dd></dl>{}<h2>Difference</h2><pre class=\"diff\">{}</pre>",
        change.author,
        ui.time(change.time),
        change.reason,
        change.base_revision,
        change.status,
        actions,
        diff
    );
    Ok(page_response(layout::page(
        &ctx,
        &format!("Policy change {id}"),
        "/policy",
        body,
    )))
}

/// `POST /policy/changes/{id}`: a second administrator approves or rejects.
pub async fn decide(
    State(ui): State<Ui>,
    Path(id): Path<i64>,
    posted: Posted,
) -> Result<Response, UiError> {
    let Posted { ctx, form } = posted;
    require_admin(&ctx)?;
    let change = ui
        .db(move |s| s.policy_change(id))
        .await?
        .ok_or(UiError::NotFound)?;
    if change.status != "pending" {
        return Ok(redirect(&format!("/policy/changes/{id}")));
    }
    if change.author == ctx.viewer.name {
        return Err(UiError::Forbidden(
            "A change needs a second person: you cannot approve your own.",
        ));
    }
    match form.get("action") {
        Some("approve") => {
            ui.audit(
                &ctx.viewer.name,
                "policy.approve",
                &format!("policy-change-{id}"),
                "",
            )
            .await?;
            apply(&ui, &ctx, id).await?;
        }
        Some("reject") => {
            let by = ctx.viewer.name.clone();
            ui.db(move |s| s.decide_policy_change(id, "rejected", &by, None, now_us()))
                .await?;
            ui.audit(
                &ctx.viewer.name,
                "policy.reject",
                &format!("policy-change-{id}"),
                "",
            )
            .await?;
        }
        _ => return Err(UiError::BadRequest("Unknown action.".into())),
    }
    Ok(redirect(&format!("/policy/changes/{id}")))
}

/// `GET /unblock`: requests from the block page.
pub async fn unblock_queue(State(ui): State<Ui>, Signed(ctx): Signed) -> Result<Response, UiError> {
    require_admin(&ctx)?;
    let requests = ui.db(|s| s.unblock_requests(false, 200)).await?;
    let rows: Html = requests
        .iter()
        .map(|r| {
            let decide = if r.status == "open" {
                html!(
                    "<form method=\"post\" action=\"/unblock/{}\">{}<label for=\"n-{}\">Note</label>\
                     <input type=\"text\" id=\"n-{}\" name=\"note\"> <button type=\"submit\" name=\"action\" value=\"allowed\">Allow</button> \
                     <button type=\"submit\" name=\"action\" value=\"refused\" class=\"secondary\">Refuse</button></form>",
                    r.id,
                    ctx.csrf_field(),
                    r.id,
                    r.id
                )
            } else {
                html!(
                    "{} by {}: {}",
                    r.status,
                    r.decided_by.clone().unwrap_or_default(),
                    r.decision_note.clone().unwrap_or_default()
                )
            };
            html!(
                "<tr><td>{}</td><td>{}</td><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td></tr>",
                r.id,
                ui.time(r.time),
                r.host,
                r.category,
                r.tier,
                r.user.clone().unwrap_or_else(|| "unknown".into()),
                r.client_ip,
                r.reason,
                decide
            )
        })
        .collect();
    let body = html!(
        "<p>Requests raised from the block page. Allowing one records the decision; add the name to the tier's allow list on the \
         <a href=\"/policy\">filtering page</a> so the change goes through change control.</p>\
         <table id=\"unblock\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">When</th><th scope=\"col\">Name</th><th scope=\"col\">Category</th>\
         <th scope=\"col\">Tier</th><th scope=\"col\">Who</th><th scope=\"col\">Why</th><th scope=\"col\">Decision</th></tr></thead><tbody>{}</tbody></table>",
        rows
    );
    Ok(page_response(layout::page(
        &ctx,
        "Unblock requests",
        "/unblock",
        body,
    )))
}

/// `POST /unblock/{id}`.
pub async fn decide_unblock(
    State(ui): State<Ui>,
    Path(id): Path<i64>,
    posted: Posted,
) -> Result<Response, UiError> {
    let Posted { ctx, form } = posted;
    require_admin(&ctx)?;
    let status = match form.get("action") {
        Some("allowed") => "allowed",
        Some("refused") => "refused",
        _ => return Err(UiError::BadRequest("Unknown action.".into())),
    };
    let note = form.get("note").unwrap_or_default().to_string();
    let (by, n) = (ctx.viewer.name.clone(), note.clone());
    ui.db(move |s| s.decide_unblock(id, status, &by, &n, now_us()))
        .await?;
    ui.audit(
        &ctx.viewer.name,
        &format!("unblock.{status}"),
        &format!("unblock-{id}"),
        &note,
    )
    .await?;
    Ok(redirect("/unblock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_show_changes_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\n";
        let new = "a\nb\nc\nD\ne\nf\ng\nh\n";
        assert_eq!(
            line_diff(old, new),
            "…\n  b\n  c\n- d\n+ D\n  e\n  f\n  g\n+ h\n"
        );
    }

    #[test]
    fn policies_are_checked() {
        let good = "default_tier = \"pupil\"\n[tiers.pupil]\nblock = [\"adult\"]\n";
        assert!(check_policy(good).is_ok());
        let bad = "default_tier = \"x\"\n[tiers.pupil]\nblock = [\"porn\"]\n[[tiers.pupil.schedule]]\nallow = [\"illegal\"]\n";
        let problems = check_policy(bad).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(check_policy("not toml [").is_err());
        let example = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/policy.toml"
        ))
        .unwrap();
        check_policy(&example).expect("the example policy passes");
    }
}
