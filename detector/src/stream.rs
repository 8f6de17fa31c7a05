//! The resumable scanner: the normaliser feeding the automaton one byte at a time, plus the
//! candidates waiting for verification.
//!
//! Why resumable: the agent sees text one key at a time. A [`Window`] keeps everything needed to
//! continue (automaton state, the word being typed, a short history of normalised bytes and their
//! offsets), so a key costs a few table look-ups and never a rescan of the buffer. A whole-text scan
//! is the same machine fed a whole string ([`Scratch`]).
//!
//! A candidate is confirmed when the word it ends in is complete (the next normalised byte is a word
//! break, or the text ends) and, if its entry has exclusions or context words, once enough following
//! text has been seen to rule them in or out. [`Window::end_of_text`] confirms everything pending:
//! the agent calls it when the user presses Enter, pauses, or leaves the window.

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::Anchored;

use crate::compile::{strict_fold, Detector, Target, NEAR_WINDOW};
use crate::normalise::{Normaliser, Sink};
use crate::{Match, CONTEXT_CHARS};

/// History of normalised bytes kept per window; longer than a pattern plus its look-ahead.
const RING: usize = 512;
const MASK: u64 = RING as u64 - 1;

/// How many characters back a backspace replays from the window's buffer: enough to rebuild the
/// history for the longest pattern, its exclusions and context words.
const REPLAY_CHARS: usize = 200;

/// How many reported matches a window remembers to avoid repeats.
const REMEMBERED: usize = 16;

/// A phrase match waiting for its word to end and its context to be seen.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    entry: u32,
    pattern: u32,
    /// Normalised byte positions (absolute, since the window started).
    start_norm: u64,
    end_norm: u64,
    /// Code-point offsets in the input; `end` is known once the word ends.
    start: u32,
    end: Option<u32>,
    /// Normalised position at which everything needed to verify has been seen.
    deadline: u64,
}

/// An exclusion, safe phrase or context word seen recently.
#[derive(Debug, Clone, Copy)]
struct Hit {
    target: Target,
    start_norm: u64,
    end_norm: u64,
}

/// The matcher's part of a window's state.
#[derive(Debug, Clone)]
struct Matcher {
    sid: StateID,
    generation: u64,
    /// Normalised bytes emitted since the window started.
    emitted: u64,
    /// Position of the first byte this matcher saw, and whether a word may start there.
    first: u64,
    first_is_boundary: bool,
    ring_byte: Box<[u8; RING]>,
    ring_origin: Box<[u32; RING]>,
    /// The last input characters, by code-point offset (for `strict` entries).
    ring_char: Box<[char; RING]>,
    pending: Vec<Candidate>,
    hits: Vec<Hit>,
    /// The last few matches reported (entry, start, end): a backspace that replays text, or a
    /// phrase deleted and retyped in place, must not report the same match twice.
    reported: Vec<(u32, u32, u32)>,
}

impl Matcher {
    fn new(detector: Option<&Detector>) -> Matcher {
        Matcher {
            sid: detector.map_or(StateID::ZERO, Detector::start_state),
            generation: detector.map_or(0, |d| d.generation),
            emitted: 0,
            first: 0,
            first_is_boundary: true,
            ring_byte: Box::new([b' '; RING]),
            ring_origin: Box::new([0; RING]),
            ring_char: Box::new(['\0'; RING]),
            pending: Vec::new(),
            hits: Vec::new(),
            reported: Vec::new(),
        }
    }

    /// Restarts matching (keeping offsets) when the window is fed by a newly loaded detector.
    fn bind(&mut self, detector: &Detector) {
        if self.generation != detector.generation {
            self.generation = detector.generation;
            self.sid = detector.start_state();
            self.pending.clear();
            self.hits.clear();
            self.first = self.emitted;
            self.first_is_boundary = self.emitted == 0 || self.last_byte() == Some(b' ');
        }
    }

