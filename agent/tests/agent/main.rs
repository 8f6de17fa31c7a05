//! ward-agent's integration tests: the real sources, capture, spool and programs.

mod capture;
mod desktop;
mod x11_source;
