//! Building a [`Detector`]: parse every file, apply suppressions, normalise every phrase, and compile
//! the phrases into two anchored tries (Latin script and the rest); exclusions and context words stay
//! beside their entries for verification.
//!
//! This is the costly step (milliseconds for thousands of phrases); it runs once per load and the
//! result is immutable, so scans never lock anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use ward_protocol::Category;

use crate::error::{LoadError, LoadErrors};
use crate::normalise::{normalise_into, Collect};
use crate::wordlist::{parse_file, Parsed, RawEntry};
use crate::{Origin, WordlistFile};

/// Longest normalised pattern, in bytes. Bounds the per-window history the matcher keeps.
pub(crate) const MAX_PATTERN: usize = 96;

/// How far (in normalised bytes, about eight words) `unless:` and `near:` words may be from a match.
pub(crate) const NEAR_WINDOW: u64 = 48;

/// A compiled entry.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) category: Category,
    pub(crate) language: String,
    pub(crate) severity: u8,
    pub(crate) phrase: String,
    pub(crate) no_capture: bool,
    pub(crate) stem: bool,
    /// For `strict`: the phrase's letters (see [`strict_fold`]), which the matched text must have
    /// exactly: no stretched, squeezed or spaced-out letters.
    pub(crate) strict: Option<String>,
    /// Normalised `except:` phrases: a match inside one of them is not reported.
    pub(crate) except: Vec<Box<[u8]>>,
    /// Normalised `unless:` words: one within [`NEAR_WINDOW`] cancels the match.
    pub(crate) unless: Vec<Box<[u8]>>,
    /// Normalised `near:` words: one must be within [`NEAR_WINDOW`].
    pub(crate) near: Vec<Box<[u8]>>,
    /// Normalised bytes to wait after the match before it can be confirmed (for exclusions and
    /// context words that follow it).
    pub(crate) lookahead: u64,
}

/// The immutable, shareable detector: every phrase of every list compiled into one automaton.
///
/// Build once per load with [`Detector::build`]; share with `Arc`; scan with [`Detector::scan`]
/// (whole text) or a [`crate::Window`] (typing).
pub struct Detector {
    /// The phrase tries, with 16-bit state ids while the phrases fit in them.
    pub(crate) automaton: Automaton,
    /// Per pattern: its normalised text and the range of `targets` (entry indices) it stands for.
    /// One pattern may stand for several entries (the same phrase in two categories or languages).
    pub(crate) patterns: Vec<(String, u32, u32)>,
    pub(crate) targets: Vec<u32>,
    pub(crate) entries: Vec<Entry>,
    /// Normalised safe phrases (`! ...`): no match inside one is reported.
    pub(crate) safe: Vec<Box<[u8]>>,
    /// Distinguishes detectors, so a window notices when the detector it was fed with is replaced.
    pub(crate) generation: u64,
    version: String,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("version", &self.version)
            .field("entries", &self.entries.len())
            .field("patterns", &self.patterns.len())
            .field("states", &self.automaton_states())
            .finish()
    }
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