    /// Whether the input characters `start..end` fold to exactly `letters` (for `strict`).
    fn span_is(&self, start: u32, end: u32, letters: &str) -> bool {
        if (end - start) as usize > RING {
            return false;
        }
        let folded = (start..end).filter_map(|i| strict_fold(self.ring_char[i as usize % RING]));
        folded.eq(letters.chars())
    }

    fn last_byte(&self) -> Option<u8> {
        (self.emitted > 0).then(|| self.ring_byte[((self.emitted - 1) & MASK) as usize])
    }

    fn boundary_before(&self, norm: u64) -> bool {
        if norm <= self.first {
            self.first_is_boundary
        } else {
            self.ring_byte[((norm - 1) & MASK) as usize] == b' '
        }
    }
}

/// Feeds normalised bytes into the automaton; built for the duration of one call.
struct Run<'r, 'd, F> {
    m: &'r mut Matcher,
    det: &'d Detector,
    on_match: &'r mut F,
    /// Input offset known so far (for the context window).
    seen: u32,
}

impl<'d, F: FnMut(Match<'d>)> Sink for Run<'_, 'd, F> {
    #[inline]
    fn byte(&mut self, byte: u8, origin: u32) {
        let idx = self.m.emitted;
        self.m.ring_byte[(idx & MASK) as usize] = byte;
        self.m.ring_origin[(idx & MASK) as usize] = origin;
        self.m.emitted = idx + 1;
        if !self.m.pending.is_empty() {
            self.advance(byte, idx, origin);
        }
        let sid = self.det.dfa.next_state(Anchored::No, self.m.sid, byte);
        self.m.sid = sid;
        if self.det.dfa.is_special(sid) && self.det.dfa.is_match(sid) {
            self.on_patterns(sid, idx + 1);
        }
    }
}

impl<'d, F: FnMut(Match<'d>)> Run<'_, 'd, F> {
    /// Moves pending candidates on by one byte: word ends, and confirmations whose time has come.
    fn advance(&mut self, byte: u8, idx: u64, origin: u32) {
        let mut i = 0;
        while i < self.m.pending.len() {
            let c = &mut self.m.pending[i];
            if c.end.is_none() && idx >= c.end_norm {
                let entry = &self.det.entries[c.entry as usize];
                if byte == b' ' {
                    c.end = Some(origin);
                    c.deadline = idx + 1 + entry.lookahead;
                } else if !entry.stem {
                    // The phrase continues into a longer word ("skill", "therapist"): not a match.
                    self.m.pending.remove(i);
                    continue;
                }
            }
            if c.end.is_some() && self.m.emitted >= c.deadline {
                let c = self.m.pending.remove(i);
                self.confirm(c);
                continue;
            }
            i += 1;
        }
    }

    /// The automaton reached a match state: record candidates and context hits.
    #[cold]
    fn on_patterns(&mut self, sid: StateID, end_norm: u64) {
        let dfa = &self.det.dfa;
        for k in 0..dfa.match_len(sid) {
            let pid = dfa.match_pattern(sid, k);
            let len = dfa.pattern_len(pid) as u64;
            let start_norm = end_norm - len;
            let (_, from, to) = self.det.patterns[pid.as_usize()];
            for t in from..to {
                let target = self.det.targets[t as usize];
                match target {
                    Target::Entry(entry) => {
                        if self.m.boundary_before(start_norm) {
                            // Longest first among matches ending here, so it is the one reported.
                            let at = self
                                .m
                                .pending
                                .iter()
                                .position(|p| p.end_norm == end_norm && p.start_norm > start_norm)
                                .unwrap_or(self.m.pending.len());
                            self.m.pending.insert(
                                at,
                                Candidate {
                                    entry,
                                    pattern: pid.as_u32(),
                                    start_norm,
                                    end_norm,
                                    start: self.m.ring_origin[(start_norm & MASK) as usize],
                                    end: None,
                                    deadline: u64::MAX,
                                },
                            );
                        }
                    }
                    _ if !self.m.boundary_before(start_norm) => {}
                    _ => {
                        self.m.hits.push(Hit {
                            target,
                            start_norm,
                            end_norm,
                        });
                    }
                }
            }
        }
        self.prune_hits();
    }

