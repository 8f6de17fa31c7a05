//! The X11 source against a real X server: keys typed by xdotool arrive translated, focus and
//! title changes arrive as events.

use std::sync::mpsc;
use std::time::Duration;

use ward_agent::source::x11::{Display, X11Source};
use ward_agent::source::{Key, Source, SourceEvent};

use crate::desktop::Desktop;

/// Runs the source on a thread, forwarding events.
fn listen(desktop: &Desktop) -> mpsc::Receiver<SourceEvent> {
    let display = Display::connect(Some(&desktop.display)).expect("connects");
    let mut source = X11Source::new(display).expect("XInput2 present");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(Some(event)) = source.next_event() {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects typed characters until `want` has been seen (or times out).
fn typed_until(rx: &mpsc::Receiver<SourceEvent>, want: &str) -> (String, Vec<SourceEvent>) {
    let mut text = String::new();
    let mut others = Vec::new();
    while !text.ends_with(want) {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(SourceEvent::Key(Key::Char(c))) => text.push(c),
            Ok(other) => others.push(other),
            Err(_) => panic!("timed out; got {text:?} and {others:?}"),
        }
    }
    (text, others)
}

#[test]
fn typed_keys_arrive_translated_with_shift() {
    let mut desktop = Desktop::start();
    desktop.open_terminal("ward source test");
    let rx = listen(&desktop);
    desktop.type_text("Hello, World! 42");
    let (text, _) = typed_until(&rx, "42");
    assert!(text.ends_with("Hello, World! 42"), "{text:?}");
    desktop.keys(&["BackSpace"]);
    let next = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(next, SourceEvent::Key(Key::Backspace));
}

#[test]
fn focus_and_title_changes_are_events() {
    let mut desktop = Desktop::start();
    let first = desktop.open_terminal("first window");
    let rx = listen(&desktop);
    let second = desktop.open_terminal("second window");
    let focus = loop {
        match rx
            .recv_timeout(Duration::from_secs(20))
            .expect("focus event")
        {
            SourceEvent::Focus(info) if info.id == second => break info,
            _ => continue,
        }
    };
    assert_eq!(focus.title, "second window");
    assert_eq!(focus.application.as_deref(), Some("xterm"));
    desktop.set_title(second, "how to tie a noose - Search");
    let title = loop {
        match rx
            .recv_timeout(Duration::from_secs(20))
            .expect("title event")
        {
            SourceEvent::Title(info) => break info,
            _ => continue,
        }
    };
    assert_eq!(title.id, second);
    assert_eq!(title.title, "how to tie a noose - Search");
    assert_ne!(first, second);
}

#[test]
fn without_a_window_manager_the_input_focus_is_followed() {
    let mut desktop = Desktop::start_with(false);
    let window = desktop.open_terminal_unmanaged("no wm window");
    let rx = listen(&desktop);
    desktop.type_text("abc");
    let (_, others) = typed_until(&rx, "abc");
    let focused = others
        .iter()
        .any(|e| matches!(e, SourceEvent::Focus(i) if i.id == window && i.title == "no wm window"));
    assert!(focused, "{others:?}");
}
