//! The resumable scanner: the normaliser feeding the phrase tries, plus the candidates waiting for
//! verification.
//!
//! Why resumable: the agent sees text one key at a time. A [`Window`] keeps everything needed to
//! continue (automaton state, the word being typed, a short history of normalised bytes and their
//! offsets), so a key costs a few table look-ups and never a rescan of the buffer. A whole-text scan
//! is the same machine fed a whole string ([`Scratch`]).
//!
//! Bytes normally arrive one at a time ([`Sink::byte`], the reference path). A plain word arrives
//! whole ([`Sink::word`], [`Sink::word_as_typed`]): the walks step through it in a tight loop and
//! the history is written in one go, unless a candidate is pending or a phrase ends inside the
//! word, when it goes byte by byte after all. Both give the same state afterwards.
//!
//! A candidate is confirmed when the word it ends in is complete (the next normalised byte is a word
//! break, or the text ends) and, if its entry has exclusions or context words, once enough following
//! text has been seen to rule them in or out; they are then looked for in the history around it.
//! [`Window::end_of_text`] confirms everything pending: the agent calls it when the user presses
//! Enter, pauses, or leaves the window.

use crate::compile::{strict_fold, Automaton, Detector, StateId, Trie, Tries, DEAD, NEAR_WINDOW};
use crate::normalise::{collapsed_bytes, Normaliser, Sink};
use crate::{Match, CONTEXT_CHARS};

/// History of normalised bytes (and of input characters) kept per window; longer than a pattern
/// plus the context before it and the look-ahead after it.
const RING: usize = 512;
const MASK: u64 = RING as u64 - 1;

/// How many characters back a backspace replays from the window's buffer: enough to rebuild the
/// history for the longest pattern, its exclusions and context words.
const REPLAY_CHARS: usize = 200;

/// Stands in the ring of typed characters for one that is not ASCII (kept in the wide ring).
const WIDE: u8 = 0x80;

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

/// Walks in flight at once: one per word start whose words so far begin some phrase.
const MAX_WALKS: usize = 8;

/// One anchored walk through a phrase automaton, begun at a word start.
#[derive(Debug, Clone, Copy)]
struct Walk {
    sid: u32,
    start_norm: u64,
    other: bool,
}

/// The matcher's part of a window's state.
#[derive(Debug, Clone)]
struct Matcher {
    /// Phrases are matched by walking the automaton from each word start (phrases only ever start
    /// at one), so a word that begins no phrase costs one step and the rest of it none, and the
    /// states in use stay few and cached.
    walks: [Walk; MAX_WALKS],
    nwalks: usize,
    /// The next byte starts a word.
    at_word_start: bool,
    generation: u64,
    /// Normalised bytes emitted since the window started.
    emitted: u64,
    /// Position of the first byte this matcher saw, and whether a word may start there.
    first: u64,
    first_is_boundary: bool,
    ring_byte: Box<[u8; RING]>,
    ring_origin: Box<[u32; RING]>,
    /// The last input characters, by code-point offset (for `strict` entries).
    ring_char: Box<[u8; RING]>,
    /// The non-ASCII ones among them, where `ring_char` holds [`WIDE`].
    ring_wide: Box<[char; RING]>,
    pending: Vec<Candidate>,
    /// The last few matches reported (entry, start, end): a backspace that replays text, or a
    /// phrase deleted and retyped in place, must not report the same match twice.
    reported: Vec<(u32, u32, u32)>,
}

impl Matcher {
    fn new() -> Matcher {
        Matcher {
            walks: [Walk {
                sid: DEAD,
                start_norm: 0,
                other: false,
            }; MAX_WALKS],
            nwalks: 0,
            at_word_start: true,
            generation: 0,
            emitted: 0,
            first: 0,
            first_is_boundary: true,
            ring_byte: Box::new([b' '; RING]),
            ring_origin: Box::new([0; RING]),
            ring_char: Box::new([0; RING]),
            ring_wide: Box::new(['\0'; RING]),
            pending: Vec::new(),
            reported: Vec::new(),
        }
    }

