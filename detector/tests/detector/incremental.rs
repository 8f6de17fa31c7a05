//! The typing path: a window fed one key at a time finds what a whole-text scan finds, at the same
//! offsets, and backspace, end of text and reloads behave.

use ward_detector::{Match, Window};

use crate::support::detector;

const LIST: &str = "\
@category suicide
5 kill myself
5 want to die
3 kill ; except: kill the process
";

fn typed(
    window: &mut Window,
    d: &ward_detector::Detector,
    text: &str,
) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for ch in text.chars() {
        window.push(ch, d, |m: Match<'_>| {
            out.push((m.phrase.to_string(), m.start, m.end))
        });
    }
    out
}

#[test]
fn keys_find_what_the_whole_text_scan_finds() {
    let d = detector(LIST);
    for text in [
        "i want to die ",
        "honestly i want to k!ll mys3lf.",
        "k i l l m y s e l f\n",
        "kill the process now, then kill them ",
    ] {
        let mut whole = Vec::new();
        d.scan(text, &mut Default::default(), |m| {
            whole.push((m.phrase.to_string(), m.start, m.end))
        });
        let mut w = Window::new();
        let mut keys = typed(&mut w, &d, text);
        w.end_of_text(&d, |m| keys.push((m.phrase.to_string(), m.start, m.end)));
        assert_eq!(keys, whole, "typing {text:?}");
        assert!(!whole.is_empty(), "{text:?} has a match");
    }
}

#[test]
fn a_match_completes_when_its_word_ends() {
    let d = detector(LIST);
    let mut w = Window::new();
    assert!(
        typed(&mut w, &d, "i want to die").is_empty(),
        "word not ended yet"
    );
    assert_eq!(typed(&mut w, &d, " "), [("want to die".to_string(), 2, 13)]);
}

#[test]
fn end_of_text_confirms_pending_matches() {
    let d = detector(LIST);
    let mut w = Window::new();
    assert!(typed(&mut w, &d, "want to die").is_empty());
    let mut got = Vec::new();
    w.end_of_text(&d, |m| got.push(m.phrase.to_string()));
    assert_eq!(got, ["want to die"]);
}

#[test]
fn backspace_fixes_a_typo_and_does_not_repeat_reports() {
    let d = detector(LIST);
    let mut w = Window::new();
    let mut buffer = String::new();
    let mut reports = Vec::new();
    let mut key = |w: &mut Window, buffer: &mut String, k: char| {
        if k == '\u{8}' {
            buffer.pop();
            w.backspace(buffer, &d, |m| {
                reports.push((m.phrase.to_string(), m.start, m.end))
            });
        } else {
            buffer.push(k);
            w.push(k, &d, |m| {
                reports.push((m.phrase.to_string(), m.start, m.end))
            });
        }
    };
    for k in "i want to dix\u{8}e ".chars() {
        key(&mut w, &mut buffer, k);
    }
    // Deleting back into a reported phrase and retyping it reports nothing new.
    for k in "\u{8}\u{8}e ".chars() {
        key(&mut w, &mut buffer, k);
    }
    assert_eq!(reports, [("want to die".to_string(), 2, 13)]);
    assert_eq!(w.position(), buffer.chars().count());
}

#[test]
fn backspace_with_a_long_buffer_replays_only_its_tail() {
    let d = detector(LIST);
    let mut w = Window::new();
    let mut buffer = "lorem ipsum ".repeat(100);
    typed(&mut w, &d, &buffer);
    buffer.push_str("want to diex");
    typed(&mut w, &d, "want to diex");
    buffer.pop();
    w.backspace(&buffer, &d, |_| panic!("nothing complete yet"));
    let got = typed(&mut w, &d, " ");
    assert_eq!(got, [("want to die".to_string(), 1200, 1211)]);
}

#[test]
fn reset_starts_over_at_zero() {
    let d = detector(LIST);
    let mut w = Window::new();
    typed(&mut w, &d, "want to d");
    w.reset();
    assert_eq!(w.position(), 0);
    assert!(typed(&mut w, &d, "ie ").is_empty());
}

#[test]
fn a_reloaded_detector_takes_over_a_live_window() {
    let old = detector("@category suicide\n5 want to die\n");
    let new = detector("@category suicide\n5 kill myself\n");
    let mut w = Window::new();
    typed(&mut w, &old, "hello ");
    assert_eq!(
        typed(&mut w, &new, "kill myself "),
        [("kill myself".to_string(), 6, 17)]
    );
}
