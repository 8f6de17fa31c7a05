//! The assembler with a real detector: typing, editing, focus and titles.

use super::*;
use ward_detector::{Origin, WordlistFile};

const LISTS: &[(&str, &str)] = &[
    ("en/suicide.txt", "@category suicide\n5 kill myself\n"),
    ("en/self-harm.txt", "@category self-harm\n4 cut myself\n"),
    ("en/csam.txt", "@category csam\n5 cp links\n"),
];

fn detector() -> Arc<Detector> {
    let files: Vec<_> = LISTS
        .iter()
        .map(|(name, text)| WordlistFile {
            name,
            text,
            origin: Origin::Shipped,
        })
        .collect();
    Arc::new(Detector::build(&files).unwrap())
}

fn window(id: u64, title: &str, app: &str) -> WindowInfo {
    WindowInfo {
        id,
        title: title.into(),
        application: Some(app.into()),
        pid: None,
    }
}

struct Session {
    asm: Assembler,
    hits: Vec<Hit>,
    now: Instant,
}

impl Session {
    fn new() -> Session {
        let exclusions = Exclusions {
            applications: vec!["keepassxc".into()],
            title_words: vec!["password".into()],
        };
        let mut s = Session {
            asm: Assembler::new(detector(), exclusions, 1),
            hits: Vec::new(),
            now: Instant::now(),
        };
        s.event(SourceEvent::Focus(window(1, "Chat", "firefox")));
        s
    }

    fn event(&mut self, e: SourceEvent) {
        self.now += Duration::from_millis(100);
        let hits = &mut self.hits;
        self.asm.handle(e, self.now, &mut |h| hits.push(h));
    }

    fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.event(SourceEvent::Key(Key::Char(c)));
        }
    }

    fn key(&mut self, key: Key) {
        self.event(SourceEvent::Key(key));
    }

    fn phrases(&self) -> Vec<(&str, AlertSource)> {
        self.hits
            .iter()
            .map(|h| (h.phrase.as_str(), h.source))
            .collect()
    }
}

#[test]
fn a_typed_phrase_is_a_hit_with_bounded_context() {
    let mut s = Session::new();
    s.type_text("honestly i want to kill myself tonight");
    s.key(Key::Enter);
    assert_eq!(s.phrases(), [("kill myself", AlertSource::Keyboard)]);
    let hit = &s.hits[0];
    assert!(hit.context.contains("kill myself"), "{:?}", hit.context);
    assert!(hit.context.chars().count() <= 2 * ward_detector::CONTEXT_CHARS + 11);
    assert_eq!(hit.window.title, "Chat");
    assert!(!hit.no_capture);
}

#[test]
fn backspaced_text_does_not_hit() {
    let mut s = Session::new();
    s.type_text("i will kill mys");
    for _ in 0..3 {
        s.key(Key::Backspace);
    }
    s.type_text("the boss in this game");
    s.key(Key::Enter);
    assert!(s.hits.is_empty(), "{:?}", s.phrases());
}

#[test]
fn a_phrase_completed_after_a_backspace_still_hits() {
    let mut s = Session::new();
    s.type_text("kill mysekf");
    s.key(Key::Backspace);
    s.key(Key::Backspace);
    s.type_text("lf ");
    assert_eq!(s.phrases(), [("kill myself", AlertSource::Keyboard)]);
}

#[test]
fn focus_changes_split_the_text() {
    let mut s = Session::new();
    s.type_text("kill ");
    s.event(SourceEvent::Focus(window(2, "Notes", "gedit")));
    s.type_text("myself ");
    assert!(s.hits.is_empty(), "{:?}", s.phrases());
}

#[test]
fn arrows_and_shortcuts_end_the_text() {
    let mut s = Session::new();
    s.type_text("kill ");
    s.key(Key::Navigate);
    s.type_text("myself ");
    s.type_text("kill ");
    s.key(Key::Shortcut);
    s.type_text("myself ");
    assert!(s.hits.is_empty(), "{:?}", s.phrases());
}

#[test]
fn a_pause_confirms_a_phrase_typed_last() {
    let mut s = Session::new();
    s.type_text("i want to kill myself");
    let pending = s.asm.pending_since().expect("pending");
    let hits = &mut s.hits;
    s.asm.idle(
        pending + Duration::from_secs(2),
        Duration::from_secs(1),
        &mut |h| hits.push(h),
    );
    assert_eq!(s.phrases(), [("kill myself", AlertSource::Keyboard)]);
}

#[test]
fn titles_hit_once_per_window_and_title() {
    let mut s = Session::new();
    let tab = window(1, "how to kill myself - Google Search", "firefox");
    s.event(SourceEvent::Title(tab.clone()));
    s.event(SourceEvent::Title(window(1, "BBC News", "firefox")));
    s.event(SourceEvent::Title(tab));
    assert_eq!(s.phrases(), [("kill myself", AlertSource::WindowTitle)]);
    assert_eq!(s.hits[0].context, "how to kill myself - Google Search");
}

#[test]
fn excluded_applications_and_password_windows_are_not_read() {
    let mut s = Session::new();
    s.event(SourceEvent::Focus(window(3, "kill myself", "KeePassXC")));
    s.type_text("kill myself ");
    s.event(SourceEvent::Focus(window(4, "Enter password", "firefox")));
    s.type_text("kill myself ");
    s.key(Key::Enter);
    assert!(s.hits.is_empty(), "{:?}", s.phrases());
}

#[test]
fn keys_in_a_password_field_are_not_read() {
    let mut s = Session::new();
    s.type_text("hello ");
    // The accessibility event arrives after the first keys of the password.
    s.type_text("kill");
    s.event(SourceEvent::PasswordField(true));
    s.type_text(" myself ");
    s.key(Key::Enter);
    s.event(SourceEvent::PasswordField(false));
    assert!(s.hits.is_empty(), "{:?}", s.phrases());
    s.type_text("kill myself ");
    assert_eq!(s.phrases(), [("kill myself", AlertSource::Keyboard)]);
}

#[test]
fn a_new_window_is_not_a_password_field_until_said() {
    let mut s = Session::new();
    s.event(SourceEvent::PasswordField(true));
    s.event(SourceEvent::Focus(window(2, "Notes", "gedit")));
    s.type_text("kill myself ");
    assert_eq!(s.phrases(), [("kill myself", AlertSource::Keyboard)]);
}

#[test]
fn no_capture_categories_are_marked() {
    let mut s = Session::new();
    s.type_text("send cp links ");
    assert_eq!(s.hits.len(), 1);
    assert!(s.hits[0].no_capture);
}
