//! The DNS wire format on the hot path, by hand: reading a query's header, question and EDNS
//! options, walking a response's records to find TTLs, and stamping a cached answer for a new
//! client. Everything else (building synthesised answers, reading upstream answers in full) goes
//! through hickory-proto.
//!
//! Why by hand: a cache hit is the common case, and it needs only the question and a copy of the
//! stored bytes with a new id and older TTLs. Parsing and re-encoding a full message for that costs
//! several times the rest of the work. Every read here is bounds-checked; a malformed packet yields
//! an error value, never a panic.

/// Fixed header length.
pub const HEADER: usize = 12;
/// Record type of the EDNS OPT pseudo-record.
pub const TYPE_OPT: u16 = 41;
/// Record type numbers used by name.
pub const TYPE_A: u16 = 1;
/// AAAA.
pub const TYPE_AAAA: u16 = 28;
/// SOA.
pub const TYPE_SOA: u16 = 6;
/// CNAME.
pub const TYPE_CNAME: u16 = 5;

/// RCODE values used by name.
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// Malformed query.
    pub const FORMERR: u8 = 1;
    /// Server failure.
    pub const SERVFAIL: u8 = 2;
    /// Name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// Not implemented (opcode).
    pub const NOTIMP: u8 = 4;
    /// Refused.
    pub const REFUSED: u8 = 5;
}

/// EDNS details of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// UDP payload size the client accepts.
    pub payload: u16,
    /// DNSSEC OK bit.
    pub dnssec_ok: bool,
    /// EDNS version.
    pub version: u8,
}

/// A parsed query. The name is written into a caller-owned buffer (lower case, dotted, no trailing
/// dot) so the hot path allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Message id.
    pub id: u16,
    /// Header flags word (opcode, RD, CD, ...).
    pub flags: u16,
    /// End of the question name in the packet (the name is `HEADER..name_end`).
    pub name_end: usize,
    /// Query type.
    pub qtype: u16,
    /// Query class.
    pub qclass: u16,
    /// EDNS, when the query carried an OPT record.
    pub edns: Option<Edns>,
}

impl Request {
    /// Whether recursion was desired.
    pub fn rd(&self) -> bool {
        self.flags & 0x0100 != 0
    }

    /// Whether checking was disabled.
    pub fn cd(&self) -> bool {
        self.flags & 0x0010 != 0
    }

    /// End of the question section.
    pub fn question_end(&self) -> usize {
        self.name_end + 4
    }

    /// Largest UDP answer this client accepts, capped at `ours`.
    pub fn udp_limit(&self, ours: u16) -> usize {
        match self.edns {
            Some(e) => usize::from(e.payload.clamp(512, ours)),
            None => 512,
        }
    }
}

/// Why a packet cannot be answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not worth an answer: too short to carry an id, or itself a response.
    Drop,
    /// Answer with this RCODE (FORMERR, NOTIMP) echoing `id` and, when readable, the question.
    Answer {
        /// The query's id.
        id: u16,
        /// RCODE to answer.
        rcode: u8,
        /// Whether the question could be read (then it is echoed).
        question: bool,
    },
    /// EDNS version not supported: answer BADVERS.
    BadVersion {
        /// The query's id.
        id: u16,
    },
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Parses a query. `name` receives the question name, lower case, dotted, without the trailing dot
/// (empty for the root); unusual bytes are written as `\DDD` so the text is unambiguous.
///
/// # Errors
/// [`Reject`] says whether to drop the packet or which error to answer.
pub fn parse_request(packet: &[u8], name: &mut String) -> Result<Request, Reject> {
    if packet.len() < HEADER {
        return Err(Reject::Drop);
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    if flags & 0x8000 != 0 {
        return Err(Reject::Drop);
    }
    let formerr = |question| Reject::Answer {
        id,
        rcode: rcode::FORMERR,
        question,
    };
    let opcode = (flags >> 11) & 0xf;
    if opcode != 0 {
        return Err(Reject::Answer {
            id,
            rcode: rcode::NOTIMP,
            question: false,
        });
    }
    let qdcount = u16_at(packet, 4).unwrap_or(0);
    let ancount = u16_at(packet, 6).unwrap_or(0);
    let nscount = u16_at(packet, 8).unwrap_or(0);
    let arcount = u16_at(packet, 10).unwrap_or(0);
    if qdcount != 1 {
        return Err(formerr(false));
    }
    name.clear();
    let name_end = read_question_name(packet, name).ok_or(formerr(false))?;
    let qtype = u16_at(packet, name_end).ok_or(formerr(false))?;
    let qclass = u16_at(packet, name_end + 2).ok_or(formerr(false))?;
    let mut request = Request {
        id,
        flags,
        name_end,
        qtype,
        qclass,
        edns: None,
    };
    // Skip any answer/authority records (a query should have none), then look for OPT.
    let mut at = request.question_end();
    for _ in 0..(u32::from(ancount) + u32::from(nscount)) {
        at = skip_record(packet, at).ok_or(formerr(true))?.next;
    }
    for _ in 0..arcount {
        let rec = skip_record(packet, at).ok_or(formerr(true))?;
        if rec.rtype == TYPE_OPT {
            if request.edns.is_some() || rec.name_len != 1 {
                return Err(formerr(true));
            }
            let class = u16_at(packet, rec.fixed).ok_or(formerr(true))?;
            let ttl_at = rec.fixed + 2;
            let version = packet[ttl_at + 1];
            let do_bit = packet[ttl_at + 2] & 0x80 != 0;
            request.edns = Some(Edns {
                payload: class,
                dnssec_ok: do_bit,
                version,
            });
        }
        at = rec.next;
    }
    if let Some(e) = request.edns {
        if e.version != 0 {
            return Err(Reject::BadVersion { id });
        }
    }
    Ok(request)
}

/// Reads the uncompressed question name starting at [`HEADER`], returning where it ends.
fn read_question_name(packet: &[u8], out: &mut String) -> Option<usize> {
    let mut at = HEADER;
    let mut total = 0usize;
    loop {
        let len = usize::from(*packet.get(at)?);
        at += 1;
        if len == 0 {
            return Some(at);
        }
        // Compression pointers and extended label types are not valid in a question.
        if len > 63 {
            return None;
        }
        total += len + 1;
        if total > 254 {
            return None;
        }
        let label = packet.get(at..at + len)?;
        if !out.is_empty() {
            out.push('.');
        }
        for &b in label {
            let b = b.to_ascii_lowercase();
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*' {
                out.push(b as char);
            } else {
                use std::fmt::Write;
                let _ = write!(out, "\\{b:03}");
            }
        }
        at += len;
    }
}

