//! Normalisation: turns what a pupil typed into the canonical form the phrases are written in.
//!
//! Why: pupils evade word lists on purpose ("k!ll mys3lf", "s.u.i.c.i.d.e", "ѕuicide" with a Cyrillic
//! ѕ, "suuuuicide"). Every phrase and every piece of text goes through this one normaliser, so a rule
//! added here applies to both sides and they can never drift apart.
//!
//! The normaliser is a push-based state machine (one code point in, zero or more normalised bytes
//! out), so the incremental keystroke path and the whole-text scan share it. Each output byte carries
//! the code-point offset of the input character it came from, which is how matches map back to the
//! original text. Output is UTF-8: lower-case words separated by single spaces.
//!
//! Rules, in order:
//! 1. zero-width characters, soft hyphens, apostrophes and combining accents are dropped
//!    ("don't" → "dont", "é" → "e"); Arabic vowel marks too;
//! 2. compatibility decomposition (the K of NFKC: fullwidth, ligatures, mathematical letters) and
//!    lower-casing;
//! 3. confusables: Cyrillic and Greek look-alikes become the Latin letter they imitate;
//! 4. leetspeak inside a word that has at least one letter: 0→o 1→i 3→e 4→a 5→s 7→t, and @→a $→s !→i
//!    when a letter or digit follows (a trailing "!" stays punctuation); an all-digit word (1488) is
//!    left alone;
//! 5. any other character separates words; a run of separators becomes one space;
//! 6. four or more single letters separated by at most two separator characters are joined
//!    ("k i l l", "s.u.i.c.i.d.e"); three are not, so text-speak like "u r a" keeps its spaces;
//! 7. a run of the same letter collapses to one ("suuuicide" → "suicide", "kill" → "kil"): phrases
//!    collapse the same way, so they still meet.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Where normalised output goes: one byte at a time, with the code-point offset it came from.
pub(crate) trait Sink {
    /// One normalised byte. `origin` is the code-point offset of the input character it came from.
    fn byte(&mut self, byte: u8, origin: u32);

    /// One input character at code-point offset `offset`, before it is normalised (for sinks that
    /// keep the text as typed).
    #[inline]
    fn input(&mut self, _offset: u32, _ch: char) {}

    /// ASCII input characters from code-point offset `offset` on (see [`Sink::input`]).
    #[inline]
    fn input_ascii(&mut self, offset: u32, text: &[u8]) {
        for (k, &b) in text.iter().enumerate() {
            self.input(offset + k as u32, char::from(b));
        }
    }

    /// A plain word's normalised letters, each with its origin, then a word break at
    /// `break_origin`.
    #[inline]
    fn word(&mut self, letters: &[u8], origins: &[u32], break_origin: u32) {
        for (&b, &o) in letters.iter().zip(origins) {
            self.byte(b, o);
        }
        self.byte(b' ', break_origin);
    }

    /// A plain word as typed: ASCII letters of either case, none the same letter as the one
    /// before, the first at offset `start`; then a word break at the offset after the last.
    /// Normalised, that is the word lower-cased, letter for letter.
    #[inline]
    fn word_as_typed(&mut self, text: &[u8], start: u32) {
        for (k, &b) in text.iter().enumerate() {
            self.byte(b.to_ascii_lowercase(), start + k as u32);
        }
        self.byte(b' ', start + text.len() as u32);
    }

    /// As [`Sink::word_as_typed`], for a word in which some letter repeats the one before it (the
    /// first letter never does): normalised, the word lower-cased with each run of a letter
    /// collapsed to its first.
    #[inline]
    fn word_repeating(&mut self, text: &[u8], start: u32) {
        collapsed_bytes(self, text, start);
    }
}

