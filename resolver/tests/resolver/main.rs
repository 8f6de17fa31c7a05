//! Integration tests: the real `ward-resolver` binary on loopback sockets, in front of a small
//! authoritative upstream started by the tests, queried with hickory-proto messages and `dig`.

mod cli;
mod coalesce;
mod harness;
mod limits;
mod querylog;
mod reload;
mod resilience;
mod serving;
mod upstream;
