//! The decision: which focus reports make keys unreadable, in which window.

use super::*;

fn object(sender: &str, path: &str) -> ObjectRef {
    (sender.to_string(), path.to_string())
}

fn window(pid: Option<u32>) -> WindowInfo {
    WindowInfo {
        id: 7,
        title: "Sign in".into(),
        application: Some("zenity".into()),
        pid,
    }
}

#[test]
fn only_the_password_text_role_is_a_password_field() {
    assert!(is_password_role(40));
    // text, entry, terminal, document text: typed text there is read.
    for role in [61, 79, 59, 82, 0] {
        assert!(!is_password_role(role), "role {role}");
    }
}

#[test]
fn focus_in_a_password_field_then_in_a_plain_entry() {
    let mut t = FocusTracker::default();
    assert!(!t.password());
    t.gained(object(":1.4", "/a/1"), Some(100), Some(ROLE_PASSWORD_TEXT));
    assert!(t.password());
    t.gained(object(":1.4", "/a/2"), Some(100), Some(79));
    assert!(!t.password());
}

#[test]
fn losing_the_focus_counts_only_for_the_object_that_has_it() {
    let mut t = FocusTracker::default();
    t.gained(object(":1.4", "/a/1"), Some(100), Some(ROLE_PASSWORD_TEXT));
    // The old entry's focus-out arrives after the password field's focus-in.
    t.lost(&object(":1.4", "/a/0"));
    assert!(t.password());
    t.lost(&object(":1.4", "/a/1"));
    assert!(!t.password());
}

#[test]
fn an_unanswered_role_is_not_a_password_field() {
    let mut t = FocusTracker::default();
    t.gained(object(":1.4", "/a/1"), Some(100), None);
    assert!(!t.password());
}

#[test]
fn an_application_leaving_the_bus_takes_its_focus_with_it() {
    let mut t = FocusTracker::default();
    t.gained(object(":1.4", "/a/1"), Some(100), Some(ROLE_PASSWORD_TEXT));
    t.gone(":1.9", Some(900));
    assert!(t.password());
    t.gone(":1.4", Some(100));
    assert!(!t.password());
    // Its process id may be reused by a program that reports nothing.
    assert!(!t.password_in(&window(Some(100))));
}

#[test]
fn the_field_applies_to_its_own_process_window_only() {
    let mut t = FocusTracker::default();
    t.gained(object(":1.4", "/a/1"), Some(100), Some(ROLE_PASSWORD_TEXT));
    assert!(t.password_in(&window(Some(100))));
    // A terminal, which reports nothing on the accessibility bus, is read.
    assert!(!t.password_in(&window(Some(200))));
    // Unknown on either side: the field's state stands.
    assert!(t.password_in(&window(None)));
    t.gained(object(":1.4", "/a/1"), None, Some(ROLE_PASSWORD_TEXT));
    assert!(t.password_in(&window(Some(200))));
}

#[test]
fn a_window_back_in_front_starts_from_the_field_its_process_focused_last() {
    let mut t = FocusTracker::default();
    t.gained(object(":1.4", "/a/1"), Some(100), Some(ROLE_PASSWORD_TEXT));
    // Switched to a terminal: the toolkit takes the focus from the field.
    t.lost(&object(":1.4", "/a/1"));
    assert!(!t.password());
    assert!(!t.password_in(&window(Some(200))));
    // Back to the dialog, before the toolkit says the field has the focus again.
    assert!(t.password_in(&window(Some(100))));
    // Another program's entry has the focus now; the dialog's process still last focused its field.
    t.gained(object(":1.5", "/b/7"), Some(300), Some(61));
    assert!(!t.password_in(&window(Some(300))));
    assert!(t.password_in(&window(Some(100))));
    // The dialog's process focuses a plain entry.
    t.gained(object(":1.4", "/a/2"), Some(100), Some(61));
    assert!(!t.password_in(&window(Some(100))));
}

/// A source that yields scripted events, then ends.
struct Scripted(std::collections::VecDeque<SourceEvent>, Option<WindowInfo>);

impl Source for Scripted {
    fn current_window(&mut self) -> Result<Option<WindowInfo>, SourceError> {
        Ok(self.1.take())
    }
    fn next_event(&mut self) -> Result<Option<SourceEvent>, SourceError> {
        Ok(self.0.pop_front())
    }
}

/// Drains what the wrapped source sends itself and what it returns, in pipeline order.
fn drain(mut source: Box<dyn Source>, rx: &mut mpsc::Receiver<SourceEvent>) -> Vec<SourceEvent> {
    let mut seen = Vec::new();
    if let Some(w) = source.current_window().unwrap() {
        seen.push(SourceEvent::Focus(w));
    }
    while let Ok(e) = rx.try_recv() {
        seen.push(e);
    }
    while let Some(e) = source.next_event().unwrap() {
        while let Ok(sent) = rx.try_recv() {
            seen.push(sent);
        }
        seen.push(e);
    }
    while let Ok(e) = rx.try_recv() {
        seen.push(e);
    }
    seen
}

#[test]
fn every_window_change_is_followed_by_its_password_state() {
    let (tx, mut rx) = mpsc::channel(16);
    let shared = Arc::new(Mutex::new(Shared {
        tracker: FocusTracker::default(),
        told: false,
        tx,
    }));
    // The accessibility bus spoke first: zenity's password field (pid 100) has the focus.
    shared.blocking_lock().tracker.gained(
        object(":1.4", "/a/1"),
        Some(100),
        Some(ROLE_PASSWORD_TEXT),
    );
    let inner = Scripted(
        [
            SourceEvent::Focus(window(Some(100))),
            SourceEvent::Key(crate::source::Key::Char('a')),
            SourceEvent::Focus(window(Some(200))),
            SourceEvent::Key(crate::source::Key::Char('b')),
        ]
        .into(),
        Some(window(Some(300))),
    );
    let source: Box<dyn Source> = Box::new(PasswordAware {
        inner: Box::new(inner),
        shared,
    });
    let seen = drain(source, &mut rx);
    assert_eq!(
        seen,
        [
            SourceEvent::Focus(window(Some(300))),
            SourceEvent::Focus(window(Some(100))),
            SourceEvent::PasswordField(true),
            SourceEvent::Key(crate::source::Key::Char('a')),
            // The pipeline forgets the password state at a window change: nothing more to say.
            SourceEvent::Focus(window(Some(200))),
            SourceEvent::Key(crate::source::Key::Char('b')),
        ]
    );
}
