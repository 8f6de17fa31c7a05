//! Text assembly: keys and window changes in, hits out.
//!
//! The focused window's typed text is kept in a bounded buffer (the last [`BUFFER_CHARS`] characters)
//! beside the detector's resumable state, which sees every character once. Backspace removes the
//! last character from both; Enter, Tab, Escape, arrow keys, clicks and shortcuts end the text (the
//! cursor is somewhere unknown, or the message was sent), so pending matches are confirmed and the
//! buffer starts again. A focus change does the same: a phrase never spans two windows. Delete at
//! the end of typed text removes nothing. A pause ([`Assembler::idle`]) confirms a phrase typed
//! last with nothing after it.
//!
//! Window titles are scanned whole when they change (browser tabs carry search terms and page
//! names); a title already reported for the same window is not reported again for a while.
//!
//! Privacy: the buffer lives only here, in memory. What leaves is a [`Hit`]: the wordlist phrase and
//! the bounded context the detector marks around it. Windows of excluded applications (password
//! managers, the configured list, titles that say "password") are not buffered or scanned at all,
//! and neither are keys typed while the accessibility API reports a password field focused.
//! Accessibility events can trail the keys they concern by a few milliseconds, so entering a password
//! field also discards the unconfirmed text typed since the last word end rather than confirming it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_detector::{Detector, Match, Scratch, Window};
use ward_protocol::{AlertSource, Category};

use crate::source::{Key, SourceEvent, WindowInfo};

/// Typed characters kept for context (the detector's own state is separate and unbounded in time).
pub const BUFFER_CHARS: usize = 256;
/// How long a reported title stays reported for its window.
const TITLE_MEMORY: Duration = Duration::from_secs(600);
/// Titles remembered for de-duplication.
const TITLE_MEMORY_ENTRIES: usize = 256;

/// One detected phrase, ready to become an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Typed text or window title.
    pub source: AlertSource,
    /// Category.
    pub category: Category,
    /// Severity 1 to 5.
    pub severity: u8,
    /// The wordlist phrase.
    pub phrase: String,
    /// The entry's language.
    pub language: String,
    /// The bounded context around the match, as typed.
    pub context: String,
    /// Never take a screenshot for it.
    pub no_capture: bool,
    /// The window it happened in.
    pub window: WindowInfo,
    /// The wordlist version that matched.
    pub wordlist_version: String,
}

/// A detector match, owned, so it can outlive the detector call that found it.
#[derive(Debug)]
struct Found {
    category: Category,
    severity: u8,
    phrase: String,
    language: String,
    context: std::ops::Range<usize>,
    no_capture: bool,
}

impl From<&Match<'_>> for Found {
    fn from(m: &Match<'_>) -> Found {
        Found {
            category: m.category,
            severity: m.severity,
            phrase: m.phrase.to_string(),
            language: m.language.to_string(),
            context: m.context.clone(),
            no_capture: m.no_capture,
        }
    }
}

/// Which windows are never read.
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    /// Lower-case program names (process or window class), e.g. `keepassxc`.
    pub applications: Vec<String>,
    /// Lower-case words that, in a title, mark a window where secrets are typed (e.g. `password`).
    pub title_words: Vec<String>,
}

impl Exclusions {
    /// Whether typed text in `window` must not be read.
    pub fn typing_excluded(&self, window: &WindowInfo) -> bool {
        self.application_excluded(window) || {
            let title = window.title.to_lowercase();
            self.title_words.iter().any(|w| title.contains(w.as_str()))
        }
    }

    /// Whether nothing about `window` (title included) may be read.
    pub fn application_excluded(&self, window: &WindowInfo) -> bool {
        window.application.as_deref().is_some_and(|app| {
            let app = app.to_lowercase();
            let app = app.strip_suffix(".exe").unwrap_or(&app);
            self.applications.iter().any(|a| a == app)
        })
    }
}

/// The focused window's text and detection state.
#[derive(Debug)]
pub struct Assembler {
    detector: Arc<Detector>,
    exclusions: Exclusions,
    min_severity: u8,
    window: WindowInfo,
    excluded: bool,
    /// A password field has the focus (reported by the source's accessibility API).
    password_field: bool,
    buffer: VecDeque<char>,
    state: Window,
    /// Whether characters were pushed since the text last ended.
    dirty: bool,
    last_key: Option<Instant>,
    scratch: Scratch,
    titles: HashMap<(u64, String), Instant>,
}

impl Assembler {
    /// An assembler with nothing typed yet.
    pub fn new(detector: Arc<Detector>, exclusions: Exclusions, min_severity: u8) -> Assembler {
        Assembler {
            detector,
            exclusions,
            min_severity,
            window: WindowInfo::default(),
            excluded: false,
            password_field: false,
            buffer: VecDeque::with_capacity(BUFFER_CHARS),
            state: Window::new(),
            dirty: false,
            last_key: None,
            scratch: Scratch::default(),
            titles: HashMap::new(),
        }
    }

    /// Swaps in reloaded wordlists; the text typed so far is forgotten (its state belongs to the old
    /// lists).
    pub fn set_detector(&mut self, detector: Arc<Detector>) {
        self.detector = detector;
        self.restart();
    }

    /// Swaps in reloaded settings.
    pub fn set_exclusions(&mut self, exclusions: Exclusions, min_severity: u8) {
        self.exclusions = exclusions;
        self.min_severity = min_severity;
        self.excluded = self.exclusions.typing_excluded(&self.window);
    }

    /// The wordlist version in use.
    pub fn wordlist_version(&self) -> &str {
        self.detector.version()
    }