/// Feeds a plain word to `sink` byte by byte, lower-cased with each run of a letter collapsed to
/// its first, then its break: what [`Sink::word_repeating`] means, for sinks that take the slow way.
#[inline]
pub(crate) fn collapsed_bytes<S: Sink + ?Sized>(sink: &mut S, text: &[u8], start: u32) {
    let mut last = 0;
    for (k, &b) in text.iter().enumerate() {
        let ch = b.to_ascii_lowercase();
        if ch != last {
            sink.byte(ch, start + k as u32);
        }
        last = ch;
    }
    sink.byte(b' ', start + text.len() as u32);
}

/// Room for a plain word with a repeated letter on its way out.
#[derive(Debug, Clone)]
struct PlainWord {
    letters: [u8; MAX_WORD],
    origins: [u32; MAX_WORD],
}

impl Default for PlainWord {
    fn default() -> Self {
        PlainWord {
            letters: [0; MAX_WORD],
            origins: [0; MAX_WORD],
        }
    }
}

/// What one character means to the normaliser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Breaks words; `hard` for line breaks, which never join letter-spaced runs.
    Separator { hard: bool },
    /// Dropped without a trace (zero-width, apostrophes, accents).
    Ignore,
    /// A possible leetspeak symbol: @ $ !.
    Symbol,
    /// An ASCII digit.
    Digit,
    /// A letter (already lower-cased and de-confused); also kept marks of Indic scripts.
    Letter,
}

/// Classification of ASCII, by table: the common case costs one load.
const ASCII_CLASS: [Class; 128] = ascii_table();

const fn ascii_table() -> [Class; 128] {
    let mut table = [Class::Separator { hard: false }; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphabetic() {
            Class::Letter
        } else if c.is_ascii_digit() {
            Class::Digit
        } else if c == b'@' || c == b'$' || c == b'!' {
            Class::Symbol
        } else if c == b'\'' || c == b'`' {
            Class::Ignore
        } else if c == b'\n' || c == b'\r' || c == 0x0b || c == 0x0c {
            Class::Separator { hard: true }
        } else {
            Class::Separator { hard: false }
        };
        b += 1;
    }
    table
}

/// The run of ASCII letters `text` starts with, up to [`MAX_WORD`] + 1 of them (more than
/// [`MAX_WORD`] means too long for the fast path), and whether a letter in it is the same as the
/// one before (`before` for the first), ignoring case. Eight bytes at a time where the text allows.
#[inline]
fn letter_run(text: &[u8], before: u32) -> (usize, bool) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut len = 0;
    let mut prev = before;
    let mut repeats = false;
    while let Some(chunk) = text.get(len..len + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        // Per byte, with the high bit as the flag: is it an ASCII letter?
        let l = (x | 0x2020_2020_2020_2020) & LOW7;
        let at_least_a = l.wrapping_add(0x1f1f_1f1f_1f1f_1f1f) & HIGH;
        let past_z = l.wrapping_add(0x0505_0505_0505_0505) & HIGH;
        let letters = at_least_a & !past_z & !x & HIGH;
        let run = (!letters & HIGH).trailing_zeros() as usize / 8;
        // Repeats: a zero byte where a lower-cased letter equals the one before. The lowest flag
        // of this test is exact, which is all that is asked (is there one within the run?).
        let lower = x | 0x2020_2020_2020_2020;
        // A non-ASCII `prev` repeats no ASCII letter: 0 stands for it (no letter is 0).
        let prev_byte = if prev < 0x80 { u64::from(prev) } else { 0 };
        let eq = lower ^ ((lower << 8) | prev_byte);
        let zero = eq.wrapping_sub(ONES) & !eq & HIGH;
        repeats |= (zero.trailing_zeros() as usize / 8) < run;
        len += run;
        if run < 8 || len > MAX_WORD {
            return (len, repeats);
        }
        prev = (lower >> 56) as u32;
    }
    while len < text.len() && len <= MAX_WORD && text[len].is_ascii_alphabetic() {
        let ch = u32::from(text[len].to_ascii_lowercase());
        repeats |= ch == prev;
        prev = ch;
        len += 1;
    }
    (len, repeats)
}

