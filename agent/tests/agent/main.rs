//! ward-agent's integration tests: the real sources, capture, spool and programs.

mod desktop;
mod x11_source;
