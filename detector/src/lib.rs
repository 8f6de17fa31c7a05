//! Safeguarding and Prevent phrase detection: text in, matches out.
//!
//! Constraint: no IO. The caller reads wordlist files and hands their text in; the detector never
//! touches files, sockets or clocks, so it can run anywhere and be tested as a pure function.
//!
//! # Pipeline
//! text → [normalise](mod@normalise) (case, accents, look-alikes, leetspeak, spacing, stretched letters;
//! every output byte remembers its input offset) → an anchored phrase trie walked from every word
//! start → verification (word boundaries, `except:` phrases, `unless:`/`near:` words within a few
//! words, `strict` letters) → [`Match`] with category, severity, language, entry id, phrase and the
//! span in the original text, counted in Unicode code points.
//!
//! Two paths, one result: typing goes a character at a time (the reference path); whole texts let
//! plain ASCII words through normalisation and the trie a word at a time, and hand everything else
//! to the reference path. The crate's tests compare the two on random mixes of plain words and
//! evasions.
//!
//! # Use
//! ```
//! use ward_detector::{Detector, Origin, Scratch, Window, WordlistFile};
//!
//! let list = "@category suicide\n@language en\n5 kill myself\n";
//! let files = [WordlistFile { name: "en/suicide.txt", text: list, origin: Origin::Shipped }];
//! let detector = std::sync::Arc::new(Detector::build(&files).expect("valid lists"));
//!
//! // Whole text (window titles, `ward-agent scan`): offsets are code points into `text`.
//! let mut scratch = Scratch::default();
//! let mut found = Vec::new();
//! detector.scan("i want to k!ll mys3lf", &mut scratch, |m| found.push((m.start, m.end)));
//! assert_eq!(found, [(10, 21)]);
//!
//! // Typing: one resumable state per window; each key costs well under a microsecond.
//! let mut window = Window::new();
//! let mut hits = 0;
//! for ch in "kill myself ".chars() {
//!     window.push(ch, &detector, |_| hits += 1);
//! }
//! assert_eq!(hits, 1);
//! ```
//!
//! A [`Detector`] is immutable once built: share it with `Arc` and swap the `Arc` on reload. If a
//! reload fails, keep using the last good one; [`LoadErrors`] names every bad file and line.
#![deny(missing_docs)]

mod compile;
mod error;
pub mod normalise;
mod stream;
mod wordlist;

use ward_protocol::Category;

pub use compile::Detector;
pub use error::{LoadError, LoadErrors};
pub use normalise::{normalise, Normalised};
pub use stream::{Scratch, Window};

/// Where a wordlist file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The lists Ward ships (replaced by updates).
    Shipped,
    /// The school's own additions and suppressions (never touched by updates).
    Local,
}

/// One wordlist file's text, read by the caller.
#[derive(Debug, Clone, Copy)]
pub struct WordlistFile<'a> {
    /// Name used in errors and entry ids; `en/suicide.txt` also gives the default language (`en`,
    /// the folder) and category (`suicide`, the file stem).
    pub name: &'a str,
    /// The file's UTF-8 text.
    pub text: &'a str,
    /// Shipped or local.
    pub origin: Origin,
}

/// One phrase found in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'d> {
    /// The entry's category.
    pub category: Category,
    /// 1 (low) to 5 (imminent risk to life).
    pub severity: u8,
    /// The entry's language tag (`en`, `pl`, ...).
    pub language: &'d str,
    /// Stable reference to the entry: `file:line`.
    pub entry: &'d str,
    /// The phrase as written in the wordlist.
    pub phrase: &'d str,
    /// The normalised form that matched (the compact form for "killmyself").
    pub normalised: &'d str,
    /// Start of the match, in code points from the start of the text (or of the window).
    pub start: usize,
    /// End of the match (exclusive), in code points.
    pub end: usize,
    /// A bounded window around the match (at most [`CONTEXT_CHARS`] either side, and only as far as
    /// the text has been seen), in code points: what an alert may carry as context.
    pub context: std::ops::Range<usize>,
    /// Never take a screenshot for this match (csam, sexting, sexual, or marked `no-capture`).
    pub no_capture: bool,
}

/// How much text either side of a match an alert may carry, in code points.
pub const CONTEXT_CHARS: usize = 60;