    /// Back to the start of a text, keeping the allocations.
    fn restart(&mut self, detector: &Detector, first_is_boundary: bool) {
        self.nwalks = 0;
        self.at_word_start = first_is_boundary;
        self.generation = detector.generation;
        self.emitted = 0;
        self.first = 0;
        self.first_is_boundary = first_is_boundary;
        self.pending.clear();
        self.reported.clear();
    }

    /// Restarts matching (keeping offsets) when the window is fed by a newly loaded detector.
    #[inline]
    fn bind(&mut self, detector: &Detector) {
        if self.generation != detector.generation {
            self.generation = detector.generation;
            self.nwalks = 0;
            self.pending.clear();
            self.first = self.emitted;
            self.first_is_boundary = self.emitted == 0 || self.byte_at(self.emitted - 1) == b' ';
            self.at_word_start = self.first_is_boundary;
        }
    }

    /// Appends `len` letters and a word break to the history: letter `k` is `byte(k)` from input
    /// offset `origin(k)`; the break comes from `origin(len)`.
    #[inline(always)]
    fn history(&mut self, len: usize, byte: impl Fn(usize) -> u8, origin: impl Fn(usize) -> u32) {
        let base = self.emitted;
        let at = (base & MASK) as usize;
        if at + len < RING {
            // Most words do not wrap around the ring: straight runs.
            for (k, b) in self.ring_byte[at..at + len].iter_mut().enumerate() {
                *b = byte(k);
            }
            for (k, o) in self.ring_origin[at..=at + len].iter_mut().enumerate() {
                *o = origin(k);
            }
            self.ring_byte[at + len] = b' ';
        } else {
            for k in 0..=len {
                let at = ((base + k as u64) & MASK) as usize;
                self.ring_byte[at] = if k < len { byte(k) } else { b' ' };
                self.ring_origin[at] = origin(k);
            }
        }
        self.emitted = base + len as u64 + 1;
    }

    /// Appends a word as typed to the history, lower-cased, each run of a letter collapsed to its
    /// first (which keeps its offset), then a word break; the first letter is at input offset
    /// `start`.
    #[inline(always)]
    fn history_collapsing(&mut self, text: &[u8], start: u32) {
        let base = self.emitted;
        let mut n = 0u64;
        let mut last = 0u8;
        for (k, &b) in text.iter().enumerate() {
            let ch = b | 0x20;
            // A repeat is written one place on and overwritten by what follows.
            let at = ((base + n) & MASK) as usize;
            self.ring_byte[at] = ch;
            self.ring_origin[at] = start + k as u32;
            n += u64::from(ch != last);
            last = ch;
        }
        let at = ((base + n) & MASK) as usize;
        self.ring_byte[at] = b' ';
        self.ring_origin[at] = start + text.len() as u32;
        self.emitted = base + n + 1;
    }

    /// Pathological text (eight open phrase prefixes at once): the walk that began first gives
    /// way. Chosen by its start, not its place in `walks`, so the order walks are kept in never
    /// changes what is found.
    fn evict_oldest(&mut self) {
        let walks = &self.walks[..self.nwalks];
        let oldest = (0..walks.len())
            .min_by_key(|&i| walks[i].start_norm)
            .unwrap_or(0);
        self.nwalks -= 1;
        self.walks[oldest] = self.walks[self.nwalks];
    }

    /// The input character at code-point offset `offset` (within the last [`RING`]).
    fn char_at(&self, offset: u32) -> char {
        let at = offset as usize % RING;
        match self.ring_char[at] {
            WIDE => self.ring_wide[at],
            b => char::from(b),
        }
    }

    /// Remembers the input character at code-point offset `offset`.
    #[inline]
    fn set_char(&mut self, offset: u32, ch: char) {
        let at = offset as usize % RING;
        if ch.is_ascii() {
            self.ring_char[at] = ch as u8;
        } else {
            self.ring_char[at] = WIDE;
            self.ring_wide[at] = ch;
        }
    }