/// The letter a leetspeak digit or symbol stands for, if any.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '@' => 'a',
        '$' => 's',
        '!' => 'i',
        _ => return None,
    })
}

/// Characters that render as nothing: removed so "ki\u{200b}ll" is "kill".
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        // Typographic apostrophes: "don’t" and "dont" are the same word.
        | '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{2032}')
}

/// Accents and vowel marks that are decoration for matching purposes. Marks of Indic scripts are
/// not here: in Gurmukhi or Devanagari they are vowels, part of the word.
fn is_strippable_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' | '\u{0483}'..='\u{0489}' | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}'
        | '\u{0610}'..='\u{061A}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}')
}

/// Cyrillic, Greek and other look-alikes of Latin letters (after lower-casing).
fn confusable(c: char) -> char {
    match c {
        'а' => 'a',
        'в' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' | 'є' | 'ε' => 'e',
        'ғ' => 'f',
        'ɡ' | 'ԍ' => 'g',
        'н' | 'һ' => 'h',
        'і' | 'ї' | 'ι' | 'ı' | 'ӏ' | 'ɩ' => 'i',
        'ј' | 'ϳ' => 'j',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'η' | 'п' => 'n',
        'о' | 'ο' | 'σ' | 'ө' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'г' => 'r',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' | 'μ' | 'ц' => 'u',
        'ν' | 'ѵ' => 'v',
        'ѡ' | 'ω' | 'ш' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' | 'ү' => 'y',
        'ʐ' => 'z',
        'ß' => 's',
        'ł' => 'l',
        'ø' => 'o',
        'đ' => 'd',
        'æ' => 'a',
        _ => c,
    }
}

/// One character of a word being collected, with where it came from.
#[derive(Debug, Clone, Copy)]
struct Unit {
    ch: char,
    class: Class,
    origin: u32,
}

/// Longest word held before it is flushed in pieces (a word longer than any phrase cannot match).
const MAX_WORD: usize = 64;

/// Fewest single letters in a row that are joined into one word.
const MIN_SPACED_RUN: usize = 4;

/// The normaliser's state between characters. Small and cheap to clone; owned by a scan or a window.
#[derive(Debug, Clone)]
pub(crate) struct Normaliser {
    /// Code-point offset of the next input character.
    pos: u32,
    /// The word being collected, not yet emitted (leetspeak needs to see the whole word).
    word: Vec<Unit>,
    /// Letters in `word`, and whether it has digits or symbols (most words have none: they take the
    /// fast path, straight out).
    word_letters: u32,
    word_special: bool,
    /// Separator characters seen since the last word ended, and whether one was a line break.
    gap: u32,
    gap_hard: bool,
    /// Pending single-letter words that may turn out to be a letter-spaced word.
    singles: Vec<Unit>,
    /// Last character emitted: `' '` after a separator, `'\0'` at the start of the text.
    last: char,
    /// Room for the plain word on its way out (kept to spare clearing it for every text).
    plain: Box<PlainWord>,
}

impl Default for Normaliser {
    fn default() -> Self {
        Normaliser::new(0)
    }
}

impl Normaliser {
    /// A normaliser whose first character will have offset `pos`.
    pub(crate) fn new(pos: u32) -> Self {
        Normaliser {
            pos,
            word: Vec::with_capacity(MAX_WORD),
            word_letters: 0,
            word_special: false,
            gap: 0,
            gap_hard: false,
            singles: Vec::with_capacity(8),
            last: '\0',
            plain: Box::default(),
        }
    }

    /// Back to an empty text whose first character will have offset `pos`, keeping allocations.
    pub(crate) fn reset(&mut self, pos: u32) {
        self.pos = pos;
        self.clear_word();
        self.gap = 0;
        self.gap_hard = false;
        self.singles.clear();
        self.last = '\0';
    }

