//! Answers the resolver makes up itself: blocks (block page or NXDOMAIN), bypass signals (NXDOMAIN,
//! NODATA), safe-search rewrites (CNAME plus the target's records), and the Extended DNS Error
//! (RFC 8914) that tells a client why.
//!
//! Block answers are written by hand: they are a header, the client's own question, one record whose
//! owner is a compression pointer to that question, a synthetic SOA so stub resolvers cache the
//! negative answer for the block TTL, and the OPT record carrying the EDE. Rewrites merge records from
//! an upstream answer, so they go through hickory-proto.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::decide::{Action, Verdict};
use crate::policy::{BlockResponse, Policy};
use crate::wire::{self, rcode, Request};

/// RFC 8914 info code 15: blocked by the operator's policy.
pub const EDE_BLOCKED: u16 = 15;
/// RFC 8914 info code 17: filtered (the answer was changed, e.g. safe search).
pub const EDE_FILTERED: u16 = 17;
/// EDNS option code of an Extended DNS Error.
pub const OPTION_EDE: u16 = 15;

/// The EDE text for a decision: names the category (or the rule kind) and the tier.
pub fn ede_text(verdict: &Verdict, tier: &str) -> String {
    let mut text = String::new();
    push_ede_text(&mut text, verdict, tier);
    text
}

fn ede_what(verdict: &Verdict) -> &'static str {
    match verdict.category {
        Some(c) => c.as_str(),
        None => match verdict.action {
            Action::Rewrite(_) => "safe-search",
            _ => "deny-list",
        },
    }
}

fn push_ede_text(out: &mut String, verdict: &Verdict, tier: &str) {
    out.push_str(ede_what(verdict));
    out.push_str(" (Ward policy, tier ");
    out.push_str(tier);
    out.push(')');
}

/// Writes the answer to a blocked or bypass-signal query into `out`. Returns false for actions that
/// need the upstream (forward, rewrite).
pub fn write_block(
    out: &mut Vec<u8>,
    packet: &[u8],
    request: &Request,
    verdict: &Verdict,
    policy: &Policy,
    tier: &str,
    our_payload: u16,
) -> bool {
    let page = &policy.block_page;
    let address: Option<(u16, Vec<u8>)> = match verdict.action {
        Action::Block(BlockResponse::BlockPage) => match request.qtype {
            wire::TYPE_A => page.ipv4.map(|ip| (wire::TYPE_A, ip.octets().to_vec())),
            wire::TYPE_AAAA => page.ipv6.map(|ip| (wire::TYPE_AAAA, ip.octets().to_vec())),
            _ => None,
        },
        Action::Block(BlockResponse::Nxdomain) | Action::NxDomain | Action::NoData => None,
        Action::Forward | Action::Rewrite(_) => return false,
    };
    let code = match verdict.action {
        Action::Block(BlockResponse::Nxdomain) | Action::NxDomain => rcode::NXDOMAIN,
        _ => rcode::NOERROR,
    };
    let ttl = page.ttl;
    out.clear();
    out.extend_from_slice(&packet[0..2]);
    out.extend_from_slice(&wire::response_flags(request.flags, code, false).to_be_bytes());
    let (an, ns) = if address.is_some() {
        (1u16, 0u16)
    } else {
        (0, 1)
    };
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&an.to_be_bytes());
    out.extend_from_slice(&ns.to_be_bytes());
    out.extend_from_slice(&u16::from(request.edns.is_some()).to_be_bytes());
    out.extend_from_slice(&packet[wire::HEADER..request.question_end()]);
    match address {
        Some((rtype, rdata)) => push_record(out, rtype, ttl, &rdata),
        None => {
            let mut soa = Vec::with_capacity(64);
            push_name(&mut soa, "block.ward.invalid");
            push_name(&mut soa, "hostmaster.ward.invalid");
            for v in [1u32, 3600, 600, 86_400, ttl] {
                soa.extend_from_slice(&v.to_be_bytes());
            }
            push_record(out, wire::TYPE_SOA, ttl, &soa);
        }
    }
    if let Some(e) = request.edns {
        push_opt_with_ede(
            out,
            our_payload,
            e.dnssec_ok,
            EDE_BLOCKED,
            &[ede_what(verdict), " (Ward policy, tier ", tier, ")"],
        );
    }
    true
}