    fn byte_at(&self, norm: u64) -> u8 {
        self.ring_byte[(norm & MASK) as usize]
    }

    /// Whether a word starts at normalised position `norm`.
    fn boundary_before(&self, norm: u64) -> bool {
        if norm <= self.first {
            self.first_is_boundary
        } else {
            self.byte_at(norm - 1) == b' '
        }
    }

    /// Whether a word ends at normalised position `norm` (the text seen so far counts as an end).
    fn boundary_at(&self, norm: u64) -> bool {
        norm >= self.emitted || self.byte_at(norm) == b' '
    }

    /// Whether the input characters `start..end` fold to exactly `letters` (for `strict`).
    fn span_is(&self, start: u32, end: u32, letters: &str) -> bool {
        if (end - start) as usize > RING {
            return false;
        }
        let folded = (start..end).filter_map(|i| strict_fold(self.char_at(i)));
        folded.eq(letters.chars())
    }

    /// Whole-word occurrences of `needle` starting in `from..to` (normalised positions), as
    /// (start, end) pairs, within the history still held.
    fn occurrences<'a>(
        &'a self,
        needle: &'a [u8],
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = (u64, u64)> + 'a {
        let oldest = self.emitted.saturating_sub(RING as u64).max(self.first);
        let from = from.max(oldest);
        let last_start = self.emitted.saturating_sub(needle.len() as u64);
        (from..to.min(last_start + 1))
            .filter(move |&s| {
                self.boundary_before(s)
                    && needle
                        .iter()
                        .enumerate()
                        .all(|(i, &b)| self.byte_at(s + i as u64) == b)
            })
            .map(move |s| (s, s + needle.len() as u64))
            .filter(move |&(_, e)| self.boundary_at(e))
    }
}

/// Runs `$body` with `$run` a [`Run`] over the detector's tries, whichever their state-id width
/// (each width gets its own compiled scan loop).
macro_rules! with_run {
    ($m:expr, $det:expr, $on_match:expr, $text_end:expr, |$run:ident| $body:block) => {
        match &$det.automaton {
            Automaton::Compact(tries) => {
                #[allow(unused_mut)]
                let mut $run = Run {
                    m: $m,
                    det: $det,
                    tries,
                    on_match: $on_match,
                    text_end: $text_end,
                };
                $body
            }
            Automaton::Wide(tries) => {
                #[allow(unused_mut)]
                let mut $run = Run {
                    m: $m,
                    det: $det,
                    tries,
                    on_match: $on_match,
                    text_end: $text_end,
                };
                $body
            }
        }
    };
}

/// Feeds normalised bytes into the automaton; built for the duration of one call, for the
/// detector's state-id width `S`.
struct Run<'r, 'd, F, S> {
    m: &'r mut Matcher,
    det: &'d Detector,
    tries: &'d Tries<S>,
    on_match: &'r mut F,
    /// Where the text ends, once known (bounds the context window).
    text_end: Option<u32>,
}

impl<'d, F: FnMut(Match<'d>), S: StateId> Sink for Run<'_, 'd, F, S> {
    #[inline]
    fn input(&mut self, offset: u32, ch: char) {
        self.m.set_char(offset, ch);
    }

    #[inline]
    fn input_ascii(&mut self, offset: u32, text: &[u8]) {
        let at = offset as usize % RING;
        match self.m.ring_char.get_mut(at..at + text.len()) {
            // Most words do not wrap around the ring: a plain copy.
            Some(ring) => copy_short(ring, text),
            None => {
                for (k, &b) in text.iter().enumerate() {
                    self.m.ring_char[(at + k) % RING] = b;
                }
            }
        }
    }

