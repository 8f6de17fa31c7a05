//! ward-detector's integration tests: one binary, one module per concern.

mod eval;
mod incremental;
mod load;
mod normalise;
mod paths;
mod support;
mod verify;