    /// Handles one event, calling `on_hit` for each phrase it completes.
    pub fn handle(&mut self, event: SourceEvent, now: Instant, on_hit: &mut impl FnMut(Hit)) {
        match event {
            SourceEvent::Key(key) => self.key(key, now, on_hit),
            SourceEvent::Focus(window) => {
                self.end_text(on_hit);
                // The new window's focused control is unknown until its source says otherwise.
                self.password_field = false;
                self.excluded = self.exclusions.typing_excluded(&window);
                self.window = window;
                self.scan_title(now, on_hit);
            }
            SourceEvent::Title(window) => {
                // Same window, new title: a browser tab or a document. The typed text carries on.
                self.excluded = self.exclusions.typing_excluded(&window);
                if self.excluded {
                    self.restart();
                }
                self.window = window;
                self.scan_title(now, on_hit);
            }
            SourceEvent::PasswordField(true) => {
                // Not `end_text`: the last keys may already belong to the password.
                self.restart();
                self.password_field = true;
            }
            SourceEvent::PasswordField(false) => {
                self.restart();
                self.password_field = false;
            }
        }
    }

    /// Called when no key came for a while: confirms a phrase typed last with nothing after it.
    pub fn idle(&mut self, now: Instant, after: Duration, on_hit: &mut impl FnMut(Hit)) {
        if self.dirty
            && self
                .last_key
                .is_some_and(|t| now.duration_since(t) >= after)
        {
            self.end_text(on_hit);
        }
    }

    /// When a pending phrase may need [`Assembler::idle`].
    pub fn pending_since(&self) -> Option<Instant> {
        self.dirty.then_some(self.last_key).flatten()
    }

    fn key(&mut self, key: Key, now: Instant, on_hit: &mut impl FnMut(Hit)) {
        if self.excluded || self.password_field {
            return;
        }
        match key {
            Key::Char(c) => {
                self.last_key = Some(now);
                self.dirty = true;
                if self.buffer.len() == BUFFER_CHARS {
                    self.buffer.pop_front();
                }
                self.buffer.push_back(c);
                let detector = Arc::clone(&self.detector);
                let mut found = Vec::new();
                self.state
                    .push(c, &detector, |m| found.push(Found::from(&m)));
                self.emit_typed(found, on_hit);
            }
            Key::Backspace => {
                self.last_key = Some(now);
                if self.buffer.pop_back().is_none() {
                    // Deleting text typed before the buffer started: its state is unknown now.
                    self.restart();
                    return;
                }
                let text: String = self.buffer.iter().collect();
                let detector = Arc::clone(&self.detector);
                let mut found = Vec::new();
                self.state
                    .backspace(&text, &detector, |m| found.push(Found::from(&m)));
                self.emit_typed(found, on_hit);
            }
            Key::Delete | Key::Modifier | Key::Other => {}
            Key::Enter | Key::Tab | Key::Escape | Key::Navigate | Key::Shortcut => {
                self.end_text(on_hit);
            }
        }
    }

    /// Confirms pending matches and starts a new text.
    fn end_text(&mut self, on_hit: &mut impl FnMut(Hit)) {
        if self.dirty && !self.excluded {
            let detector = Arc::clone(&self.detector);
            let mut found = Vec::new();
            self.state
                .end_of_text(&detector, |m| found.push(Found::from(&m)));
            self.emit_typed(found, on_hit);
        }
        self.restart();
    }

    fn restart(&mut self) {
        self.buffer.clear();
        self.state.reset();
        self.dirty = false;
    }

    /// Turns matches in typed text into hits; context comes from the buffer, which holds the most
    /// recent characters.
    fn emit_typed(&self, found: Vec<Found>, on_hit: &mut impl FnMut(Hit)) {
        let end = self.state.position();
        let base = end.saturating_sub(self.buffer.len());
        for m in found {
            if m.severity < self.min_severity {
                continue;
            }
            let from = m.context.start.max(base) - base;
            let to = m.context.end.clamp(base, end) - base;
            let context: String = self
                .buffer
                .iter()
                .skip(from)
                .take(to.saturating_sub(from))
                .collect();
            on_hit(self.hit(m, AlertSource::Keyboard, context));
        }
    }

    fn hit(&self, m: Found, source: AlertSource, context: String) -> Hit {
        Hit {
            source,
            category: m.category,
            severity: m.severity,
            no_capture: m.no_capture || m.category.no_capture(),
            phrase: m.phrase,
            language: m.language,
            context,
            window: self.window.clone(),
            wordlist_version: self.detector.version().to_string(),
        }
    }

    fn scan_title(&mut self, now: Instant, on_hit: &mut impl FnMut(Hit)) {
        let title = self.window.title.clone();
        if title.is_empty() || self.exclusions.application_excluded(&self.window) {
            return;
        }
        let key = (self.window.id, title.clone());
        if self
            .titles
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < TITLE_MEMORY)
        {
            return;
        }
        let detector = Arc::clone(&self.detector);
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut found = Vec::new();
        detector.scan(&title, &mut scratch, |m| found.push(Found::from(&m)));
        self.scratch = scratch;
        let found: Vec<Hit> = found
            .into_iter()
            .filter(|m| m.severity >= self.min_severity)
            .map(|m| {
                let context: String = title
                    .chars()
                    .skip(m.context.start)
                    .take(m.context.len())
                    .collect();
                self.hit(m, AlertSource::WindowTitle, context)
            })
            .collect();
        if found.is_empty() {
            return;
        }
        if self.titles.len() >= TITLE_MEMORY_ENTRIES {
            self.titles
                .retain(|_, t| now.duration_since(*t) < TITLE_MEMORY);
            if self.titles.len() >= TITLE_MEMORY_ENTRIES {
                self.titles.clear();
            }
        }
        self.titles.insert(key, now);
        found.into_iter().for_each(on_hit);
    }
}

#[cfg(test)]
mod tests;