    fn prune_hits(&mut self) {
        if self.m.hits.len() > 32 {
            let keep_from = self.m.emitted.saturating_sub(RING as u64 / 2);
            self.m.hits.retain(|h| h.end_norm >= keep_from);
        }
    }

    /// Verifies a candidate whose context has been seen, and reports it.
    fn confirm(&mut self, c: Candidate) {
        let det = self.det;
        let entry = &det.entries[c.entry as usize];
        let end = c.end.unwrap_or(self.seen);
        if let Some(letters) = &entry.strict {
            if !self.m.span_is(c.start, end, letters) {
                return;
            }
        }
        let emitted = self.m.emitted;
        let ring = &self.m.ring_byte;
        // Exclusions and context words are whole words too: "cut myself a" is not in "cut myself
        // again". (Their start was checked when they were found.)
        let whole = |h: &Hit| h.end_norm >= emitted || ring[(h.end_norm & MASK) as usize] == b' ';
        let overlaps = |h: &Hit| whole(h) && h.start_norm < c.end_norm && c.start_norm < h.end_norm;
        let near = |h: &Hit| {
            h.end_norm + NEAR_WINDOW >= c.start_norm && h.start_norm <= c.end_norm + NEAR_WINDOW
        };
        let mut near_found = entry.near.is_empty();
        for h in &self.m.hits {
            match h.target {
                Target::Safe if overlaps(h) => return,
                Target::Except(e) if e == c.entry && overlaps(h) => return,
                Target::Context(w) if near(h) && whole(h) => {
                    if entry.unless.contains(&w) {
                        return;
                    }
                    near_found |= entry.near.contains(&w);
                }
                _ => {}
            }
        }
        let key = (c.entry, c.start, end);
        // One report per place per category: "how to kill myself" also contains "kill myself", and
        // the same phrase may be listed in two languages.
        let covered = self.m.reported.iter().any(|&(e, s, en)| {
            s <= c.start && end <= en && det.entries[e as usize].category == entry.category
        });
        if !near_found || covered {
            return;
        }
        if self.m.reported.len() == REMEMBERED {
            self.m.reported.remove(0);
        }
        self.m.reported.push(key);
        let context_start = c.start.saturating_sub(CONTEXT_CHARS as u32);
        let context_end = (end + CONTEXT_CHARS as u32).min(self.seen.max(end));
        (self.on_match)(Match {
            category: entry.category,
            severity: entry.severity,
            language: &entry.language,
            entry: &entry.id,
            phrase: &entry.phrase,
            normalised: &det.patterns[c.pattern as usize].0,
            start: c.start as usize,
            end: end as usize,
            context: context_start as usize..context_end as usize,
            no_capture: entry.no_capture,
        });
    }

    /// End of text: every word has ended and every following context has been seen.
    fn confirm_all(&mut self, text_end: u32) {
        while !self.m.pending.is_empty() {
            let mut c = self.m.pending.remove(0);
            c.end.get_or_insert(text_end);
            self.confirm(c);
        }
    }
}

/// The resumable detection state of one text field or window (the agent keeps one per window).
///
/// Offsets in its matches count code points pushed since the last [`Window::reset`] (minus
/// backspaces): the index a character has in an unbounded buffer of the window's text.
#[derive(Debug, Clone)]
pub struct Window {
    norm: Normaliser,
    m: Matcher,
}

impl Default for Window {
    fn default() -> Self {
        Window::new()
    }
}

impl Window {
    /// A fresh window at offset 0.
    pub fn new() -> Window {
        Window {
            norm: Normaliser::new(0),
            m: Matcher::new(None),
        }
    }

    /// Code points consumed so far (the offset the next character will have).
    pub fn position(&self) -> usize {
        self.norm.pos() as usize
    }

    /// Forgets everything: focus moved to another window, or the field was cleared. Call
    /// [`Window::end_of_text`] first if matches still pending should be reported.
    pub fn reset(&mut self) {
        self.norm = Normaliser::new(0);
        self.m = Matcher::new(None);
    }