    /// A plain word and its break at once: while no candidate is pending and no walk reaches the
    /// end of a phrase inside the word (nearly always), the walks are stepped through the whole
    /// word in a tight loop and the history written in one go; otherwise byte by byte, as
    /// [`Sink::byte`] does.
    #[inline]
    fn word(&mut self, letters: &[u8], origins: &[u32], break_origin: u32) {
        if !self.m.pending.is_empty() || !self.word_walks(letters) {
            for (&b, &o) in letters.iter().zip(origins) {
                self.byte(b, o);
            }
            self.byte(b' ', break_origin);
            return;
        }
        self.m.history(
            letters.len(),
            |k| letters[k],
            |k| origins.get(k).copied().unwrap_or(break_origin),
        );
    }

    /// As [`Run::word`], for a word whose normalised form is its letters lower-cased: the walks
    /// read the typed bytes (the tries fold ASCII case).
    #[inline]
    fn word_as_typed(&mut self, text: &[u8], start: u32) {
        if !self.m.pending.is_empty() || !self.word_walks(text) {
            for (k, &b) in text.iter().enumerate() {
                self.byte(b.to_ascii_lowercase(), start + k as u32);
            }
            self.byte(b' ', start + text.len() as u32);
            return;
        }
        self.m
            .history(text.len(), |k| text[k] | 0x20, |k| start + k as u32);
    }

    /// As [`Run::word_as_typed`], for a word with doubled letters: the tries' self-loops let the
    /// walks read it as typed, and the history gets its collapsed form.
    #[inline]
    fn word_repeating(&mut self, text: &[u8], start: u32) {
        let loops = self.tries.latin.loops() && self.tries.other.loops();
        if !loops || !self.m.pending.is_empty() || !self.word_walks(text) {
            collapsed_bytes(self, text, start);
            return;
        }
        self.m.history_collapsing(text, start);
    }

    #[inline]
    fn byte(&mut self, byte: u8, origin: u32) {
        let idx = self.m.emitted;
        self.m.ring_byte[(idx & MASK) as usize] = byte;
        self.m.ring_origin[(idx & MASK) as usize] = origin;
        self.m.emitted = idx + 1;
        if !self.m.pending.is_empty() {
            self.advance(byte, idx, origin);
        }
        if self.m.at_word_start && byte != b' ' {
            self.start_walk(byte, idx);
        }
        self.m.at_word_start = byte == b' ';
        let mut i = 0;
        while i < self.m.nwalks {
            let walk = self.m.walks[i];
            let part = self.tries.part(walk.other);
            let sid = part.step(walk.sid, byte);
            if part.is_special(sid) {
                if sid == DEAD {
                    self.m.nwalks -= 1;
                    self.m.walks[i] = self.m.walks[self.m.nwalks];
                    continue;
                }
                self.on_pattern(part.pattern(sid), walk.start_norm, idx + 1);
            }
            self.m.walks[i].sid = sid;
            i += 1;
        }
    }
}

