//! ward-collector against real clients over real TLS with real certificates: the in-process server on
//! port 0 for most tests, the built binary where a process must die (kill -9) or the CLI is the subject.

mod activation;
mod cli;
mod crash;
mod enrol;
mod harness;
mod ingest;
mod jobs;
mod notices;
mod postgres;
mod refusals;
mod stream;
mod trust;
mod ui_http;
mod ui_store;
