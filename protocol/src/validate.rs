//! Checks on every message that comes off the network, before anything else touches it.
//!
//! The bounds are deliberately generous for honest senders and tight enough that a forged or broken
//! message cannot make a receiver store megabytes of junk in a field meant for a word.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};

use crate::messages::*;
use crate::{MAX_BATCH, PROTOCOL_VERSION};

/// Longest context window around a match, in characters.
pub const MAX_CONTEXT_CHARS: usize = 1024;
/// Largest screenshot accepted, in base64 characters (about 6 MB decoded).
pub const MAX_SCREENSHOT_BASE64: usize = 8 * 1024 * 1024;
/// Largest policy document.
pub const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;
/// How far in the future a sender's clock may be.
const MAX_CLOCK_AHEAD: SignedDuration = SignedDuration::from_hours(24);
/// How old an alert may be when it finally arrives (a laptop off the network over a long holiday).
const MAX_ALERT_AGE: SignedDuration = SignedDuration::from_hours(24 * 120);

/// A field that failed its check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    /// Dotted path of the field, e.g. `alerts[3].severity`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ValidationError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            problem: problem.into(),
        }
    }

    fn within(self, prefix: &str) -> Self {
        ValidationError {
            field: format!("{prefix}.{}", self.field),
            problem: self.problem,
        }
    }
}

/// A message that can check itself against the protocol's rules.
pub trait Validate {
    /// Checks every field; `now` is the receiver's clock.
    ///
    /// # Errors
    /// The first field that breaks a rule.
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError>;
}

fn version(v: u16) -> Result<(), ValidationError> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ValidationError::new(
            "version",
            format!("unsupported protocol version {v}, this collector speaks {PROTOCOL_VERSION}"),
        ))
    }
}

/// Text that must be present, bounded, and free of control characters.
fn text(field: &str, value: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let len = value.chars().count();
    if len < min {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if len > max {
        return Err(ValidationError::new(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ValidationError::new(field, "contains control characters"));
    }
    Ok(())
}

/// Free text such as a context window: newlines allowed, still bounded.
fn prose(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ValidationError::new(field, "contains control characters"));
    }
    Ok(())
}

fn opt_text(field: &str, value: &Option<String>, max: usize) -> Result<(), ValidationError> {
    value.as_deref().map_or(Ok(()), |v| text(field, v, 1, max))
}

fn time_near(
    field: &str,
    t: Timestamp,
    now: Timestamp,
    max_age: SignedDuration,
) -> Result<(), ValidationError> {
    if t > now + MAX_CLOCK_AHEAD {
        return Err(ValidationError::new(field, format!("{t} is in the future")));
    }
    if t < now - max_age {
        return Err(ValidationError::new(field, format!("{t} is too old")));
    }
    Ok(())
}

impl Validate for Screenshot {
    fn validate(&self, _now: Timestamp) -> Result<(), ValidationError> {
        if !matches!(self.format.as_str(), "png" | "webp") {
            return Err(ValidationError::new("format", "must be png or webp"));
        }
        for (field, v) in [("width", self.width), ("height", self.height)] {
            if !(1..=16384).contains(&v) {
                return Err(ValidationError::new(field, "must be between 1 and 16384"));
            }
        }
        if self.data_base64.is_empty() || self.data_base64.len() > MAX_SCREENSHOT_BASE64 {
            return Err(ValidationError::new(
                "data_base64",
                "empty or larger than the limit",
            ));
        }
        if !self
            .data_base64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return Err(ValidationError::new("data_base64", "not base64"));
        }
        Ok(())
    }
}

impl Validate for Alert {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        text("device", &self.device, 1, 128)?;
        opt_text("user", &self.user, 128)?;
        time_near("time", self.time, now, MAX_ALERT_AGE)?;
        if !(1..=5).contains(&self.severity) {
            return Err(ValidationError::new(
                "severity",
                format!("{} is not between 1 and 5", self.severity),
            ));
        }
        text("phrase", &self.phrase, 1, 256)?;
        prose("context", &self.context, MAX_CONTEXT_CHARS)?;
        opt_text("language", &self.language, 16)?;
        opt_text("application", &self.application, 256)?;
        opt_text("window_title", &self.window_title, 1024)?;
        opt_text("wordlist_version", &self.wordlist_version, 128)?;
        opt_text("no_screenshot_reason", &self.no_screenshot_reason, 512)?;
        if let Some(shot) = &self.screenshot {
            if self.category.no_capture() {
                // Defence in depth: an image that may show a child must never be stored, whoever sent it.
                return Err(ValidationError::new(
                    "screenshot",
                    format!("category {} must never carry a screenshot", self.category),
                ));
            }
            shot.validate(now).map_err(|e| e.within("screenshot"))?;
        }
        Ok(())
    }
}

