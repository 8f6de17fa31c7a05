//! Loading: the file format, errors that name file and line, local additions and suppressions.

use ward_detector::{Detector, LoadError, Origin, Window, WordlistFile};
use ward_protocol::Category;

use crate::support::found;

fn file<'a>(name: &'a str, text: &'a str, origin: Origin) -> WordlistFile<'a> {
    WordlistFile { name, text, origin }
}

#[test]
fn category_and_language_come_from_path_or_headers() {
    let d = Detector::build(&[
        file("pl/suicide.txt", "5 zabiję się\n", Origin::Shipped),
        file(
            "misc.txt",
            "@category drugs\n@language es\n3 cocaína\n",
            Origin::Shipped,
        ),
    ])
    .unwrap();
    let mut got = Vec::new();
    d.scan("zabije sie, cocaina", &mut Default::default(), |m| {
        got.push((
            m.category,
            m.language.to_string(),
            m.entry.to_string(),
            m.severity,
        ));
    });
    assert_eq!(
        got,
        [
            (Category::Suicide, "pl".into(), "pl/suicide.txt:1".into(), 5),
            (Category::Drugs, "es".into(), "misc.txt:3".into(), 3),
        ]
    );
}

#[test]
fn errors_name_file_and_line_and_nothing_is_built() {
    let bad = "@category suicide\n5 fine\n9 too severe\n3 ok ; colour: red\n@category nonsense\nnophrase\n";
    let err = Detector::build(&[file("en/suicide.txt", bad, Origin::Shipped)]).unwrap_err();
    let lines: Vec<usize> = err
        .0
        .iter()
        .map(|e| match e {
            LoadError::Line { file, line, .. } => {
                assert_eq!(file, "en/suicide.txt");
                *line
            }
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(lines, [3, 4, 5, 6]);
    let text = err.to_string();
    assert!(
        text.contains("en/suicide.txt:3: severity must be 1 to 5"),
        "{text}"
    );
    assert!(text.contains("unknown option `colour`"), "{text}");
}

#[test]
fn skipping_errors_keeps_the_good_lines() {
    let (d, errors) = Detector::build_skipping_errors(&[file(
        "en/suicide.txt",
        "5 kill myself\n7 broken\n",
        Origin::Shipped,
    )]);
    assert_eq!(errors.len(), 1);
    assert_eq!(d.unwrap().entry_count(), 1);
}

#[test]
fn a_file_without_a_category_is_refused() {
    let err = Detector::build(&[file("notes.txt", "5 something\n", Origin::Shipped)]).unwrap_err();
    assert!(
        err.to_string().contains("notes.txt:1: no category"),
        "{err}"
    );
}

#[test]
fn local_additions_and_suppressions_apply_over_shipped_lists() {
    let shipped = "@category discrimination\n4 essex girl\n3 slag\n";
    let local = "# our school is in Essex\n@category discrimination\n- essex girl\n2 local slur\n! slag heap\n";
    let d = Detector::build(&[
        file("local/school.txt", local, Origin::Local),
        file("en/discrimination.txt", shipped, Origin::Shipped),
    ])
    .unwrap();
    assert_eq!(found(&d, "essex girl"), []);
    assert_eq!(
        found(&d, "a local slur"),
        [("local slur".into(), "local slur".into())]
    );
    assert_eq!(found(&d, "the slag heap"), []);
    assert_eq!(found(&d, "you slag"), [("slag".into(), "slag".into())]);
}

#[test]
fn no_capture_follows_the_category_and_the_flag() {
    let d = Detector::build(&[
        file("en/sexting.txt", "3 send nudes\n", Origin::Shipped),
        file(
            "en/bullying.txt",
            "@no-capture\n3 rate me\n",
            Origin::Shipped,
        ),
        file("en/violence.txt", "3 stab you\n", Origin::Shipped),
    ])
    .unwrap();
    let mut got = Vec::new();
    d.scan(
        "send nudes, rate me, stab you",
        &mut Default::default(),
        |m| got.push(m.no_capture),
    );
    assert_eq!(got, [true, true, false]);
}

#[test]
fn version_changes_with_content() {
    let a = Detector::build(&[file("en/suicide.txt", "5 kill myself\n", Origin::Shipped)]).unwrap();
    let b = Detector::build(&[file("en/suicide.txt", "5 kill myself\n", Origin::Shipped)]).unwrap();
    let c = Detector::build(&[file("en/suicide.txt", "4 kill myself\n", Origin::Shipped)]).unwrap();
    assert_eq!(a.version(), b.version());
    assert_ne!(a.version(), c.version());
    assert_eq!(a.version().len(), 16);
}

#[test]
fn context_window_is_bounded() {
    let d = Detector::build(&[file("en/suicide.txt", "5 kill myself\n", Origin::Shipped)]).unwrap();
    let text = format!("{} kill myself {}", "a".repeat(500), "b".repeat(500));
    let mut got = None;
    d.scan(&text, &mut Default::default(), |m| {
        got = Some((m.start, m.end, m.context))
    });
    let (start, end, context) = got.unwrap();
    assert_eq!((start, end), (501, 512));
    assert_eq!(context, 441..572);
}

#[test]
fn lists_beyond_the_compact_state_table_load_and_match() {
    // 4,000 unrelated 24-letter phrases need about 90,000 states, past the 65,535 that 16-bit
    // state ids number: the detector switches to 32-bit ones and matches the same way.
    let mut phrases = Vec::new();
    let mut x: u64 = 7;
    for _ in 0..4000 {
        let mut phrase = String::new();
        for _ in 0..24 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            phrase.push(char::from(b'a' + ((x >> 33) % 26) as u8));
        }
        phrases.push(phrase);
    }
    let list: String = std::iter::once("@category violence\n".to_string())
        .chain(phrases.iter().map(|p| format!("3 {p}\n")))
        .collect();
    let d = Detector::build(&[file("en/big.txt", &list, Origin::Local)]).unwrap();
    assert!(d.automaton_states() > 65_535, "{d:?}");
    assert_eq!(d.entry_count(), 4000);
    for i in [0, 1234, 3999] {
        let text = format!(
            "before {} after, and {}x",
            phrases[i].to_uppercase(),
            phrases[i]
        );
        let entry = format!("en/big.txt:{}", i + 2);
        // Whole text and typed key by key agree: one match, the phrase as a word.
        let mut whole = Vec::new();
        d.scan(&text, &mut Default::default(), |m| {
            whole.push((m.entry.to_string(), m.start, m.end))
        });
        assert_eq!(whole, [(entry.clone(), 7, 31)], "{text}");
        let mut typed = Vec::new();
        let mut window = Window::new();
        for ch in text.chars() {
            window.push(ch, &d, |m| {
                typed.push((m.entry.to_string(), m.start, m.end))
            });
        }
        window.end_of_text(&d, |m| typed.push((m.entry.to_string(), m.start, m.end)));
        assert_eq!(typed, whole);
    }
    let mut none = 0;
    d.scan(
        "abcdefghijklmnopqrstuvwx and a phrase cut shor",
        &mut Default::default(),
        |_| none += 1,
    );
    assert_eq!(none, 0);
}
