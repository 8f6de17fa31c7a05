//! End-to-end tests: the real programs, started as a technician would start them.

mod browser;
mod cli;
mod install;
mod resolver;
mod totp;
mod ui;
