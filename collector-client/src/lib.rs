//! The HTTPS client agents and resolvers use to reach ward-collector: pinned CA, client certificate.
#![deny(missing_docs)]
