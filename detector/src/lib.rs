//! Safeguarding and Prevent phrase detection: text in, matches out.
//!
//! Constraint: no IO. The caller reads wordlist files and hands their text in; the detector never
//! touches files, sockets or clocks, so it can run anywhere and be tested as a pure function.
#![deny(missing_docs)]