impl Validate for AlertBatch {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        version(self.version)?;
        if self.alerts.is_empty() {
            return Err(ValidationError::new("alerts", "must not be empty"));
        }
        if self.alerts.len() > MAX_BATCH {
            return Err(ValidationError::new(
                "alerts",
                format!("more than {MAX_BATCH} alerts in one batch"),
            ));
        }
        let mut seen = HashSet::with_capacity(self.alerts.len());
        for (i, alert) in self.alerts.iter().enumerate() {
            alert
                .validate(now)
                .map_err(|e| e.within(&format!("alerts[{i}]")))?;
            if !seen.insert(alert.id) {
                return Err(ValidationError::new(
                    format!("alerts[{i}].id"),
                    "repeated within the batch",
                ));
            }
        }
        Ok(())
    }
}

impl Validate for Heartbeat {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        version(self.version)?;
        time_near("time", self.time, now, SignedDuration::from_hours(24))?;
        text("hostname", &self.hostname, 1, 253)?;
        text("os", &self.os, 1, 128)?;
        text("agent_version", &self.agent_version, 1, 64)?;
        opt_text("wordlist_version", &self.wordlist_version, 128)?;
        if self.sessions.len() > 256 {
            return Err(ValidationError::new("sessions", "more than 256 sessions"));
        }
        for (i, s) in self.sessions.iter().enumerate() {
            s.validate(now)
                .map_err(|e| e.within(&format!("sessions[{i}]")))?;
        }
        Ok(())
    }
}

impl Validate for SessionState {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        text("user", &self.user, 1, 128)?;
        match (self.notice_shown, &self.notice_sha256) {
            (None, None) => Ok(()),
            (Some(shown), Some(sha256)) => {
                // A session may last for weeks on a machine nobody logs off.
                time_near("notice_shown", shown, now, MAX_ALERT_AGE)?;
                sha256_hex("notice_sha256", sha256)
            }
            (Some(_), None) => Err(ValidationError::new(
                "notice_sha256",
                "must accompany notice_shown",
            )),
            (None, Some(_)) => Err(ValidationError::new(
                "notice_shown",
                "must accompany notice_sha256",
            )),
        }
    }
}

/// A lower-case hex SHA-256.
fn sha256_hex(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(ValidationError::new(field, "not a lower-case hex SHA-256"))
    }
}

impl Validate for IdentityLease {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        version(self.version)?;
        if self.addresses.is_empty() || self.addresses.len() > 16 {
            return Err(ValidationError::new(
                "addresses",
                "must hold 1 to 16 addresses",
            ));
        }
        text("user", &self.user, 1, 128)?;
        text("group", &self.group, 1, 64)?;
        if self.expires <= now {
            return Err(ValidationError::new("expires", "already expired"));
        }
        if self.expires > now + MAX_CLOCK_AHEAD {
            return Err(ValidationError::new("expires", "more than a day ahead"));
        }
        Ok(())
    }
}

impl Validate for EnrolRequest {
    fn validate(&self, _now: Timestamp) -> Result<(), ValidationError> {
        version(self.version)?;
        text("token", &self.token, 1, 256)?;
        if self.csr_pem.len() > 16 * 1024 || !self.csr_pem.contains("BEGIN CERTIFICATE REQUEST") {
            return Err(ValidationError::new(
                "csr_pem",
                "not a PEM certificate request",
            ));
        }
        text("hostname", &self.hostname, 1, 253)?;
        text("os", &self.os, 1, 128)?;
        text("program_version", &self.program_version, 1, 64)?;
        Ok(())
    }
}

impl Validate for PolicySnapshot {
    fn validate(&self, _now: Timestamp) -> Result<(), ValidationError> {
        version(self.version)?;
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ValidationError::new("sha256", "not a hex SHA-256"));
        }
        if self.policy_toml.len() > MAX_POLICY_BYTES {
            return Err(ValidationError::new("policy_toml", "larger than the limit"));
        }
        Ok(())
    }
}