    /// Code-point offset of the next character.
    pub(crate) fn pos(&self) -> u32 {
        self.pos
    }

    /// Whether no word is being collected (the point a window marks for backspaces).
    pub(crate) fn between_words(&self) -> bool {
        self.word.is_empty()
    }

    /// Becomes a copy of `other`, keeping its own allocations.
    pub(crate) fn copy_from(&mut self, other: &Normaliser) {
        self.pos = other.pos;
        self.word.clone_from(&other.word);
        self.word_letters = other.word_letters;
        self.word_special = other.word_special;
        self.gap = other.gap;
        self.gap_hard = other.gap_hard;
        self.singles.clone_from(&other.singles);
        self.last = other.last;
    }

    /// Feeds one character of input.
    #[inline]
    pub(crate) fn push(&mut self, ch: char, sink: &mut impl Sink) {
        let origin = self.pos;
        self.pos += 1;
        if ch.is_ascii() {
            let class = ASCII_CLASS[ch as usize];
            self.unit(ch.to_ascii_lowercase(), class, origin, sink);
        } else {
            self.push_unicode(ch, origin, sink);
        }
    }

    /// Feeds a string: plain words take [`Normaliser::plain_word`], everything else goes one
    /// character at a time through [`Normaliser::push`]. The output is the same either way.
    pub(crate) fn push_str(&mut self, text: &str, sink: &mut impl Sink) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_alphabetic() && self.word.is_empty() {
                let len = self.plain_word(&bytes[i..], sink);
                if len != 0 {
                    i += len;
                    continue;
                }
            }
            // `i` is always at a character boundary.
            let ch = if bytes[i].is_ascii() {
                char::from(bytes[i])
            } else {
                text[i..].chars().next().unwrap_or('\0')
            };
            sink.input(self.pos, ch);
            self.push(ch, sink);
            i += ch.len_utf8();
        }
    }

    /// Fast path for the most common input: `text` starts with a word of 2 to [`MAX_WORD`] ASCII
    /// letters followed by an ASCII separator, and no word is being collected. Consumes the word
    /// and that separator and returns their length, or returns 0 and changes nothing if `text`
    /// does not start that way.
    ///
    /// The output is exactly what pushing the characters one by one gives: the word is plain, so
    /// rule 4 does nothing and rule 6 only flushes held single letters; letters go straight out,
    /// lower-cased and collapsed, without being held, and the word break after them with them.
    #[inline]
    fn plain_word(&mut self, text: &[u8], sink: &mut impl Sink) -> usize {
        let start = self.pos;
        // Held single letters are flushed first, and a flush always ends with a word break.
        let before = if self.singles.is_empty() {
            u32::from(self.last)
        } else {
            u32::from(b' ')
        };
        let (len, repeats) = letter_run(text, before);
        let hard = match text.get(len).map(|&b| ASCII_CLASS[usize::from(b & 0x7f)]) {
            Some(Class::Separator { hard })
                if (2..=MAX_WORD).contains(&len) && text[len].is_ascii() =>
            {
                hard
            }
            Some(Class::Ignore) if len <= MAX_WORD && text[len].is_ascii() => {
                return self.plain_word_with_ignored(text, before, sink);
            }
            _ => return 0,
        };
        let word = &text[..len];
        sink.input_ascii(start, &text[..=len]);
        self.flush_singles(sink);
        if repeats && u32::from(word[0].to_ascii_lowercase()) != before {
            sink.word_repeating(word, start);
        } else if repeats {
            // The first letter repeats the one before: collapse, keeping each kept letter's offset.
            let out = &mut *self.plain;
            let mut last = before;
            let mut n = 0;
            for (k, &b) in word.iter().enumerate() {
                let ch = b.to_ascii_lowercase();
                out.letters[n] = ch;
                out.origins[n] = start + k as u32;
                n += usize::from(u32::from(ch) != last);
                last = u32::from(ch);
            }
            sink.word(&out.letters[..n], &out.origins[..n], start + len as u32);
        } else {
            sink.word_as_typed(word, start);
        }
        // The word ends at the separator, which is where its word break comes from.
        self.last = ' ';
        self.pos = start + len as u32 + 1;
        // As after any separator: one seen, since the word.
        self.gap = 1;
        self.gap_hard = hard;
        len + 1
    }

    /// [`Normaliser::plain_word`] for a word with apostrophes in or after it ("don't", "dogs'"),
    /// which are dropped: the same result as pushing its characters one by one, or 0 if `text`
    /// does not start with 2 to [`MAX_WORD`] letters and apostrophes followed by a separator.
    fn plain_word_with_ignored(&mut self, text: &[u8], before: u32, sink: &mut impl Sink) -> usize {
        let start = self.pos;
        let mut letters = 0;
        let mut end = None;
        for (k, &b) in text.iter().enumerate() {
            match ASCII_CLASS[usize::from(b & 0x7f)] {
                _ if !b.is_ascii() => return 0,
                Class::Letter => letters += 1,
                Class::Ignore => {}
                Class::Separator { hard } => {
                    end = Some((k, hard));
                    break;
                }
                Class::Digit | Class::Symbol => return 0,
            }
        }
        let Some((len, hard)) = end else {
            return 0;
        };
        if !(2..=MAX_WORD).contains(&letters) {
            return 0;
        }
        sink.input_ascii(start, &text[..=len]);
        self.flush_singles(sink);
        let out = &mut *self.plain;
        let mut last = before;
        let mut n = 0;
        for (k, &b) in text[..len].iter().enumerate() {
            if b.is_ascii_alphabetic() {
                let ch = b.to_ascii_lowercase();
                out.letters[n] = ch;
                out.origins[n] = start + k as u32;
                n += usize::from(u32::from(ch) != last);
                last = u32::from(ch);
            }
        }
        sink.word(&out.letters[..n], &out.origins[..n], start + len as u32);
        self.last = ' ';
        self.pos = start + len as u32 + 1;
        self.gap = 1;
        self.gap_hard = hard;
        len + 1
    }

    /// The slow path: decomposition, case folding and confusables for non-ASCII characters.
    #[cold]
    fn push_unicode(&mut self, ch: char, origin: u32, sink: &mut impl Sink) {
        if is_invisible(ch) || is_strippable_mark(ch) {
            return;
        }
        decompose_compatible(ch, |d| {
            if is_invisible(d) || is_strippable_mark(d) {
                return;
            }
            for lower in d.to_lowercase() {
                let c = confusable(lower);
                let class = if c.is_ascii() {
                    ASCII_CLASS[c as usize]
                } else if c.is_alphanumeric() || is_combining_mark(c) {
                    Class::Letter
                } else if matches!(c, '\u{2028}' | '\u{2029}' | '\u{0085}') {
                    Class::Separator { hard: true }
                } else {
                    Class::Separator { hard: false }
                };
                self.unit(c, class, origin, sink);
            }
        });
    }

    #[inline]
    fn unit(&mut self, ch: char, class: Class, origin: u32, sink: &mut impl Sink) {
        match class {
            Class::Ignore => {}
            Class::Separator { hard } => {
                if !self.word.is_empty() {
                    // The separator is the character just pushed.
                    self.end_word(self.pos - 1, sink);
                }
                self.gap += 1;
                self.gap_hard |= hard;
            }
            _ => {
                if self.word.len() == MAX_WORD {
                    // Too long to be a phrase word: emit what we have, keep going without a break.
                    self.flush_singles(sink);
                    self.map_leet();
                    self.emit_word(0, MAX_WORD, sink);
                    self.clear_word();
                }
                if class == Class::Letter {
                    self.word_letters += 1;
                } else {
                    self.word_special = true;
                }
                self.word.push(Unit { ch, class, origin });
            }
        }
    }

    /// A word ended at a separator: apply leetspeak, then emit it or hold it as a single letter.
    #[inline]
    fn end_word(&mut self, end: u32, sink: &mut impl Sink) {
        if !self.word_special && self.word.len() > 1 {
            // The common case: a plain word of letters.
            self.flush_singles(sink);
            self.emit_word(0, self.word.len(), sink);
            self.space(end, sink);
            self.clear_word();
            return;
        }
        if self.word_special {
            self.map_leet();
        }
        let gap_ok = self.gap <= 2 && !self.gap_hard;
        let letters = self
            .word
            .iter()
            .filter(|u| u.class == Class::Letter)
            .count();
        if self.word.len() == 1 && letters == 1 {
            if !(self.singles.is_empty() || gap_ok) {
                self.flush_singles(sink);
            }
            self.singles.push(self.word[0]);
        } else {
            self.flush_singles(sink);
            self.emit_pieces(end, sink);
        }
        self.clear_word();
    }

    fn clear_word(&mut self) {
        self.word.clear();
        self.word_letters = 0;
        self.word_special = false;
        self.gap = 0;
        self.gap_hard = false;
    }

    /// Leetspeak: rewrites digits and symbols in a word that has letters; symbols that stand for no
    /// letter become separators (marked by class `Separator`).
    fn map_leet(&mut self) {
        let has_letter = self.word_letters > 0;
        let n = self.word.len();
        for i in 0..n {
            let u = self.word[i];
            match u.class {
                Class::Digit if has_letter => {
                    if let Some(l) = leet(u.ch) {
                        self.word[i].ch = l;
                        self.word[i].class = Class::Letter;
                    }
                }
                Class::Symbol => {
                    let next_ok = i + 1 < n && self.word[i + 1].class != Class::Symbol;
                    let prev_ok = i > 0 && self.word[i - 1].class == Class::Letter;
                    let maps = has_letter && next_ok && (u.ch != '!' || prev_ok);
                    match leet(u.ch).filter(|_| maps) {
                        Some(l) => {
                            self.word[i].ch = l;
                            self.word[i].class = Class::Letter;
                        }
                        None => self.word[i].class = Class::Separator { hard: false },
                    }
                }
                _ => {}
            }
        }
    }

    /// Emits the word, split where symbols turned into separators.
    fn emit_pieces(&mut self, end: u32, sink: &mut impl Sink) {
        let mut start = 0;
        for i in 0..self.word.len() {
            if matches!(self.word[i].class, Class::Separator { .. }) {
                if i > start {
                    self.emit_word(start, i, sink);
                }
                self.space(self.word[i].origin, sink);
                start = i + 1;
            }
        }
        if start < self.word.len() {
            self.emit_word(start, self.word.len(), sink);
        }
        self.space(end, sink);
    }

    /// Emits held single letters: joined when there are enough of them, else as separate words.
    #[inline]
    fn flush_singles(&mut self, sink: &mut impl Sink) {
        if !self.singles.is_empty() {
            self.flush_singles_slow(sink);
        }
    }

    fn flush_singles_slow(&mut self, sink: &mut impl Sink) {
        let join = self.singles.len() >= MIN_SPACED_RUN;
        for i in 0..self.singles.len() {
            let u = self.singles[i];
            self.letter(u.ch, u.origin, sink);
            if !join {
                self.space(u.origin + 1, sink);
            }
        }
        if join {
            let end = self.singles[self.singles.len() - 1].origin + 1;
            self.space(end, sink);
        }
        self.singles.clear();
    }

    #[inline]
    fn emit_word(&mut self, from: usize, to: usize, sink: &mut impl Sink) {
        for i in from..to {
            let u = self.word[i];
            self.letter(u.ch, u.origin, sink);
        }
    }

    /// Emits one letter or digit, collapsing a repeat of the same letter.
    #[inline]
    fn letter(&mut self, ch: char, origin: u32, sink: &mut impl Sink) {
        if ch == self.last && !ch.is_ascii_digit() {
            return;
        }
        self.last = ch;
        if ch.is_ascii() {
            sink.byte(ch as u8, origin);
        } else {
            let mut buf = [0u8; 4];
            for &b in ch.encode_utf8(&mut buf).as_bytes() {
                sink.byte(b, origin);
            }
        }
    }

    /// Emits one word break, unless there is one already or nothing before it.
    #[inline]
    fn space(&mut self, origin: u32, sink: &mut impl Sink) {
        if self.last != ' ' && self.last != '\0' {
            self.last = ' ';
            sink.byte(b' ', origin);
        }
    }

    /// End of text: emits whatever is held, then a word break (so a phrase at the very end is
    /// complete). Returns the offset just past the last character.
    pub(crate) fn finish(&mut self, sink: &mut impl Sink) -> u32 {
        if !self.word.is_empty() {
            self.end_word(self.pos, sink);
        }
        self.flush_singles(sink);
        self.pos
    }

    /// Marks the start as the middle of a word, so nothing matches at the very beginning.
    pub(crate) fn start_mid_word(&mut self) {
        self.last = '\u{1}';
    }
}