impl<'d, F: FnMut(Match<'d>), S: StateId> Run<'_, 'd, F, S> {
    /// Steps every walk (and a new one, if a word starts) through a whole word and its break, and
    /// keeps the result only if no walk reached the end of a phrase on the way: then nothing but
    /// the walks' states changed. Returns whether it kept it.
    #[inline(always)]
    fn word_walks(&mut self, letters: &[u8]) -> bool {
        let Some(&first) = letters.first() else {
            return false;
        };
        let det = self.tries;
        let m = &mut *self.m;
        // Through the letters, then the word break.
        let walk_on = |part: &Trie<S>, sid: u32, bytes: &[u8]| {
            walk_on(part, sid, bytes).and_then(|sid| walk_on(part, sid, b" "))
        };
        let walk_through =
            |walk: &Walk| -> Option<u32> { walk_on(det.part(walk.other), walk.sid, letters) };
        let other = first >= 0x80;
        let new = Walk {
            sid: if other {
                det.other.root()
            } else {
                det.latin.root()
            },
            start_norm: m.emitted,
            other,
        };
        let new_sid = if m.at_word_start {
            // A new walk's first two steps come from the table of pairs, when there is one.
            let pair = match letters {
                [b0, b1, rest @ ..] if !other => det.latin.pair(*b0, *b1).map(|sid| (sid, rest)),
                _ => None,
            };
            let walked = match pair {
                // A pair no phrase begins with leads to the dead state, which walks on as dead.
                Some((sid, rest)) if !det.latin.is_phrase_end(sid) => {
                    walk_all(&det.latin, sid, rest)
                }
                _ => walk_through(&new),
            };
            match walked {
                Some(sid) => sid,
                None => return false,
            }
        } else {
            DEAD
        };
        if m.nwalks == 0 {
            // The common case: the words before began no phrase that is still open. (Written
            // either way and counted only if alive: no branch to mispredict.)
            m.walks[0] = Walk {
                sid: new_sid,
                ..new
            };
            m.nwalks = usize::from(new_sid != DEAD);
            m.at_word_start = true;
            return true;
        }
        let mut next = [DEAD; MAX_WALKS];
        for (walk, sid) in m.walks[..m.nwalks].iter().zip(&mut next) {
            match walk_through(walk) {
                Some(s) => *sid = s,
                None => return false,
            }
        }
        // Keep: the same walks, in the same way, as byte by byte.
        if m.at_word_start && m.nwalks == MAX_WALKS {
            let oldest = (0..m.nwalks)
                .min_by_key(|&i| m.walks[i].start_norm)
                .unwrap_or(0);
            m.nwalks -= 1;
            m.walks[oldest] = m.walks[m.nwalks];
            next[oldest] = next[m.nwalks];
        }
        let mut i = 0;
        while i < m.nwalks {
            if next[i] == DEAD {
                m.nwalks -= 1;
                m.walks[i] = m.walks[m.nwalks];
                next[i] = next[m.nwalks];
                continue;
            }
            m.walks[i].sid = next[i];
            i += 1;
        }
        if new_sid != DEAD {
            m.walks[m.nwalks] = Walk {
                sid: new_sid,
                ..new
            };
            m.nwalks += 1;
        }
        m.at_word_start = true;
        true
    }

    /// Moves pending candidates on by one byte: word ends, and confirmations whose time has come.
    #[cold]
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

    /// A word starts: walk the automaton for its script from the start.
    #[inline]
    fn start_walk(&mut self, byte: u8, idx: u64) {
        let other = byte >= 0x80;
        if self.m.nwalks == MAX_WALKS {
            self.m.evict_oldest();
        }
        self.m.walks[self.m.nwalks] = Walk {
            sid: self.tries.part(other).root(),
            start_norm: idx,
            other,
        };
        self.m.nwalks += 1;
    }

    /// A walk reached the end of a phrase: record a candidate for each entry it stands for.
    #[cold]
    fn on_pattern(&mut self, pattern: u32, start_norm: u64, end_norm: u64) {
        let (_, from, to) = self.det.patterns[pattern as usize];
        for t in from..to {
            // Longest first among matches ending here, so it is the one reported.
            let at = self
                .m
                .pending
                .iter()
                .position(|p| p.end_norm == end_norm && p.start_norm > start_norm)
                .unwrap_or(self.m.pending.len());
            let candidate = Candidate {
                entry: self.det.targets[t as usize],
                pattern,
                start_norm,
                end_norm,
                start: self.m.ring_origin[(start_norm & MASK) as usize],
                end: None,
                deadline: u64::MAX,
            };
            self.m.pending.insert(at, candidate);
        }
    }