/// A record owned by the question name (compression pointer to offset 12).
fn push_record(out: &mut Vec<u8>, rtype: u16, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(&[0xc0, 0x0c]);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

fn push_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

fn push_opt_with_ede(out: &mut Vec<u8>, payload: u16, dnssec_ok: bool, code: u16, parts: &[&str]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.push(0);
    out.extend_from_slice(&wire::TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
    let option_len = 2 + len;
    out.extend_from_slice(&((4 + option_len) as u16).to_be_bytes());
    out.extend_from_slice(&OPTION_EDE.to_be_bytes());
    out.extend_from_slice(&(option_len as u16).to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

/// Why a rewrite answer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The query or the upstream answer did not parse.
    #[error("cannot read message: {0}")]
    Decode(String),
    /// The answer could not be encoded.
    #[error("cannot encode answer: {0}")]
    Encode(String),
}

/// The safe-search answer: `qname CNAME target` followed by the target's records from `upstream`
/// (the upstream's answer for `target` with the query's type), with the upstream's RCODE.
///
/// # Errors
/// The request or upstream answer does not parse, or the result cannot be encoded.
pub fn rewrite(
    packet: &[u8],
    request: &Request,
    target: &str,
    upstream: &[u8],
    ttl: u32,
    ede: Option<&str>,
    our_payload: u16,
) -> Result<Vec<u8>, RewriteError> {
    let query = Message::from_vec(packet).map_err(|e| RewriteError::Decode(e.to_string()))?;
    let target_answer =
        Message::from_vec(upstream).map_err(|e| RewriteError::Decode(e.to_string()))?;
    let question = query
        .queries
        .first()
        .cloned()
        .ok_or_else(|| RewriteError::Decode("no question".into()))?;
    let target_name =
        Name::from_ascii(format!("{target}.")).map_err(|e| RewriteError::Decode(e.to_string()))?;
    let mut msg = Message::new(request.id, MessageType::Response, OpCode::Query);
    msg.metadata.recursion_desired = request.rd();
    msg.metadata.recursion_available = true;
    msg.metadata.checking_disabled = request.cd();
    msg.metadata.response_code = target_answer.metadata.response_code;
    msg.add_query(question.clone());
    msg.add_answer(Record::from_rdata(
        question.name.clone(),
        ttl,
        RData::CNAME(CNAME(target_name)),
    ));
    msg.add_answers(target_answer.answers.iter().cloned());
    msg.add_authorities(target_answer.authorities.iter().cloned());
    if let Some(e) = request.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(our_payload);
        edns.set_dnssec_ok(e.dnssec_ok);
        if let Some(text) = ede {
            let mut data = EDE_FILTERED.to_be_bytes().to_vec();
            data.extend_from_slice(text.as_bytes());
            edns.options_mut()
                .insert(EdnsOption::Unknown(OPTION_EDE, data));
        }
        msg.set_edns(edns);
    }
    msg.to_vec()
        .map_err(|e| RewriteError::Encode(e.to_string()))
}

/// The query Ward sends upstream for a safe-search target.
pub fn target_query(target: &str, qtype: u16) -> Option<HQuery> {
    let name = Name::from_ascii(format!("{target}.")).ok()?;
    Some(HQuery::query(name, RecordType::from(qtype)))
}

/// A readable form of an answer for `check`: rcode, records in zone-file form, and any EDE.
pub fn describe(answer: &[u8]) -> serde_json::Value {
    match Message::from_vec(answer) {
        Ok(msg) => {
            let records: Vec<String> = msg
                .answers
                .iter()
                .chain(msg.authorities.iter())
                .map(|r| r.to_string())
                .collect();
            let ede =
                msg.edns
                    .as_ref()
                    .and_then(|e| match e.option(EdnsCode::Unknown(OPTION_EDE)) {
                        Some(EdnsOption::Unknown(_, data)) if data.len() >= 2 => {
                            Some(serde_json::json!({
                                "code": u16::from_be_bytes([data[0], data[1]]),
                                "text": String::from_utf8_lossy(&data[2..]),
                            }))
                        }
                        _ => None,
                    });
            serde_json::json!({
                "rcode": msg.metadata.response_code.to_string(),
                "records": records,
                "ede": ede,
            })
        }
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    }
}

/// Removes `ech` parameters from HTTPS/SVCB records in an upstream answer, re-encoding it. Returns
/// `None` when there was nothing to strip (the caller keeps the original bytes).
pub fn strip_ech(answer: &[u8]) -> Option<Vec<u8>> {
    use hickory_proto::rr::rdata::svcb::SvcParamKey;
    let mut msg = Message::from_vec(answer).ok()?;
    let mut changed = false;
    for record in msg.answers.iter_mut().chain(msg.additionals.iter_mut()) {
        let svcb = match &mut record.data {
            RData::HTTPS(h) => &mut h.0,
            RData::SVCB(s) => s,
            _ => continue,
        };
        let before = svcb.svc_params.len();
        svcb.svc_params
            .retain(|(key, _)| *key != SvcParamKey::EchConfigList);
        changed |= svcb.svc_params.len() != before;
    }
    if !changed {
        return None;
    }
    msg.to_vec().ok()
}