/// A sink that collects normalised text and the offset map.
#[derive(Debug, Default)]
pub(crate) struct Collect {
    pub(crate) bytes: Vec<u8>,
    pub(crate) origins: Vec<u32>,
}

impl Sink for Collect {
    fn byte(&mut self, byte: u8, origin: u32) {
        self.bytes.push(byte);
        self.origins.push(origin);
    }
}

/// Normalises a whole string; used for phrases at load time and by [`crate::normalise`].
pub(crate) fn normalise_into(text: &str, out: &mut Collect) {
    out.bytes.clear();
    out.origins.clear();
    let mut n = Normaliser::default();
    n.push_str(text, out);
    n.finish(out);
    // A trailing break carries no meaning.
    while out.bytes.last() == Some(&b' ') {
        out.bytes.pop();
        out.origins.pop();
    }
}

/// Text as the matcher sees it, with the way back to the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    /// Lower-case words separated by single spaces.
    pub text: String,
    /// For each byte of `text`, the code-point offset of the input character it came from.
    pub origins: Vec<usize>,
}

/// Normalises `text` the way phrases and scanned text are normalised (for tests and tools; the
/// scanners normalise on the fly without building this).
pub fn normalise(text: &str) -> Normalised {
    let mut out = Collect::default();
    normalise_into(text, &mut out);
    Normalised {
        // The normaliser emits whole UTF-8 characters only.
        text: String::from_utf8(out.bytes).unwrap_or_default(),
        origins: out.origins.into_iter().map(|o| o as usize).collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{normalise_into, Collect, Normaliser};

    /// The reference: every character through [`Normaliser::push`].
    fn one_by_one(text: &str) -> (Vec<u8>, Vec<u32>) {
        let mut out = Collect::default();
        let mut n = Normaliser::default();
        for ch in text.chars() {
            n.push(ch, &mut out);
        }
        n.finish(&mut out);
        while out.bytes.last() == Some(&b' ') {
            out.bytes.pop();
            out.origins.pop();
        }
        (out.bytes, out.origins)
    }

    fn fast(text: &str) -> (Vec<u8>, Vec<u32>) {
        let mut out = Collect::default();
        normalise_into(text, &mut out);
        (out.bytes, out.origins)
    }

    /// Pieces that meet every rule: plain words beside leetspeak, look-alikes, invisible
    /// characters, accents, spaced and dotted letters, stretched letters, digits and line breaks.
    const PIECES: &[&str] = &[
        "kill",
        "Kill",
        "KILL",
        "myself",
        "self",
        "harm",
        "the",
        "a",
        "I",
        "u",
        "r",
        "k!ll",
        "mys3lf",
        "$elf",
        "h@rm",
        "su1c1de",
        "1488",
        "88",
        "k",
        "i",
        "l",
        "s.u.i.c.i.d.e",
        "k i l l",
        "ѕuicide",
        "ｋｉｌｌ",
        "ki\u{200b}ll",
        "café",
        "don't",
        "don’t",
        "suuuicide",
        "killll",
        "ll",
        "!",
        "!!",
        "@",
        "$",
        "4ever",
        "a1",
        "x",
        "é",
        "\u{301}",
        "ß",
        "ﬁne",
        "σ",
        "كلب",
        "ਮਰ",
        "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd",
        "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcde",
    ];
    const GAPS: &[&str] = &[
        " ", "  ", ".", ", ", "\n", "-", "", "\t", "...", " \r\n", "'", "’",
    ];

    /// splitmix64: a fixed-seed generator, so a failure names a text that fails every time.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) % n as u64) as usize
        }

        /// A text of up to 24 pieces from `pieces`, each followed by a gap from `gaps`.
        pub(crate) fn text(&mut self, pieces: &[&str], gaps: &[&str]) -> String {
            let n = self.below(25);
            let mut out = String::new();
            for _ in 0..n {
                out.push_str(pieces[self.below(pieces.len())]);
                out.push_str(gaps[self.below(gaps.len())]);
            }
            out
        }
    }

    #[test]
    fn plain_word_fast_path_normalises_like_one_char_at_a_time() {
        let mut rng = Rng(4);
        for _ in 0..5000 {
            let text = rng.text(PIECES, GAPS);
            assert_eq!(fast(&text), one_by_one(&text), "{text:?}");
        }
    }

    #[test]
    fn letter_runs_eight_at_a_time_match_one_at_a_time() {
        fn reference(text: &[u8], before: u32) -> (usize, bool) {
            let (mut len, mut prev, mut repeats) = (0, before, false);
            while len < text.len() && len <= super::MAX_WORD && text[len].is_ascii_alphabetic() {
                let ch = u32::from(text[len].to_ascii_lowercase());
                repeats |= ch == prev;
                prev = ch;
                len += 1;
            }
            (len, repeats)
        }
        let alphabet = b"aAbBkKlLzZ@[`{ 1.\xc3\xa9";
        let befores = [0, 1, u32::from(b' '), u32::from(b'k'), 0x16b, 0x6b1];
        let mut rng = Rng(9);
        for _ in 0..20_000 {
            let len = rng.below(90);
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            let before = befores[rng.below(befores.len())];
            let (n, repeats) = super::letter_run(&text, before);
            let (want_n, want_repeats) = reference(&text, before);
            // Past MAX_WORD only "too long" matters; within it, both must agree exactly.
            if want_n <= super::MAX_WORD {
                assert_eq!(
                    (n, repeats),
                    (want_n, want_repeats),
                    "{text:?} after {before}"
                );
            } else {
                assert!(n > super::MAX_WORD, "{text:?}");
            }
        }
        // Long runs of letters, where the eight-byte steps do the work.
        for word in [
            "abcdefghij",
            "abcdefgh",
            "abcdefgg",
            "ABCDEFGhh",
            "aaaaaaaaaaaaaaaaa",
        ] {
            let text = format!("{word} ");
            assert_eq!(
                super::letter_run(text.as_bytes(), 0),
                reference(text.as_bytes(), 0),
                "{word}"
            );
        }
    }

    #[test]
    fn plain_words_next_to_evasions_keep_their_offsets() {
        for text in [
            "i will k!ll mys3lf now",
            "go kill k i l l myself",
            "the ѕuicide note",
            "sooo kiiill\nme",
            "a b c d word",
            "x y word",
        ] {
            assert_eq!(fast(text), one_by_one(text), "{text:?}");
        }
    }
}
