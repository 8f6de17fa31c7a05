//! ward-agent's integration tests: the real sources, capture, spool and programs.
//!
//! They need an X server (Xvfb), so they run on Linux; Windows code is tested by its unit tests.
#![cfg(all(unix, not(target_os = "macos")))]

mod capture;
mod certificates;
mod desktop;
mod end_to_end;
mod enrolment;
mod password_fields;
mod programs;
mod scripts;
mod tamper;
mod x11_source;