impl Detector {
    /// Builds a detector from wordlist files: shipped lists and the school's local additions and
    /// suppressions (`- phrase` lines, applied after everything is read).
    ///
    /// # Errors
    /// Every bad line of every file, each naming file and line; nothing is built if any file is
    /// broken, so a caller keeps its last good detector.
    pub fn build(files: &[WordlistFile<'_>]) -> Result<Detector, LoadErrors> {
        let (detector, errors) = Detector::build_skipping_errors(files);
        if errors.is_empty() {
            Ok(detector?)
        } else {
            Err(LoadErrors(errors))
        }
    }

    /// Builds a detector from every line that is valid, and returns the problems with the rest.
    /// For a first start with no last good set: monitoring with most of the lists beats none.
    ///
    /// # Errors
    /// Only if the automaton itself cannot be built (the errors list then says why).
    pub fn build_skipping_errors(
        files: &[WordlistFile<'_>],
    ) -> (Result<Detector, LoadErrors>, Vec<LoadError>) {
        let mut errors = Vec::new();
        let mut parsed = Parsed::default();
        // Shipped first, local last, so local suppressions see everything.
        let mut ordered: Vec<&WordlistFile<'_>> = files.iter().collect();
        ordered.sort_by_key(|f| (f.origin == Origin::Local, f.name));
        for file in &ordered {
            parse_file(file, &mut parsed, &mut errors);
        }
        let version = version_of(&ordered);
        match compile(parsed, version, &mut errors) {
            Ok(d) => (Ok(d), errors),
            Err(e) => {
                errors.push(e.clone());
                (Err(LoadErrors(vec![e])), errors)
            }
        }
    }

    /// Content hash of the files this detector was built from; alerts carry it so a reviewer knows
    /// which lists produced a hit.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Heap bytes held by the phrase automaton (the bulk of a detector's memory).
    pub fn automaton_bytes(&self) -> usize {
        match &self.automaton {
            Automaton::Compact(t) => t.latin.memory() + t.other.memory(),
            Automaton::Wide(t) => t.latin.memory() + t.other.memory(),
        }
    }

    /// Number of automaton states (both tries, dead states included): what a list's size costs,
    /// and how close it is to the limit of the compact state table.
    pub fn automaton_states(&self) -> usize {
        match &self.automaton {
            Automaton::Compact(t) => t.latin.states() + t.other.states(),
            Automaton::Wide(t) => t.latin.states() + t.other.states(),
        }
    }

    /// Number of wordlist entries loaded (after suppressions).
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Scans a whole text, calling `on_match` for every match in order of confirmation. Offsets are
    /// code points into `text`. `scratch` is reused between calls so a scan allocates nothing.
    pub fn scan(&self, text: &str, scratch: &mut Scratch, on_match: impl FnMut(Match<'_>)) {
        scratch.scan(self, text, on_match);
    }
}

/// Most automaton states a detector may have (both tries): about 150,000 entries of ordinary
/// phrases, or a few hundred MB of table. Past it a list is a mistake, not a school's additions.
pub(crate) const MAX_STATES: usize = 1 << 22;

/// A state id as a trie's table stores it. 16 bits cover the shipped lists several times over
/// and keep the table small and cached; 32 bits are used only when the phrases need more.
pub(crate) trait StateId: Copy + Send + Sync + 'static {
    /// Number of states this width can number.
    const LIMIT: usize;
    /// `id` must be below [`StateId::LIMIT`].
    fn from_index(id: usize) -> Self;
    /// The id, widened.
    fn get(self) -> u32;
}

impl StateId for u16 {
    const LIMIT: usize = u16::MAX as usize;
    #[inline(always)]
    fn from_index(id: usize) -> Self {
        id as u16
    }
    #[inline(always)]
    fn get(self) -> u32 {
        u32::from(self)
    }
}

impl StateId for u32 {
    const LIMIT: usize = MAX_STATES;
    #[inline(always)]
    fn from_index(id: usize) -> Self {
        id as u32
    }
    #[inline(always)]
    fn get(self) -> u32 {
        self
    }
}

/// The two tries of a detector, with one state-id width.
pub(crate) struct Tries<S> {
    /// Trie of the patterns starting with an ASCII byte.
    pub(crate) latin: Trie<S>,
    /// Trie of the patterns starting with a non-ASCII byte.
    pub(crate) other: Trie<S>,
}

impl<S: StateId> Tries<S> {
    /// The trie a walk of this script goes through.
    #[inline(always)]
    pub(crate) fn part(&self, other: bool) -> &Trie<S> {
        if other {
            &self.other
        } else {
            &self.latin
        }
    }

    fn build(texts: &[Vec<u8>], ascii: &[usize], other: &[usize]) -> Result<Self, LoadError> {
        let latin = Trie::build(texts, ascii)?;
        let other = Trie::build(texts, other)?;
        if latin.states() + other.states() > MAX_STATES {
            return Err(too_many_states(latin.states() + other.states()));
        }
        Ok(Tries { latin, other })
    }
}

/// The tries at the state-id width the phrases need; scans are compiled for each width, so the
/// common, compact case pays nothing for the wide one.
pub(crate) enum Automaton {
    /// 16-bit state ids.
    Compact(Tries<u16>),
    /// 32-bit state ids, for lists beyond 65,535 states.
    Wide(Tries<u32>),
}

fn too_many_states(states: usize) -> LoadError {
    LoadError::Automaton(format!(
        "the phrases need {states} automaton states; at most {MAX_STATES} fit"
    ))
}

/// An anchored phrase trie over a small byte alphabet: walked from a word start, one table look-up
/// per normalised byte.
///
/// Why not a general Aho-Corasick automaton: walks always start at a word start, so failure links
/// are never taken and a trie is the whole automaton. Its own table can then be small: bytes no
/// phrase uses share one class (so a row is about 40 entries for Latin phrases) and state ids are
/// 16 bits (see [`StateId`]), breadth-first, so the shallow states every word touches sit together
/// in cache.
pub(crate) struct Trie<S> {
    /// Byte → column; column 0 is every byte no phrase of this trie contains. ASCII upper case
    /// shares its lower-case letter's column.
    classes: [u8; 256],
    /// Columns per row.
    width: usize,
    /// `next[state * width + class]`; state [`DEAD`] has a row of zeros.
    next: Vec<S>,
    /// States `1..=last_end` are those where a phrase ends.
    last_end: u32,
    /// The state a walk begins in (the first after the phrase ends).
    root: u32,
    /// The state after the first two bytes of a word, by their columns (`c0 * width + c1`), so a
    /// word's walk skips two dependent look-ups; empty if some phrase is a single byte long.
    pairs: Vec<S>,
    /// Per state: index into [`Detector::patterns`] of the phrase ending here, or `u32::MAX`.
    pattern: Vec<u32>,
    /// Whether every state entered by an ASCII letter also loops on it (see [`Trie::loops`]).
    loops: bool,
}

/// The state a walk falls into when no phrase continues with the byte read.
pub(crate) const DEAD: u32 = 0;

impl<S: StateId> Trie<S> {
    fn build(texts: &[Vec<u8>], subset: &[usize]) -> Result<Trie<S>, LoadError> {
        // Columns: one per byte used, in byte order, after column 0.
        let mut used = [false; 256];
        for &i in subset {
            for &b in &texts[i] {
                used[b as usize] = true;
            }
        }
        let mut classes = [0u8; 256];
        let mut width = 1usize;
        for b in 0..256 {
            if used[b] {
                classes[b] = width as u8;
                width += 1;
            }
        }
        // Upper-case ASCII reads as lower-case, so plain words can be walked as typed (normalised
        // text has no upper case, so nothing else changes).
        for b in b'A'..=b'Z' {
            classes[usize::from(b)] = classes[usize::from(b.to_ascii_lowercase())];
        }
        // A plain pointer trie first (children by column), then renumbered breadth-first.
        let mut children: Vec<Vec<(u8, usize)>> = vec![Vec::new()];
        let mut ends: Vec<u32> = vec![u32::MAX];
        // The column each node is entered by.
        let mut via: Vec<u8> = vec![0];
        for &i in subset {
            let mut node = 0;
            for &b in &texts[i] {
                let c = classes[b as usize];
                node = match children[node].iter().find(|(k, _)| *k == c) {
                    Some(&(_, n)) => n,
                    None => {
                        children.push(Vec::new());
                        ends.push(u32::MAX);
                        via.push(c);
                        let n = children.len() - 1;
                        children[node].push((c, n));
                        n
                    }
                };
            }
            ends[node] = i as u32;
        }
        let states = children.len() + 1;
        if states > S::LIMIT {
            return Err(too_many_states(states));
        }
        // Breadth-first order, so the shallow states every word touches sit together; then the
        // states where a phrase ends are numbered first (after dead), so one comparison tells a
        // walk it must stop or look.
        let mut order = Vec::with_capacity(children.len());
        order.push(0usize);
        let mut k = 0;
        while k < order.len() {
            let mut kids = children[order[k]].clone();
            kids.sort_unstable();
            order.extend(kids.into_iter().map(|(_, n)| n));
            k += 1;
        }
        let (mut numbered, rest): (Vec<usize>, Vec<usize>) =
            order.into_iter().partition(|&n| ends[n] != u32::MAX);
        let last_end = numbered.len() as u32;
        let root = last_end + 1;
        numbered.extend(rest);
        let mut id = vec![0u32; children.len()];
        for (i, &node) in numbered.iter().enumerate() {
            id[node] = (i + 1) as u32;
        }
        let mut next = vec![S::from_index(0); states * width];
        let mut pattern = vec![u32::MAX; states];
        for (node, kids) in children.iter().enumerate() {
            let s = id[node] as usize;
            for &(c, n) in kids {
                next[s * width + usize::from(c)] = S::from_index(id[n] as usize);
            }
            pattern[s] = ends[node];
        }
        debug_assert_eq!(id[0], root);
        // Self-loops: a state entered by a letter stays put on the same letter again, so a word
        // with a doubled letter ("letter") can be walked as typed and end where its collapsed form
        // ("leter") does. Normalised phrases never hold the same letter twice in a row, so no
        // loop displaces a child; if one ever did, there are no loops and such words go the long
        // way.
        let mut letter_column = [false; 256];
        for b in b'a'..=b'z' {
            letter_column[usize::from(classes[usize::from(b)])] = true;
        }
        letter_column[0] = false;
        let loops = (1..children.len()).all(|node| {
            let c = via[node];
            !letter_column[usize::from(c)] || children[node].iter().all(|&(k, _)| k != c)
        });
        if loops {
            for node in 1..children.len() {
                let c = usize::from(via[node]);
                if letter_column[c] {
                    let s = id[node] as usize;
                    next[s * width + c] = S::from_index(s);
                }
            }
        }
        let mut trie = Trie {
            classes,
            width,
            next,
            last_end,
            root,
            pattern,
            pairs: Vec::new(),
            loops,
        };
        trie.pairs = trie.pair_table();
        Ok(trie)
    }

    fn pair_table(&self) -> Vec<S> {
        let first = |c: usize| self.next[self.root as usize * self.width + c].get();
        if (0..self.width).any(|c| first(c) != DEAD && self.is_special(first(c))) {
            return Vec::new();
        }
        let mut pairs = vec![S::from_index(0); self.width * self.width];
        for c0 in 0..self.width {
            let s = first(c0) as usize;
            for c1 in 0..self.width {
                pairs[c0 * self.width + c1] = self.next[s * self.width + c1];
            }
        }
        pairs
    }

    /// The state after a word's first two bytes, read from the root; `None` if this trie has no
    /// table of pairs.
    #[inline(always)]
    pub(crate) fn pair(&self, b0: u8, b1: u8) -> Option<u32> {
        let c0 = usize::from(self.classes[usize::from(b0)]);
        let c1 = usize::from(self.classes[usize::from(b1)]);
        self.pairs.get(c0 * self.width + c1).map(|s| s.get())
    }

    /// The state after reading `byte` in state `sid`.
    #[inline(always)]
    pub(crate) fn step(&self, sid: u32, byte: u8) -> u32 {
        let class = usize::from(self.classes[usize::from(byte)]);
        self.next[sid as usize * self.width + class].get()
    }

    /// Whether `sid` is dead or a phrase ends there: the only states a walk must stop at.
    #[inline(always)]
    pub(crate) fn is_special(&self, sid: u32) -> bool {
        sid <= self.last_end
    }

    /// Whether a phrase ends in state `sid`.
    #[inline(always)]
    pub(crate) fn is_phrase_end(&self, sid: u32) -> bool {
        sid.wrapping_sub(1) < self.last_end
    }

    /// Whether walking a word as typed, with doubled letters, ends in the same state as walking its
    /// collapsed form (every state entered by an ASCII letter loops on it).
    #[inline(always)]
    pub(crate) fn loops(&self) -> bool {
        self.loops
    }

    /// The state a walk begins in.
    #[inline(always)]
    pub(crate) fn root(&self) -> u32 {
        self.root
    }

    /// The phrase (index into [`Detector::patterns`]) ending in state `sid`.
    pub(crate) fn pattern(&self, sid: u32) -> u32 {
        self.pattern[sid as usize]
    }

    /// Number of states, the dead one included.
    pub(crate) fn states(&self) -> usize {
        self.pattern.len()
    }

    fn memory(&self) -> usize {
        (self.next.len() + self.pairs.len()) * std::mem::size_of::<S>()
            + self.pattern.len() * 4
            + 256
    }
}

use crate::{Match, Scratch};

/// One character as `strict` entries compare it: lower-cased, leetspeak read as letters,
/// punctuation and spaces dropped.
pub(crate) fn strict_fold(c: char) -> Option<char> {
    let c = c.to_lowercase().next().unwrap_or(c);
    let c = match c {
        '0' => 'o',
        '1' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        c => c,
    };
    c.is_alphanumeric().then_some(c)
}

/// FNV-1a over names and texts: a cheap, stable fingerprint of the loaded lists.
fn version_of(files: &[&WordlistFile<'_>]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        for b in f.name.bytes().chain([0]).chain(f.text.bytes()).chain([0]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Collects patterns, deduplicated, with what each stands for.
#[derive(Default)]
struct PatternTable {
    index: HashMap<Vec<u8>, usize>,
    texts: Vec<Vec<u8>>,
    targets: Vec<Vec<u32>>,
}

impl PatternTable {
    fn add(&mut self, pattern: &[u8], target: u32) {
        let i = *self.index.entry(pattern.to_vec()).or_insert_with(|| {
            self.texts.push(pattern.to_vec());
            self.targets.push(Vec::new());
            self.texts.len() - 1
        });
        if !self.targets[i].contains(&target) {
            self.targets[i].push(target);
        }
    }
}

fn norm(text: &str, buf: &mut Collect) -> Vec<u8> {
    normalise_into(text, buf);
    buf.bytes.clone()
}

/// Removes spaces and collapses letters that meet, the way "k i l l m y s e l f" and "killmyself"
/// normalise.
fn compact(normalised: &[u8]) -> Vec<u8> {
    let joined: String = String::from_utf8_lossy(normalised).replace(' ', "");
    let mut out = String::with_capacity(joined.len());
    let mut last = '\0';
    for c in joined.chars() {
        if c != last || c.is_ascii_digit() {
            out.push(c);
        }
        last = c;
    }
    out.into_bytes()
}

fn compile(
    parsed: Parsed,
    version: String,
    errors: &mut Vec<LoadError>,
) -> Result<Detector, LoadError> {
    let mut buf = Collect::default();
    let Parsed {
        entries: raw,
        suppressions,
        safe,
    } = parsed;
    let suppressed: Vec<(Vec<u8>, Option<Category>)> = suppressions
        .iter()
        .map(|s| (norm(&s.phrase, &mut buf), s.category))
        .collect();

    let mut table = PatternTable::default();
    let mut entries = Vec::new();

    let mut safe_len = 0u64;
    let mut safe_phrases = Vec::new();
    for phrase in &safe {
        let n = norm(phrase, &mut buf);
        if n.is_empty() || n.len() > MAX_PATTERN {
            continue;
        }
        safe_len = safe_len.max(n.len() as u64);
        safe_phrases.push(n.into_boxed_slice());
    }

    for e in raw {
        let n = norm(&e.phrase, &mut buf);
        if n.is_empty() {
            errors.push(LoadError::Empty {
                entry: e.id,
                phrase: e.phrase,
            });
            continue;
        }
        if n.len() > MAX_PATTERN {
            errors.push(LoadError::TooLong {
                entry: e.id,
                phrase: e.phrase,
            });
            continue;
        }
        if suppressed
            .iter()
            .any(|(p, c)| *p == n && c.is_none_or(|c| c == e.category))
        {
            continue;
        }
        let index = entries.len() as u32;
        let entry = compile_entry(e, index, &n, &mut table, &mut buf, errors);
        let mut entry = entry;
        entry.lookahead = entry.lookahead.max(safe_len);
        entries.push(entry);
    }

    // Patterns starting with an ASCII byte (Latin-script languages, once accents are stripped) and
    // the rest (Arabic, Urdu, Gurmukhi) get an automaton each: the Latin one keeps a small
    // alphabet, so its table is half the size, and a word's first byte says which one to walk.
    let (ascii, other): (Vec<usize>, Vec<usize>) =
        (0..table.texts.len()).partition(|&i| table.texts[i][0].is_ascii());
    // 16-bit state ids unless the phrases need more (then the compact build stops early).
    let automaton = match Tries::<u16>::build(&table.texts, &ascii, &other) {
        Ok(tries) => Automaton::Compact(tries),
        Err(_) => Automaton::Wide(Tries::<u32>::build(&table.texts, &ascii, &other)?),
    };

    let mut targets = Vec::new();
    let mut patterns = Vec::with_capacity(table.texts.len());
    for (text, t) in table.texts.iter().zip(&table.targets) {
        let from = targets.len() as u32;
        targets.extend_from_slice(t);
        patterns.push((
            String::from_utf8_lossy(text).into_owned(),
            from,
            targets.len() as u32,
        ));
    }
    Ok(Detector {
        automaton,
        patterns,
        targets,
        entries,
        safe: safe_phrases,
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        version,
    })
}

/// Adds one entry's patterns (the phrase, and its compact or spaced form) and returns the compiled
/// entry with its normalised exclusions and context words.
///
/// Exclusions and context words are not in the automaton: they matter only around a candidate,
/// which is rare, so they are looked for in the candidate's neighbourhood when it is verified. This
/// keeps common short words ("re", "man") from waking the matcher on every line.
fn compile_entry(
    e: RawEntry,
    index: u32,
    normalised: &[u8],
    table: &mut PatternTable,
    buf: &mut Collect,
    errors: &mut Vec<LoadError>,
) -> Entry {
    table.add(normalised, index);
    if normalised.contains(&b' ') {
        // "killmyself" and "k i l l m y s e l f" (joined by the normaliser) both arrive compact.
        table.add(&compact(normalised), index);
    } else if normalised.len() <= 3 && normalised.iter().all(u8::is_ascii_lowercase) {
        // Three letters spaced out ("k y s") are not joined by the normaliser; match them spaced.
        let spaced: Vec<u8> = normalised
            .iter()
            .flat_map(|&b| [b, b' '])
            .take(normalised.len() * 2 - 1)
            .collect();
        table.add(&spaced, index);
    }
    let mut normalise_all = |phrases: &[String]| -> Vec<Box<[u8]>> {
        let mut out = Vec::new();
        for p in phrases {
            let n = norm(p, buf);
            if n.is_empty() || n.len() > MAX_PATTERN {
                errors.push(LoadError::TooLong {
                    entry: e.id.clone(),
                    phrase: p.clone(),
                });
                continue;
            }
            out.push(n.into_boxed_slice());
        }
        out
    };
    let except = normalise_all(&e.except);
    let unless = normalise_all(&e.unless);
    let near = normalise_all(&e.near);
    let longest = |v: &[Box<[u8]>]| v.iter().map(|p| p.len() as u64).max().unwrap_or(0);
    let mut lookahead = longest(&except);
    if !unless.is_empty() || !near.is_empty() {
        // A context word counts if it starts within the window after the match: wait for it to end.
        lookahead = lookahead.max(NEAR_WINDOW + longest(&unless).max(longest(&near)));
    }
    Entry {
        strict: e
            .strict
            .then(|| e.phrase.chars().filter_map(strict_fold).collect()),
        id: e.id,
        category: e.category,
        language: e.language,
        severity: e.severity,
        phrase: e.phrase,
        no_capture: e.no_capture,
        stem: e.stem,
        except,
        unless,
        near,
        lookahead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3,000 unrelated 24-letter patterns: about 70,000 states.
    fn patterns() -> Vec<Vec<u8>> {
        let mut x: u64 = 7;
        (0..3000)
            .map(|_| {
                (0..24)
                    .map(|_| {
                        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        b'a' + ((x >> 33) % 26) as u8
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_state_width_too_narrow_is_refused_with_a_reason() {
        let texts = patterns();
        let all: Vec<usize> = (0..texts.len()).collect();
        let err = Tries::<u16>::build(&texts, &all, &[])
            .err()
            .expect("too many");
        assert!(
            matches!(&err, LoadError::Automaton(r) if r.contains("automaton states")),
            "{err}"
        );
        let wide = Tries::<u32>::build(&texts, &all, &[]).expect("fits");
        assert!(wide.latin.states() > usize::from(u16::MAX));
    }
}
