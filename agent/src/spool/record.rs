//! One spooled alert on disk: a header with a checksum, then the alert as protocol JSON.
//!
//! Layout: `WSP1` magic, payload length (u32, little-endian), SHA-256 of the payload (32 bytes), the
//! payload. A torn or bit-rotted file fails the length or checksum check and is reported as corrupt
//! instead of being sent as garbage.

use sha2::{Digest, Sha256};
use ward_protocol::Alert;

const MAGIC: &[u8; 4] = b"WSP1";
const HEADER: usize = 4 + 4 + 32;

/// Why a record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Shorter than its header or its stated length.
    #[error("truncated")]
    Truncated,
    /// Not a spool record.
    #[error("bad magic")]
    Magic,
    /// The content does not match its checksum.
    #[error("checksum mismatch")]
    Checksum,
    /// The checksum matched but the alert does not parse (written by an incompatible version).
    #[error("unreadable alert: {0}")]
    Payload(String),
}

/// Encodes `alert` as a record.
pub fn encode(alert: &Alert) -> Vec<u8> {
    let payload = serde_json::to_vec(alert).expect("an alert always serialises");
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    out
}

/// Decodes and verifies a record.
///
/// # Errors
/// The bytes are not a complete, intact record.
pub fn decode(bytes: &[u8]) -> Result<Alert, RecordError> {
    if bytes.len() < HEADER {
        return Err(RecordError::Truncated);
    }
    if &bytes[..4] != MAGIC {
        return Err(RecordError::Magic);
    }
    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    let payload = &bytes[HEADER..];
    if payload.len() != len {
        return Err(RecordError::Truncated);
    }
    if Sha256::digest(payload).as_slice() != &bytes[8..HEADER] {
        return Err(RecordError::Checksum);
    }
    serde_json::from_slice(payload).map_err(|e| RecordError::Payload(e.to_string()))
}