    /// Whether exclusions, safe phrases or context words rule the candidate out.
    fn ruled_out(&self, c: &Candidate) -> bool {
        let m = &*self.m;
        let entry = &self.det.entries[c.entry as usize];
        let overlapping = |p: &[u8]| {
            let from = c.start_norm.saturating_sub(p.len() as u64);
            m.occurrences(p, from, c.end_norm)
                .any(|(s, e)| s < c.end_norm && c.start_norm < e)
        };
        if entry.except.iter().any(|p| overlapping(p))
            || self.det.safe.iter().any(|p| overlapping(p))
        {
            return true;
        }
        let nearby = |p: &[u8]| {
            let from = c.start_norm.saturating_sub(NEAR_WINDOW + p.len() as u64);
            m.occurrences(p, from, c.end_norm + NEAR_WINDOW + 1)
                .next()
                .is_some()
        };
        entry.unless.iter().any(|p| nearby(p))
            || (!entry.near.is_empty() && !entry.near.iter().any(|p| nearby(p)))
    }

    /// Verifies a candidate whose context has been seen, and reports it.
    fn confirm(&mut self, c: Candidate) {
        let det = self.det;
        let entry = &det.entries[c.entry as usize];
        let end = c.end.unwrap_or(c.start);
        if let Some(letters) = &entry.strict {
            if !self.m.span_is(c.start, end, letters) {
                return;
            }
        }
        if (!entry.except.is_empty()
            || !entry.unless.is_empty()
            || !entry.near.is_empty()
            || !det.safe.is_empty())
            && self.ruled_out(&c)
        {
            return;
        }
        // One report per place per category: "how to kill myself" also contains "kill myself", and
        // the same phrase may be listed in two languages.
        let covered = self.m.reported.iter().any(|&(e, s, en)| {
            s <= c.start && end <= en && det.entries[e as usize].category == entry.category
        });
        if covered {
            return;
        }
        if self.m.reported.len() == REMEMBERED {
            self.m.reported.remove(0);
        }
        self.m.reported.push((c.entry, c.start, end));
        let seen = self.text_end.unwrap_or_else(|| {
            let last = self.m.emitted.saturating_sub(1);
            self.m.ring_origin[(last & MASK) as usize] + 1
        });
        let context_start = c.start.saturating_sub(CONTEXT_CHARS as u32);
        let context_end = (end + CONTEXT_CHARS as u32).min(seen.max(end));
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
        self.text_end = Some(text_end);
        while !self.m.pending.is_empty() {
            let mut c = self.m.pending.remove(0);
            c.end.get_or_insert(text_end);
            self.confirm(c);
        }
    }
}

/// `dst.copy_from_slice(src)` for the few bytes of a word, in fixed-size moves: a call to the
/// general copy costs more than the copy itself.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    debug_assert_eq!(dst.len(), n);
    match n {
        // Two overlapping fixed-size moves cover any length in between.
        8..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        2..=3 => {
            dst[..2].copy_from_slice(&src[..2]);
            dst[n - 2..].copy_from_slice(&src[n - 2..]);
        }
        1 => dst[0] = src[0],
        0 => {}
        _ => dst.copy_from_slice(src),
    }
}

/// Steps a walk from `sid` through `bytes`: the state it ends in ([`DEAD`] if it died), or `None`
/// if a phrase ends on the way (then the caller goes byte by byte).
#[inline(always)]
fn walk_on<S: StateId>(part: &Trie<S>, mut sid: u32, bytes: &[u8]) -> Option<u32> {
    for &b in bytes {
        sid = part.step(sid, b);
        if part.is_special(sid) {
            return (sid == DEAD).then_some(DEAD);
        }
    }
    Some(sid)
}

/// As [`walk_on`] through `bytes` and a word break, without stopping early: a dead walk stays dead
/// (the dead state's row is all dead), so running on costs a few cached look-ups where stopping
/// would cost a mispredicted branch at an unpredictable place in the word.
#[inline(always)]
fn walk_all<S: StateId>(part: &Trie<S>, mut sid: u32, bytes: &[u8]) -> Option<u32> {
    let mut ends = false;
    for &b in bytes.iter().chain(b" ") {
        sid = part.step(sid, b);
        ends |= part.is_phrase_end(sid);
    }
    (!ends).then_some(sid)
}

