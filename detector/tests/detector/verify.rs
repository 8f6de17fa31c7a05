//! One table row per verification rule: text → the phrases that must be found (with the matched
//! text as typed).

use ward_detector::Detector;

use crate::support::{detector, found};

const LIST: &str = "\
@category violence
5 kill myself
3 sex
4 cunt
4 nigger
3 rapist
3 ass
2 killing me ; unless: homework, exam, maths, laughing, funny
3 self harm ; stem
3 weed ; strict
3 grooming ; near: online, older, secret, snapchat
4 kys
! kill switch
";

/// A generic word with exclusions, apart from LIST so it does not also match inside "kill myself".
const GENERIC: &str = "\
@category violence
3 kill ; except: kill the process, kill the lights, kill time
5 kill myself
! kill switch
";

fn check(text: &str, expected: &[(&str, &str)]) {
    static D: std::sync::OnceLock<Detector> = std::sync::OnceLock::new();
    check_with(D.get_or_init(|| detector(LIST)), text, expected);
}

fn check_generic(text: &str, expected: &[(&str, &str)]) {
    static D: std::sync::OnceLock<Detector> = std::sync::OnceLock::new();
    check_with(D.get_or_init(|| detector(GENERIC)), text, expected);
}

fn check_with(d: &Detector, text: &str, expected: &[(&str, &str)]) {
    let got = found(d, text);
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    assert_eq!(got, want, "scanning {text:?}");
}

#[test]
fn word_boundaries_keep_longer_words_quiet() {
    check("what a skill", &[]);
    check("Scunthorpe United", &[]);
    check("don't snigger", &[]);
    check("Essex and Sussex", &[]);
    check("the assassin's creed", &[]);
    check("my therapist said", &[]);
    check("a class of grass", &[]);
    check("skilled killers", &[]);
}

#[test]
fn phrases_match_whole_words() {
    check("I will kill myself", &[("kill myself", "kill myself")]);
    check("you cunt", &[("cunt", "cunt")]);
    check("THE RAPIST", &[("rapist", "RAPIST")]);
}

#[test]
fn evasions_map_back_to_the_text_as_typed() {
    check("i'll k!ll mys3lf", &[("kill myself", "k!ll mys3lf")]);
    check(
        "k i l l m y s e l f now",
        &[("kill myself", "k i l l m y s e l f")],
    );
    check("killmyself", &[("kill myself", "killmyself")]);
    check(
        "kiiiiill myseeeelf!!!",
        &[("kill myself", "kiiiiill myseeeelf")],
    );
    check("ѕеx", &[("sex", "ѕеx")]);
    check("k y s", &[("kys", "k y s")]);
    check("s\u{200b}e\u{200b}x", &[("sex", "s\u{200b}e\u{200b}x")]);
}

#[test]
fn exclusion_contexts() {
    check_generic("how do I kill the process", &[]);
    check_generic("kill the lights please", &[]);
    check_generic("just to kill time", &[]);
    check_generic("press the kill switch", &[]);
    check_generic("kill them", &[("kill", "kill")]);
}

#[test]
fn unless_words_nearby_cancel() {
    check("this homework is killing me", &[]);
    check("killing me with laughing", &[]);
    check("he is killing me", &[("killing me", "killing me")]);
}

#[test]
fn near_words_are_required() {
    check("grooming the dog", &[]);
    check(
        "an older man was grooming her online",
        &[("grooming", "grooming")],
    );
}

#[test]
fn stem_entries_match_longer_words() {
    check("self harming again", &[("self harm", "self harming")]);
    check("self-harmed", &[("self harm", "self-harmed")]);
}

#[test]
fn strict_entries_refuse_stretched_and_squeezed_forms() {
    check("weed", &[("weed", "weed")]);
    check("see you wed", &[]);
    check("weeeed", &[]);
}

#[test]
fn overlapping_phrases_are_all_reported() {
    check_generic(
        "kill myself, kill",
        &[
            ("kill", "kill"),
            ("kill myself", "kill myself"),
            ("kill", "kill"),
        ],
    );
}