impl Validate for StreamEvent {
    fn validate(&self, now: Timestamp) -> Result<(), ValidationError> {
        match self {
            StreamEvent::Policy(p) => p.validate(now),
            StreamEvent::Leases { version: v, leases } => {
                version(*v)?;
                for (i, lease) in leases.iter().enumerate() {
                    lease
                        .validate(now)
                        .map_err(|e| e.within(&format!("leases[{i}]")))?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Category, MAX_BATCH};
    use uuid::Uuid;

    fn now() -> Timestamp {
        "2026-11-24T10:00:00Z".parse().unwrap()
    }

    fn alert() -> Alert {
        Alert {
            id: Uuid::new_v4(),
            device: "ws-101".into(),
            user: Some("pupil.jones".into()),
            time: now(),
            source: AlertSource::Keyboard,
            category: Category::Suicide,
            severity: 5,
            phrase: "kill myself".into(),
            context: "i want to kill myself tonight".into(),
            language: Some("en".into()),
            application: Some("firefox".into()),
            window_title: Some("Google - Mozilla Firefox".into()),
            wordlist_version: Some("2026.11.1".into()),
            client_ip: None,
            screenshot: Some(Screenshot {
                format: "png".into(),
                width: 10,
                height: 10,
                data_base64: "iVBORw0K".into(),
            }),
            no_screenshot_reason: None,
        }
    }

    fn batch(alerts: Vec<Alert>) -> AlertBatch {
        AlertBatch {
            version: PROTOCOL_VERSION,
            alerts,
        }
    }

    fn refused(b: &AlertBatch) -> String {
        b.validate(now()).unwrap_err().to_string()
    }

    #[test]
    fn good_batch_passes_and_round_trips() {
        let b = batch(vec![alert(), alert()]);
        b.validate(now()).unwrap();
        let json = serde_json::to_string(&b).unwrap();
        let back: AlertBatch = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn wire_names_are_stable() {
        let json = serde_json::to_value(alert()).unwrap();
        assert_eq!(json["source"], "keyboard");
        assert_eq!(json["category"], "suicide");
        assert_eq!(json["time"], "2026-11-24T10:00:00Z");
        let json = serde_json::to_value(AlertSource::WindowTitle).unwrap();
        assert_eq!(json, "window-title");
    }

    #[test]
    fn each_bad_field_is_named() {
        type Mutation = Box<dyn Fn(&mut Alert)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|a| a.severity = 0), "alerts[0].severity"),
            (Box::new(|a| a.severity = 6), "alerts[0].severity"),
            (Box::new(|a| a.device.clear()), "alerts[0].device"),
            (Box::new(|a| a.phrase = "x".repeat(300)), "alerts[0].phrase"),
            (
                Box::new(|a| a.context = "y".repeat(MAX_CONTEXT_CHARS + 1)),
                "alerts[0].context",
            ),
            (
                Box::new(|a| a.user = Some("bad\u{0}name".into())),
                "alerts[0].user",
            ),
            (
                Box::new(|a| a.time = "2030-01-01T00:00:00Z".parse().unwrap()),
                "alerts[0].time",
            ),
            (
                Box::new(|a| a.time = "2020-01-01T00:00:00Z".parse().unwrap()),
                "alerts[0].time",
            ),
            (
                Box::new(|a| a.screenshot.as_mut().unwrap().format = "gif".into()),
                "alerts[0].screenshot.format",
            ),
            (
                Box::new(|a| a.screenshot.as_mut().unwrap().data_base64 = "<script>".into()),
                "alerts[0].screenshot.data_base64",
            ),
        ];
        for (mutate, field) in cases {
            let mut a = alert();
            mutate(&mut a);
            let msg = refused(&batch(vec![a]));
            assert!(msg.starts_with(field), "expected {field}, got {msg}");
        }
    }

    #[test]
    fn no_capture_categories_never_carry_screenshots() {
        for category in [Category::Csam, Category::Sexting, Category::Sexual] {
            let mut a = alert();
            a.category = category;
            assert!(refused(&batch(vec![a.clone()])).starts_with("alerts[0].screenshot"));
            a.screenshot = None;
            batch(vec![a]).validate(now()).unwrap();
        }
    }

    #[test]
    fn batch_bounds_and_versions() {
        assert!(refused(&batch(vec![])).starts_with("alerts"));
        assert!(refused(&batch((0..=MAX_BATCH).map(|_| alert()).collect())).starts_with("alerts"));
        let a = alert();
        assert!(refused(&batch(vec![a.clone(), a])).contains("repeated"));
        let mut b = batch(vec![alert()]);
        b.version = 2;
        assert!(refused(&b).starts_with("version"));
    }

    #[test]
    fn unknown_enum_values_fail_to_parse() {
        let mut json = serde_json::to_value(alert()).unwrap();
        json["source"] = "telepathy".into();
        assert!(serde_json::from_value::<Alert>(json).is_err());
    }

    #[test]
    fn leases_must_be_live_and_bounded() {
        let lease = IdentityLease {
            version: PROTOCOL_VERSION,
            addresses: vec!["10.0.0.5".parse().unwrap()],
            user: "pupil.jones".into(),
            group: "pupil".into(),
            expires: now() + SignedDuration::from_mins(10),
        };
        lease.validate(now()).unwrap();
        let mut expired = lease.clone();
        expired.expires = now() - SignedDuration::from_secs(1);
        assert_eq!(expired.validate(now()).unwrap_err().field, "expires");
        let mut none = lease.clone();
        none.addresses.clear();
        assert_eq!(none.validate(now()).unwrap_err().field, "addresses");
        let ev = StreamEvent::Leases {
            version: PROTOCOL_VERSION,
            leases: vec![lease],
        };
        let json = serde_json::to_string(&ev).unwrap();
        assert!(json.contains("\"type\":\"leases\""));
        assert_eq!(serde_json::from_str::<StreamEvent>(&json).unwrap(), ev);
    }

    fn heartbeat(sessions: Vec<SessionState>) -> Heartbeat {
        Heartbeat {
            version: PROTOCOL_VERSION,
            time: now(),
            hostname: "ws-101".into(),
            os: "linux".into(),
            agent_version: "0.1.0".into(),
            wordlist_version: None,
            spool_depth: 3,
            spool_dropped: 0,
            sessions,
        }
    }

    #[test]
    fn heartbeat_and_enrolment_round_trip() {
        let hb = heartbeat(vec![SessionState {
            user: "pupil.jones".into(),
            helper_alive: true,
            notice_shown: Some(now() - SignedDuration::from_hours(3)),
            notice_sha256: Some("ab".repeat(32)),
        }]);
        hb.validate(now()).unwrap();
        assert_eq!(
            serde_json::from_str::<Heartbeat>(&serde_json::to_string(&hb).unwrap()).unwrap(),
            hb
        );
        let enrol = EnrolRequest {
            version: PROTOCOL_VERSION,
            token: "abc".into(),
            csr_pem: "-----BEGIN CERTIFICATE REQUEST-----\n...".into(),
            hostname: "ws-101".into(),
            os: "linux".into(),
            kind: DeviceKind::Agent,
            program_version: "0.1.0".into(),
        };
        enrol.validate(now()).unwrap();
        let mut bad = enrol.clone();
        bad.csr_pem = "hello".into();
        assert_eq!(bad.validate(now()).unwrap_err().field, "csr_pem");
    }
    fn session() -> SessionState {
        SessionState {
            user: "pupil.jones".into(),
            helper_alive: true,
            notice_shown: Some(now() - SignedDuration::from_mins(5)),
            notice_sha256: Some("0123456789abcdef".repeat(4)),
        }
    }

    #[test]
    fn a_session_from_an_older_agent_has_no_notice_and_still_validates() {
        let old: SessionState =
            serde_json::from_str(r#"{"user":"pupil.jones","helper_alive":true}"#).unwrap();
        assert_eq!(old.notice_shown, None);
        assert_eq!(old.notice_sha256, None);
        old.validate(now()).unwrap();
        let json = serde_json::to_string(&old).unwrap();
        assert!(!json.contains("notice"), "{json}");
        let json = serde_json::to_value(session()).unwrap();
        assert_eq!(json["notice_shown"], "2026-11-24T09:55:00Z");
    }

    #[test]
    fn each_bad_notice_field_is_named() {
        type Mutation = Box<dyn Fn(&mut SessionState)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|s| s.notice_sha256 = None), "notice_sha256"),
            (Box::new(|s| s.notice_shown = None), "notice_shown"),
            (
                Box::new(|s| s.notice_sha256 = Some("AB".repeat(32))),
                "notice_sha256",
            ),
            (
                Box::new(|s| s.notice_sha256 = Some("ab".repeat(31))),
                "notice_sha256",
            ),
            (
                Box::new(|s| s.notice_shown = Some("2030-01-01T00:00:00Z".parse().unwrap())),
                "notice_shown",
            ),
            (
                Box::new(|s| s.notice_shown = Some("2020-01-01T00:00:00Z".parse().unwrap())),
                "notice_shown",
            ),
        ];
        for (mutate, field) in cases {
            let mut s = session();
            mutate(&mut s);
            let err = heartbeat(vec![session(), s]).validate(now()).unwrap_err();
            assert_eq!(err.field, format!("sessions[1].{field}"), "{err}");
        }
    }
}
