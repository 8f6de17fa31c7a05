//! `ward-resolver check`: decide one query without serving and print the decision as JSON, so IT
//! staff (and tests) see exactly what a client would get.

use std::net::IpAddr;

use anyhow::Context;
use jiff::Timestamp;

use crate::answer;
use crate::decide::{decide, Action, Query};
use crate::identity::{self, Identity, Leases};
use crate::policy::Policy;
use crate::wire;

/// What `check` is asked.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    /// Client address.
    pub client: IpAddr,
    /// Signed-in user, if the question is "what would this user get".
    pub user: Option<String>,
    /// Their group; when absent, taken from a live lease naming the user.
    pub group: Option<String>,
    /// The moment to decide at.
    pub at: Timestamp,
    /// Name queried.
    pub name: String,
    /// Record type name or number.
    pub qtype: String,
}

/// Decides `request` and describes the decision as one JSON object.
///
/// # Errors
/// The name or type cannot be read.
pub fn check(
    policy: &Policy,
    leases: &Leases,
    request: &CheckRequest,
) -> anyhow::Result<serde_json::Value> {
    let qtype = record_type(&request.qtype)?;
    let name = crate::domain::normalise(&request.name)
        .or_else(|| (request.name.trim() == ".").then(String::new))
        .with_context(|| format!("`{}` is not a domain name", request.name))?;
    let identity = resolve_identity(policy, leases, request);
    let query = Query { name: &name, qtype };
    let verdict = decide(&identity, query, policy, request.at);
    let tier = &policy.tiers[identity.tier];

    let packet = query_packet(&name, qtype);
    let mut parsed_name = String::new();
    let parsed = wire::parse_request(&packet, &mut parsed_name)
        .map_err(|e| anyhow::anyhow!("cannot build a query for `{name}`: {e:?}"))?;
    let mut out = Vec::new();
    let answer = if answer::write_block(
        &mut out, &packet, &parsed, &verdict, policy, &tier.name, 1232,
    ) {
        answer::describe(&out)
    } else {
        match verdict.action {
            Action::Rewrite(target) => serde_json::json!({
                "cname": target,
                "then": format!("the {} records of {target} from the upstream, in the same answer",
                    hickory_proto::rr::RecordType::from(qtype)),
                "ede": { "code": answer::EDE_FILTERED, "text": answer::ede_text(&verdict, &tier.name) },
            }),
            _ => serde_json::json!({ "forward": "upstream (through the cache)" }),
        }
    };
    Ok(serde_json::json!({
        "name": name,
        "type": hickory_proto::rr::RecordType::from(qtype).to_string(),
        "client": request.client.to_string(),
        "at": request.at.to_string(),
        "tier": tier.name,
        "identity": identity.describe(),
        "identity_source": identity.source_str(),
        "user": identity.user,
        "group": identity.group,
        "verdict": verdict.verdict_str(),
        "category": verdict.category.map(|c| c.as_str()),
        "rule": verdict.rule_text(policy, &identity, &name),
        "answer": answer,
    }))
}

fn resolve_identity(policy: &Policy, leases: &Leases, request: &CheckRequest) -> Identity {
    match (&request.user, &request.group) {
        (Some(user), Some(group)) => identity::from_lease(policy, request.client, user, group),
        (Some(user), None) => match leases.for_user(user, request.at) {
            Some(lease) => identity::from_lease(policy, request.client, user, &lease.group.clone()),
            None => {
                let mut id = identity::identify(policy, leases, request.client, request.at);
                id.user = Some(user.clone());
                id
            }
        },
        (None, _) => identity::identify(policy, leases, request.client, request.at),
    }
}

/// A record type by name (`A`, `aaaa`, `HTTPS`) or number (`TYPE65` or `65`).
fn record_type(text: &str) -> anyhow::Result<u16> {
    let upper = text.to_ascii_uppercase();
    if let Ok(n) = upper.trim_start_matches("TYPE").parse::<u16>() {
        return Ok(n);
    }
    let t: hickory_proto::rr::RecordType = upper
        .parse()
        .map_err(|_| anyhow::anyhow!("`{text}` is not a DNS record type"))?;
    Ok(u16::from(t))
}

/// The query a client would send (with EDNS, so the answer shows the EDE).
fn query_packet(name: &str, qtype: u16) -> Vec<u8> {
    let mut p = vec![0, 1, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    wire::push_opt(&mut p, 1232, false);
    p
}