/// The resumable detection state of one text field or window (the agent keeps one per window).
///
/// Offsets in its matches count code points pushed since the last [`Window::reset`] (minus
/// backspaces): the index a character has in an unbounded buffer of the window's text.
#[derive(Debug, Clone)]
pub struct Window {
    norm: Normaliser,
    m: Matcher,
    /// The state when the last word boundary was typed (see [`Mark`]).
    mark: Box<Mark>,
}

/// A window's state at the last word boundary typed: a backspace inside the word being typed
/// goes back to it and replays only that word's few characters, instead of the last
/// [`REPLAY_CHARS`] of the buffer. The histories are not copied: nothing before the mark is
/// overwritten while fewer than [`MARK_REPLAY`] characters follow it.
#[derive(Debug, Clone)]
struct Mark {
    valid: bool,
    norm: Normaliser,
    generation: u64,
    walks: [Walk; MAX_WALKS],
    nwalks: usize,
    at_word_start: bool,
    emitted: u64,
    first: u64,
    first_is_boundary: bool,
    pending: Vec<Candidate>,
}

/// Most characters a backspace replays from a [`Mark`]; past that, from the buffer.
const MARK_REPLAY: u32 = 48;

impl Mark {
    fn new() -> Mark {
        Mark {
            valid: false,
            norm: Normaliser::new(0),
            generation: 0,
            walks: [Walk {
                sid: DEAD,
                start_norm: 0,
                other: false,
            }; MAX_WALKS],
            nwalks: 0,
            at_word_start: true,
            emitted: 0,
            first: 0,
            first_is_boundary: true,
            pending: Vec::new(),
        }
    }

    fn save(&mut self, norm: &Normaliser, m: &Matcher) {
        self.valid = true;
        self.norm.copy_from(norm);
        self.generation = m.generation;
        self.walks = m.walks;
        self.nwalks = m.nwalks;
        self.at_word_start = m.at_word_start;
        self.emitted = m.emitted;
        self.first = m.first;
        self.first_is_boundary = m.first_is_boundary;
        self.pending.clone_from(&m.pending);
    }

