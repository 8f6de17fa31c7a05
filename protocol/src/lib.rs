//! The wire contract between Ward's three programs.
//!
//! Everything an agent, a resolver or a collector sends to another is defined here, and nothing else
//! derives serde for the wire: a type in this crate is a compatibility promise. Every message carries
//! [`PROTOCOL_VERSION`]; a receiver refuses versions it does not speak rather than guessing.
//!
//! Constraints: this crate is a leaf. It does no IO, knows nothing of sockets, files or tokio, and every
//! value that arrives off the network is checked by [`Validate`] before anything else touches it.
#![deny(missing_docs)]

mod category;
mod messages;
mod validate;

pub use category::{Category, UnknownCategory};
pub use messages::*;
pub use validate::{Validate, ValidationError};

/// The protocol version this build speaks. Bump on any incompatible change to a message.
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest alert batch an agent may send in one request.
pub const MAX_BATCH: usize = 500;
