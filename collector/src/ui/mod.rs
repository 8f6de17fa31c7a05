//! The review web UI: where the DSL and IT do their daily work.
//!
//! Server-rendered HTML on the collector's one TLS port, beside `/api/v1`. No script is needed to use
//! any page (a few lines of progressive enhancement add keyboard shortcuts). Every route identifies the
//! viewer from the session cookie, checks their roles (see [`roles`]) before it reads anything, and
//! records views of alert content in the append-only audit log.

pub mod auth;
pub mod chart;
pub mod csv;
pub mod html;
pub mod roles;
pub mod session;