    /// Feeds one typed character; `on_match` is called for every match this completes.
    #[inline]
    pub fn push<'d>(
        &mut self,
        ch: char,
        detector: &'d Detector,
        mut on_match: impl FnMut(Match<'d>),
    ) {
        self.m.bind(detector);
        self.m.ring_char[self.norm.pos() as usize % RING] = ch;
        let mut run = Run {
            m: &mut self.m,
            det: detector,
            on_match: &mut on_match,
            seen: self.norm.pos() + 1,
        };
        self.norm.push(ch, &mut run);
    }

    /// Feeds a string (pasted text, or a whole text through [`Scratch`]).
    pub fn push_str<'d>(
        &mut self,
        text: &str,
        detector: &'d Detector,
        mut on_match: impl FnMut(Match<'d>),
    ) {
        self.m.bind(detector);
        let mut run = Run {
            m: &mut self.m,
            det: detector,
            on_match: &mut on_match,
            seen: self.norm.pos() + text.chars().count() as u32,
        };
        for ch in text.chars() {
            run.m.ring_char[self.norm.pos() as usize % RING] = ch;
            self.norm.push(ch, &mut run);
        }
    }

    /// The text ended (Enter, a pause, focus leaving): confirms every pending match. What is typed
    /// afterwards starts a new word.
    pub fn end_of_text<'d>(&mut self, detector: &'d Detector, mut on_match: impl FnMut(Match<'d>)) {
        self.m.bind(detector);
        let end = self.norm.pos();
        let mut run = Run {
            m: &mut self.m,
            det: detector,
            on_match: &mut on_match,
            seen: end,
        };
        self.norm.finish(&mut run);
        run.confirm_all(end);
    }

    /// The user deleted the last character. `buffer` is the window's text after the deletion (its
    /// last character is the one before the cursor; it may be only the most recent part of the
    /// text). The state is rebuilt from the last [`REPLAY_CHARS`] characters of it; matches already
    /// reported are not reported again.
    pub fn backspace<'d>(
        &mut self,
        buffer: &str,
        detector: &'d Detector,
        on_match: impl FnMut(Match<'d>),
    ) {
        let new_pos = self.norm.pos().saturating_sub(1);
        let reported = std::mem::take(&mut self.m.reported);
        let tail_start = buffer
            .char_indices()
            .rev()
            .nth(REPLAY_CHARS - 1)
            .map_or(0, |(i, _)| i);
        let mut tail = &buffer[tail_start..];
        let mut count = tail.chars().count() as u32;
        let mut boundary = tail_start == 0 && count == new_pos;
        if !boundary {
            // Start after a separator so the first word is whole.
            if let Some((i, c)) = tail.char_indices().find(|(_, c)| !c.is_alphanumeric()) {
                tail = &tail[i + c.len_utf8()..];
                count = tail.chars().count() as u32;
                boundary = true;
            }
        }
        let base = new_pos.saturating_sub(count);
        self.norm = Normaliser::new(base);
        self.m = Matcher::new(Some(detector));
        self.m.first_is_boundary = boundary;
        if !boundary {
            self.norm.start_mid_word();
        }
        self.m.reported = reported;
        self.push_str(tail, detector, on_match);
    }
}

/// Reusable state for whole-text scans ([`Detector::scan`]); keep one per thread.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    window: Window,
}

impl Scratch {
    pub(crate) fn scan<'d>(
        &mut self,
        det: &'d Detector,
        text: &str,
        mut on_match: impl FnMut(Match<'d>),
    ) {
        let w = &mut self.window;
        w.norm = Normaliser::new(0);
        w.m.sid = det.start_state();
        w.m.generation = det.generation;
        w.m.emitted = 0;
        w.m.first = 0;
        w.m.first_is_boundary = true;
        w.m.pending.clear();
        w.m.hits.clear();
        w.m.reported.clear();
        w.push_str(text, det, &mut on_match);
        w.end_of_text(det, &mut on_match);
    }
}