    /// Puts the window back to the mark (matches already reported stay remembered).
    fn restore(&self, norm: &mut Normaliser, m: &mut Matcher) {
        norm.copy_from(&self.norm);
        m.generation = self.generation;
        m.walks = self.walks;
        m.nwalks = self.nwalks;
        m.at_word_start = self.at_word_start;
        m.emitted = self.emitted;
        m.first = self.first;
        m.first_is_boundary = self.first_is_boundary;
        m.pending.clone_from(&self.pending);
    }
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
            m: Matcher::new(),
            mark: Box::new(Mark::new()),
        }
    }

    /// Code points consumed so far (the offset the next character will have).
    pub fn position(&self) -> usize {
        self.norm.pos() as usize
    }

    /// Forgets everything: focus moved to another window, or the field was cleared. Call
    /// [`Window::end_of_text`] first if matches still pending should be reported.
    pub fn reset(&mut self) {
        self.norm.reset(0);
        self.m.generation = 0;
        self.m.emitted = 0;
        self.m.first = 0;
        self.m.first_is_boundary = true;
        self.m.pending.clear();
        self.m.reported.clear();
        self.mark.valid = false;
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
        self.m.set_char(self.norm.pos(), ch);
        with_run!(&mut self.m, detector, &mut on_match, None, |run| {
            self.norm.push(ch, &mut run);
        });
        if self.norm.between_words() {
            self.mark.save(&self.norm, &self.m);
        }
    }

    /// Feeds a string (pasted text, or a whole text through [`Scratch`]).
    pub fn push_str<'d>(
        &mut self,
        text: &str,
        detector: &'d Detector,
        on_match: impl FnMut(Match<'d>),
    ) {
        self.feed(text, detector, on_match, None);
    }

    /// Feeds a string; `text_end`, when the whole text is known, bounds context windows.
    fn feed<'d>(
        &mut self,
        text: &str,
        detector: &'d Detector,
        mut on_match: impl FnMut(Match<'d>),
        text_end: Option<u32>,
    ) {
        self.mark.valid = false;
        self.m.bind(detector);
        with_run!(&mut self.m, detector, &mut on_match, text_end, |run| {
            self.norm.push_str(text, &mut run);
        });
    }

    /// The text ended (Enter, a pause, focus leaving): confirms every pending match. What is typed
    /// afterwards starts a new word.
    pub fn end_of_text<'d>(&mut self, detector: &'d Detector, mut on_match: impl FnMut(Match<'d>)) {
        self.mark.valid = false;
        self.m.bind(detector);
        let end = self.norm.pos();
        with_run!(&mut self.m, detector, &mut on_match, Some(end), |run| {
            self.norm.finish(&mut run);
            run.confirm_all(end);
        });
    }

    /// The user deleted the last character. `buffer` is the window's text after the deletion (its
    /// last character is the one before the cursor; it may be only the most recent part of the
    /// text). Inside a word being typed, the state goes back to the word's start and the word's
    /// characters before the cursor are replayed from `buffer`; otherwise the state is rebuilt from
    /// the last 200 characters of it. Matches already reported are not reported again.
    pub fn backspace<'d>(
        &mut self,
        buffer: &str,
        detector: &'d Detector,
        mut on_match: impl FnMut(Match<'d>),
    ) {
        let new_pos = self.norm.pos().saturating_sub(1);
        if self.back_to_mark(new_pos, buffer, detector, &mut on_match) {
            return;
        }
        self.mark.valid = false;
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
        let reported = std::mem::take(&mut self.m.reported);
        self.norm.reset(new_pos.saturating_sub(count));
        self.m.restart(detector, boundary);
        if !boundary {
            self.norm.start_mid_word();
        }
        self.m.reported = reported;
        self.push_str(tail, detector, on_match);
    }

    /// A backspace that stays after the mark: back to it, then the characters typed since, less the
    /// deleted one, again. Returns false (and changes nothing) if the mark cannot be used.
    fn back_to_mark<'d>(
        &mut self,
        new_pos: u32,
        buffer: &str,
        detector: &'d Detector,
        on_match: &mut impl FnMut(Match<'d>),
    ) -> bool {
        let mark = &self.mark;
        let from = mark.norm.pos();
        if !mark.valid
            || mark.generation != detector.generation
            || new_pos < from
            || new_pos - from > MARK_REPLAY
            || self.norm.pos() <= from
            // Text that normalised to many bytes since (ligatures): the history before the mark
            // may have been overwritten.
            || self.m.emitted - mark.emitted > RING as u64 / 2
        {
            return false;
        }
        let count = (new_pos - from) as usize;
        let start = if count == 0 {
            buffer.len()
        } else {
            match buffer.char_indices().rev().nth(count - 1) {
                Some((i, _)) => i,
                None => return false,
            }
        };
        mark.restore(&mut self.norm, &mut self.m);
        for ch in buffer[start..].chars() {
            self.push(ch, detector, &mut *on_match);
        }
        true
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
        w.norm.reset(0);
        w.m.restart(det, true);
        // The context window must end inside the text; its length is counted only if something
        // matched, as most texts match nothing.
        let mut length = None;
        let mut report = |mut m: Match<'d>| {
            let n = *length.get_or_insert_with(|| text.chars().count());
            m.context.end = m.context.end.min(n);
            on_match(m);
        };
        w.feed(text, det, &mut report, Some(u32::MAX));
        w.end_of_text(det, &mut report);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_copies_copy_every_length() {
        let src: Vec<u8> = (1..=40).collect();
        for n in 0..=40 {
            let mut dst = vec![0u8; n];
            super::copy_short(&mut dst, &src[..n]);
            assert_eq!(dst, src[..n], "length {n}");
        }
    }
}
