//! ward-agent's integration tests: the real sources, capture, spool and programs.

mod capture;
mod certificates;
mod desktop;
mod end_to_end;
mod programs;
mod x11_source;
