//! The messages themselves. Field names are the JSON names; optional fields may be absent.

use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Category;

/// Where an alert was born.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertSource {
    /// Typed text on a workstation.
    Keyboard,
    /// The title of the active window (browser tabs carry search terms and page names).
    WindowTitle,
    /// A blocked DNS query in a high-risk category, reported by a resolver.
    Dns,
    /// Something about the device itself: silent, tampered with, spool overflow.
    Device,
}

impl AlertSource {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSource::Keyboard => "keyboard",
            AlertSource::WindowTitle => "window-title",
            AlertSource::Dns => "dns",
            AlertSource::Device => "device",
        }
    }
}

/// A screenshot taken for context when an alert fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screenshot {
    /// Image format: `png` or `webp`.
    pub format: String,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// The encoded image, standard base64.
    pub data_base64: String,
}

/// One safeguarding alert.
///
/// Only the matched phrase and a bounded context leave the workstation; never raw keystrokes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique id, chosen by the sender; the collector's idempotency key.
    pub id: Uuid,
    /// The enrolled device that raised it (the resolver's own id for DNS alerts).
    pub device: String,
    /// The signed-in user, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// When it happened.
    pub time: Timestamp,
    /// Where it was born.
    pub source: AlertSource,
    /// Category from the shared vocabulary.
    pub category: Category,
    /// 1 (low) to 5 (imminent risk to life).
    pub severity: u8,
    /// The wordlist entry (or blocked domain) that matched.
    pub phrase: String,
    /// A bounded window of the text around the match, as typed.
    #[serde(default)]
    pub context: String,
    /// Language of the wordlist entry (BCP 47, e.g. `en`, `pl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The application (process name) in the foreground.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// The window title at the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_title: Option<String>,
    /// The version of the wordlists that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wordlist_version: Option<String>,
    /// The client address, for DNS alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    /// The screenshot, when one was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<Screenshot>,
    /// Why no screenshot was taken, when it was withheld on purpose (no-capture category, rate limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_screenshot_reason: Option<String>,
}

/// A batch of alerts, as an agent or resolver ships them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertBatch {
    /// Must equal [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// At most [`crate::MAX_BATCH`] alerts.
    pub alerts: Vec<Alert>,
}

/// The collector's answer to an [`AlertBatch`]: every id it now holds durably.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReceipt {
    /// Ids stored by this request or already stored before (duplicates are acknowledged too).
    pub stored: Vec<Uuid>,
    /// How many of them were duplicates of alerts already held.
    pub duplicates: u32,
}

/// A user session on a device and whether its per-user helper is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// Signed-in user.
    pub user: String,
    /// Whether the session's monitoring helper is running and reporting.
    pub helper_alive: bool,
    /// When the monitoring notice was shown at this session's logon; absent while it has not been
    /// (or from agents older than this field). Repeated in every heartbeat of the session, so a
    /// collector that was unreachable at logon still learns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_shown: Option<Timestamp>,
    /// Hex SHA-256 (lower case) of the notice text that was shown, so the collector can tell which
    /// wording each user saw. Present exactly when `notice_shown` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_sha256: Option<String>,
}

/// Sent every minute by every agent, so a stopped agent shows as silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Must equal [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// When it was sent.
    pub time: Timestamp,
    /// Host name of the device.
    pub hostname: String,
    /// Operating system, e.g. `linux` or `windows 11`.
    pub os: String,
    /// The agent's version.
    pub agent_version: String,
    /// Loaded wordlist version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wordlist_version: Option<String>,
    /// Alerts waiting in the spool.
    #[serde(default)]
    pub spool_depth: u32,
    /// Alerts evicted from a full spool since the last heartbeat.
    #[serde(default)]
    pub spool_dropped: u32,
    /// Live sessions on the device.
    #[serde(default)]
    pub sessions: Vec<SessionState>,
}

/// "Device D at address X is user U in group G", until `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityLease {
    /// Must equal [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// Addresses of the device the user is signed in on.
    pub addresses: Vec<IpAddr>,
    /// The signed-in user.
    pub user: String,
    /// The user's group, which maps to a filter tier (e.g. `pupil`, `staff`).
    pub group: String,
    /// When the lease lapses unless renewed.
    pub expires: Timestamp,
}

/// What kind of program is enrolling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    /// A workstation running ward-agent.
    Agent,
    /// A ward-resolver (school server or BYOD gateway).
    Resolver,
}

/// Enrolment: an enrolment token and a certificate signing request, exchanged for a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolRequest {
    /// Must equal [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// The enrolment token an administrator created.
    pub token: String,
    /// PEM certificate signing request; the private key never leaves the device.
    pub csr_pem: String,
    /// Host name of the device.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// Agent or resolver.
    pub kind: DeviceKind,
    /// Version of the enrolling program.
    pub program_version: String,
}

/// The collector's answer to an [`EnrolRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    /// The device id the collector assigned (also the certificate's common name).
    pub device_id: String,
    /// The signed device certificate, PEM.
    pub certificate_pem: String,
    /// The collector's CA certificate, PEM, to pin.
    pub ca_pem: String,
}

/// The filter policy as the collector hands it to resolvers.
///
/// The policy travels as the same TOML document an administrator would write in `policy.toml`, so there
/// is one parser and one set of rules; `revision` orders snapshots and `sha256` lets a resolver skip one
/// it already holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    /// Must equal [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// Monotonic revision number; a resolver ignores anything not newer than what it holds.
    pub revision: u64,
    /// Hex SHA-256 of `policy_toml`.
    pub sha256: String,
    /// The policy document.
    pub policy_toml: String,
}

/// One change pushed to a subscribed resolver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StreamEvent {
    /// A new approved policy.
    Policy(PolicySnapshot),
    /// The complete set of live identity leases (sent first, and after any gap).
    Leases {
        /// Must equal [`crate::PROTOCOL_VERSION`].
        version: u16,
        /// Every live lease.
        leases: Vec<IdentityLease>,
    },
}

/// The error body every refused API request gets, with a reason a technician can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Short machine-readable code, e.g. `invalid-field`, `unsupported-version`.
    pub error: String,
    /// Human-readable reason.
    pub reason: String,
}
