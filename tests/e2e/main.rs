//! End-to-end tests: the real programs, started as a technician would start them.

mod cli;
mod resolver;