/// Where a record's parts are.
#[derive(Debug, Clone, Copy)]
pub struct RecordAt {
    /// Length of the owner name as encoded here.
    pub name_len: usize,
    /// Record type.
    pub rtype: u16,
    /// Offset of the CLASS field (TTL follows at +2).
    pub fixed: usize,
    /// Offset of the next record.
    pub next: usize,
}

/// Skips a (possibly compressed) name starting at `at`, returning where it ends.
pub fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    let mut total = 0usize;
    loop {
        let len = *packet.get(at)?;
        match len {
            0 => return Some(at + 1),
            1..=63 => {
                total += usize::from(len) + 1;
                if total > 255 {
                    return None;
                }
                at += usize::from(len) + 1;
            }
            0xc0..=0xff => {
                packet.get(at + 1)?;
                return Some(at + 2);
            }
            _ => return None,
        }
    }
}

/// Reads the fixed part of the record at `at`.
pub fn skip_record(packet: &[u8], at: usize) -> Option<RecordAt> {
    let name_end = skip_name(packet, at)?;
    let rtype = u16_at(packet, name_end)?;
    let rdlen = usize::from(u16_at(packet, name_end + 8)?);
    let next = name_end + 10 + rdlen;
    if next > packet.len() {
        return None;
    }
    Some(RecordAt {
        name_len: name_end - at,
        rtype,
        fixed: name_end + 2,
        next,
    })
}

/// Offsets of the TTL fields of every record (OPT excluded) in a response, and the smallest TTL
/// (for SOA records the smaller of its TTL and its MINIMUM field, as negative caching wants).
pub fn ttl_offsets(packet: &[u8]) -> Option<(Vec<u16>, Option<u32>)> {
    let counts: u32 = [6, 8, 10]
        .iter()
        .map(|&i| u32::from(u16_at(packet, i).unwrap_or(0)))
        .sum();
    let mut at = skip_name(packet, HEADER)? + 4;
    let mut offsets = Vec::new();
    let mut min: Option<u32> = None;
    for _ in 0..counts {
        let rec = skip_record(packet, at)?;
        if rec.rtype != TYPE_OPT {
            let ttl_at = rec.fixed + 2;
            let mut ttl = u32::from_be_bytes(packet.get(ttl_at..ttl_at + 4)?.try_into().ok()?);
            if rec.rtype == TYPE_SOA && rec.next >= 4 {
                let minimum =
                    u32::from_be_bytes(packet.get(rec.next - 4..rec.next)?.try_into().ok()?);
                ttl = ttl.min(minimum);
            }
            min = Some(min.map_or(ttl, |m: u32| m.min(ttl)));
            offsets.push(u16::try_from(ttl_at).ok()?);
        }
        at = rec.next;
    }
    Some((offsets, min))
}

/// Writes the 11-byte OPT record Ward puts in answers to EDNS clients.
pub fn push_opt(out: &mut Vec<u8>, payload: u16, dnssec_ok: bool) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
    out.extend_from_slice(&[0, 0]);
}

/// Response flags for `request`: QR, RA, and the client's opcode, RD and CD, with `rcode` and `tc`.
pub fn response_flags(request_flags: u16, rcode: u8, tc: bool) -> u16 {
    let keep = request_flags & (0x7800 | 0x0100 | 0x0010);
    0x8000 | 0x0080 | keep | if tc { 0x0200 } else { 0 } | u16::from(rcode & 0xf)
}

/// Builds a header-and-question-only answer (errors, truncation) for `request` into `out`.
pub fn minimal_answer(
    out: &mut Vec<u8>,
    packet: &[u8],
    request: &Request,
    rcode: u8,
    tc: bool,
    our_payload: u16,
) {
    out.clear();
    out.extend_from_slice(&packet[0..2]);
    out.extend_from_slice(&response_flags(request.flags, rcode, tc).to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(request.edns.is_some())]);
    out.extend_from_slice(&packet[HEADER..request.question_end()]);
    if let Some(e) = request.edns {
        push_opt(out, our_payload, e.dnssec_ok);
    }
}

/// Builds the answer to a packet [`parse_request`] rejected, or `None` to drop it.
pub fn reject_answer(packet: &[u8], reject: Reject, our_payload: u16) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    match reject {
        Reject::Drop => return None,
        Reject::Answer {
            id,
            rcode,
            question,
        } => {
            out.extend_from_slice(&id.to_be_bytes());
            let flags = u16_at(packet, 2).unwrap_or(0);
            out.extend_from_slice(&response_flags(flags, rcode, false).to_be_bytes());
            let question_end = question
                .then(|| skip_name(packet, HEADER).map(|e| e + 4))
                .flatten()
                .filter(|&e| e <= packet.len());
            match question_end {
                Some(end) => {
                    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
                    out.extend_from_slice(&packet[HEADER..end]);
                }
                None => out.extend_from_slice(&[0; 8]),
            }
        }
        Reject::BadVersion { id } => {
            // BADVERS is extended RCODE 16: upper bits 1 in the OPT record, lower bits 0.
            out.extend_from_slice(&id.to_be_bytes());
            let flags = u16_at(packet, 2).unwrap_or(0);
            out.extend_from_slice(&response_flags(flags, 0, false).to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
            out.push(0);
            out.extend_from_slice(&TYPE_OPT.to_be_bytes());
            out.extend_from_slice(&our_payload.to_be_bytes());
            out.extend_from_slice(&[1, 0, 0, 0, 0, 0]);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
        for label in name.split('.').filter(|l| !l.is_empty()) {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        if edns {
            push_opt(&mut p, 4096, true);
        }
        p
    }

    #[test]
    fn parses_name_type_and_edns() {
        let mut name = String::new();
        let r = parse_request(&query("WWW.Example.COM", 28, true), &mut name).unwrap();
        assert_eq!(name, "www.example.com");
        assert_eq!((r.id, r.qtype, r.qclass), (0x1234, 28, 1));
        assert!(r.rd());
        assert_eq!(
            r.edns,
            Some(Edns {
                payload: 4096,
                dnssec_ok: true,
                version: 0
            })
        );
        assert_eq!(r.udp_limit(1232), 1232);
        let r = parse_request(&query(".", 2, false), &mut name).unwrap();
        assert_eq!((name.as_str(), r.udp_limit(1232)), ("", 512));
    }

    #[test]
    fn rejects_table() {
        let check = |packet: Vec<u8>, expected: Result<(), Reject>| {
            let got = parse_request(&packet, &mut String::new()).map(|_| ());
            assert_eq!(got, expected, "{packet:?}");
        };
        let formerr = |question| {
            Err(Reject::Answer {
                id: 0x1234,
                rcode: rcode::FORMERR,
                question,
            })
        };
        check(vec![1, 2, 3], Err(Reject::Drop));
        let mut response = query("a.b", 1, false);
        response[2] |= 0x80;
        check(response, Err(Reject::Drop));
        let mut notify = query("a.b", 1, false);
        notify[2] |= 4 << 3;
        check(
            notify,
            Err(Reject::Answer {
                id: 0x1234,
                rcode: rcode::NOTIMP,
                question: false,
            }),
        );
        let mut two = query("a.b", 1, false);
        two[5] = 2;
        check(two, formerr(false));
        let mut truncated = query("a.b", 1, false);
        truncated.truncate(truncated.len() - 3);
        check(truncated, formerr(false));
        let mut pointer = query("a.b", 1, false);
        pointer[12] = 0xc0;
        check(pointer, formerr(false));
        let mut two_opts = query("a.b", 1, true);
        two_opts[11] = 2;
        push_opt(&mut two_opts, 512, false);
        check(two_opts, formerr(true));
        let mut v1 = query("a.b", 1, true);
        let opt_version = v1.len() - 11 + 6;
        v1[opt_version] = 1;
        check(v1, Err(Reject::BadVersion { id: 0x1234 }));
        check(query("a.b", 1, true), Ok(()));
    }
}
