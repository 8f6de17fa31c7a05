//! Text in other scripts: on a real X server with the keyboard laid out as a Polish, Arabic,
//! Romanian or Portuguese pupil's is, typed words reach the pipeline in their own script (legacy
//! keysyms such as `eogonek` and `Arabic_seen`, Unicode keysyms such as `U0219`, dead keys), also
//! when the pupil switches between two layouts (gb,ara), and a concerning phrase from the Polish,
//! Arabic or Portuguese wordlist becomes an alert at a running collector with the phrase as typed.
//!
//! The layouts are installed the way `xmodmap` does it (ChangeKeyboardMapping on the keys the words
//! need, in the rows the real layouts give them), so xdotool presses existing keys (with Shift where
//! needed) rather than binding a spare keycode for each character. The source reads the keymap as
//! XKB describes it, which is what applications type by. (`setxkbmap` would be closer still,
//! but the Xvfb here does not take its keymaps; and `xdotool type` binds a spare keycode per
//! character and unbinds it straight after the press, which a loaded machine could read either way.)

use std::sync::mpsc;
use std::time::Duration;

use ward_agent::source::x11::{Display, X11Source};
use ward_agent::source::{Key, Source, SourceEvent};
use x11rb::protocol::xproto::ConnectionExt as _;

use crate::desktop::Desktop;
use crate::programs::{keyboard, Agent, Collector, QUICK_NOTICE};

/// Keycodes (evdev, as Xvfb numbers them) of the keys the test words use.
mod keycode {
    pub const AD03_E: u8 = 26;
    pub const AD10_P: u8 = 33;
    pub const AD11_BRACKET: u8 = 34;
    pub const AD12_BRACKET: u8 = 35;
    pub const AC02_S: u8 = 39;
    pub const AC06_H: u8 = 43;
    pub const AC07_J: u8 = 44;
    pub const AC08_K: u8 = 45;
    pub const AC10_SEMICOLON: u8 = 47;
    pub const AC11_APOSTROPHE: u8 = 48;
    pub const AB04_V: u8 = 55;
}

/// Core-protocol rows: `[group 1 level 1, level 2, group 2 level 1, level 2]`. (The server reads
/// core symbols past the fourth as further groups, not as AltGr levels, so layouts with AltGr levels
/// cannot be set this way; the unit tests cover those from XKB's description.)
type Layout = &'static [(u8, [u32; 4])];

/// The Polish (QWERTZ) layout's letters right of P and L: ż ń, ś ć, ą ę.
const POLISH: Layout = &[
    (keycode::AD11_BRACKET, [0x1bf, 0x1f1, 0x1bf, 0x1f1]),
    (keycode::AD12_BRACKET, [0x1b6, 0x1e6, 0x1b6, 0x1e6]),
    (keycode::AC11_APOSTROPHE, [0x1b1, 0x1ea, 0x1b1, 0x1ea]),
];

/// The Arabic layout's keys for سأنتحر: seen, alef (hamza above on Shift), teh, noon, hah, ra.
const ARABIC: Layout = &[
    (keycode::AC02_S, [0x5d3, 0x5f0, 0x5d3, 0x5f0]),
    (keycode::AC06_H, [0x5c7, 0x5c3, 0x5c7, 0x5c3]),
    (keycode::AC07_J, [0x5ca, 0x5e0, 0x5ca, 0x5e0]),
    (keycode::AC08_K, [0x5e6, 0x5ac, 0x5e6, 0x5ac]),
    (keycode::AD10_P, [0x5cd, 0x5bb, 0x5cd, 0x5bb]),
    (keycode::AB04_V, [0x5d1, 0x7b, 0x5d1, 0x7b]),
];

/// The Romanian (standard) layout's ă (a legacy keysym) and ș ț (Unicode keysyms).
const ROMANIAN: Layout = &[
    (keycode::AD11_BRACKET, [0x1e3, 0x1c3, 0x1e3, 0x1c3]),
    (
        keycode::AC10_SEMICOLON,
        [0x0100_0219, 0x0100_0218, 0x0100_0219, 0x0100_0218],
    ),
    (
        keycode::AC11_APOSTROPHE,
        [0x0100_021b, 0x0100_021a, 0x0100_021b, 0x0100_021a],
    ),
];

/// The Portuguese layout's dead keys, right of ç: tilde, and circumflex on Shift.
const PORTUGUESE: Layout = &[(keycode::AC11_APOSTROPHE, [0xfe53, 0xfe52, 0xfe53, 0xfe52])];

/// xdotool key names that type "não quero mais viver" with the Portuguese dead tilde.
fn portuguese_keys() -> Vec<String> {
    let mut keys: Vec<String> = ["n", "dead_tilde", "a"].map(String::from).to_vec();
    keys.extend("o quero mais viver".chars().map(|c| match c {
        ' ' => "space".to_string(),
        c => c.to_string(),
    }));
    keys.push("Return".into());
    keys
}

/// A "gb,ara" keyboard: Latin in the first group, the Arabic layout's letters in the second, on the
/// keys that type سأنتحر.
const ENGLISH_ARABIC: Layout = &[
    (keycode::AC02_S, [0x73, 0x53, 0x5d3, 0x5f0]),
    (keycode::AC06_H, [0x68, 0x48, 0x5c7, 0x5c3]),
    (keycode::AC07_J, [0x6a, 0x4a, 0x5ca, 0x5e0]),
    (keycode::AC08_K, [0x6b, 0x4b, 0x5e6, 0x5ac]),
    (keycode::AD10_P, [0x70, 0x50, 0x5cd, 0x5bb]),
    (keycode::AB04_V, [0x76, 0x56, 0x5d1, 0x7b]),
];

/// Switches the keyboard to `group` (0 for the first layout), as the pupil's layout switch key would.
fn lock_group(desktop: &Desktop, group: u8) {
    use x11rb::protocol::xkb::{self, ConnectionExt as _};
    let (conn, _) = x11rb::rust_connection::RustConnection::connect(Some(&desktop.display))
        .expect("connects to Xvfb");
    conn.xkb_use_extension(1, 0).unwrap().reply().unwrap();
    let core = xkb::DeviceSpec::from(xkb::ID::USE_CORE_KBD);
    let none = x11rb::protocol::xproto::ModMask::from(0u16);
    conn.xkb_latch_lock_state(core, none, none, true, group.into(), none, false, 0)
        .unwrap()
        .check()
        .expect("the server switches the group");
    let state = conn.xkb_get_state(core).unwrap().reply().unwrap();
    assert_eq!(u8::from(state.group), group);
}

/// Gives `keycode` the symbols `levels` with the four-level key type XKB layouts use for letters
/// with AltGr symbols (as `setxkbmap pl` does for the Polish layout's e key). Core requests cannot:
/// the server reads core symbols past the fourth as further groups.
fn set_four_level_key(desktop: &Desktop, keycode: u8, levels: [u32; 4]) {
    use x11rb::protocol::xkb::{self, ConnectionExt as _};
    let (conn, _) = x11rb::rust_connection::RustConnection::connect(Some(&desktop.display))
        .expect("connects to Xvfb");
    conn.xkb_use_extension(1, 0).unwrap().reply().unwrap();
    let core = xkb::DeviceSpec::from(xkb::ID::USE_CORE_KBD);
    let names = conn
        .xkb_get_names(core, xkb::NameDetail::KEY_TYPE_NAMES)
        .unwrap()
        .reply()
        .unwrap();
    let kt_index = names
        .value_list
        .type_names
        .unwrap()
        .iter()
        .position(|&atom| {
            let name = conn.get_atom_name(atom).unwrap().reply().unwrap().name;
            name == b"FOUR_LEVEL_ALPHABETIC"
        })
        .expect("the server's keymap has the four-level letter type");
    let kt_index = u8::try_from(kt_index).unwrap();
    let key = xkb::KeySymMap {
        kt_index: [kt_index; 4],
        group_info: 1,
        width: 4,
        syms: levels.to_vec(),
    };
    let values = xkb::SetMapAux {
        syms: Some(vec![key]),
        ..Default::default()
    };
    let zero = xkb::VMod::from(0u16);
    conn.xkb_set_map(
        core,
        xkb::SetMapFlags::RECOMPUTE_ACTIONS,
        names.min_key_code,
        names.max_key_code,
        0,
        0,
        keycode,
        1,
        4,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        zero,
        &values,
    )
    .unwrap()
    .check()
    .expect("the server takes the key");
}

/// Installs `layout` on `desktop`'s keyboard and waits until the server reports it.
fn set_layout(desktop: &Desktop, layout: Layout) {
    let (conn, _) = x11rb::rust_connection::RustConnection::connect(Some(&desktop.display))
        .expect("connects to Xvfb");
    for (code, row) in layout {
        conn.change_keyboard_mapping(1, *code, 4, row)
            .unwrap()
            .check()
            .expect("the server takes the mapping");
    }
    for (code, row) in layout {
        let reply = conn
            .get_keyboard_mapping(*code, 1)
            .unwrap()
            .reply()
            .unwrap();
        assert_eq!(reply.keysyms[..4], row[..], "keycode {code}");
    }
}

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

/// Collects typed characters until Enter.
fn line(rx: &mpsc::Receiver<SourceEvent>) -> String {
    let mut text = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(SourceEvent::Key(Key::Char(c))) => text.push(c),
            Ok(SourceEvent::Key(Key::Enter)) => return text,
            Ok(_) => {}
            Err(_) => panic!("timed out; got {text:?}"),
        }
    }
}

/// xdotool key names that type "nie chcę już żyć" on the Polish (QWERTZ) layout: ę and ć are the
/// Shift levels of their keys.
const POLISH_KEYS: &[&str] = &[
    "n",
    "i",
    "e",
    "space",
    "c",
    "h",
    "c",
    "eogonek",
    "space",
    "j",
    "u",
    "zabovedot",
    "space",
    "zabovedot",
    "y",
    "cacute",
    "Return",
];

/// xdotool key names that type "سأنتحر" on the Arabic layout (hamza on alef is Shift+h's key).
const ARABIC_KEYS: &[&str] = &[
    "Arabic_seen",
    "Arabic_hamzaonalef",
    "Arabic_noon",
    "Arabic_teh",
    "Arabic_hah",
    "Arabic_ra",
    "Return",
];

#[test]
fn polish_arabic_and_romanian_layouts_type_their_own_script() {
    let mut desktop = Desktop::start();
    desktop.open_terminal("ward scripts test");
    let rx = listen(&desktop);
    set_layout(&desktop, POLISH);
    desktop.keys(POLISH_KEYS);
    assert_eq!(line(&rx), "nie chcę już żyć");
    // Shift reaches the second level of a legacy-keysym key.
    desktop.keys(&["nacute", "aogonek", "sacute", "Return"]);
    assert_eq!(line(&rx), "ńąś");
    // The Polish (programmers) layout: ę on AltGr+e, Ę with Shift too.
    set_four_level_key(&desktop, keycode::AD03_E, [0x65, 0x45, 0x1ea, 0x1ca]);
    desktop.keys(&[
        "ISO_Level3_Shift+e",
        "ISO_Level3_Shift+shift+e",
        "e",
        "Return",
    ]);
    assert_eq!(line(&rx), "ęĘe");

    set_layout(&desktop, ARABIC);
    desktop.keys(ARABIC_KEYS);
    assert_eq!(line(&rx), "سأنتحر");

    set_layout(&desktop, ROMANIAN);
    desktop.keys(&["t", "a", "t", "a", "space", "m", "abreve", "space"]);
    desktop.keys(&["U0219", "U021B", "U0218", "Return"]);
    assert_eq!(line(&rx), "tata mă șțȘ");

    // Dead keys: the tilde goes on the next letter, Shift's circumflex too.
    set_layout(&desktop, PORTUGUESE);
    desktop.keys(&["dead_tilde", "o", "dead_circumflex", "shift+e", "Return"]);
    assert_eq!(line(&rx), "õÊ");
}

#[test]
fn a_second_layout_switched_to_types_its_own_script() {
    let mut desktop = Desktop::start();
    desktop.open_terminal("ward layout switch test");
    let rx = listen(&desktop);
    set_layout(&desktop, ENGLISH_ARABIC);
    desktop.keys(&["s", "h", "space", "Return"]);
    assert_eq!(line(&rx), "sh ");
    // The pupil switches to Arabic: the same keys now type Arabic letters.
    lock_group(&desktop, 1);
    desktop.keys(ARABIC_KEYS);
    assert_eq!(line(&rx), "سأنتحر");
    lock_group(&desktop, 0);
    desktop.keys(&["s", "h", "Return"]);
    assert_eq!(line(&rx), "sh");
}

#[test]
fn polish_arabic_and_portuguese_phrases_become_alerts_as_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(&tmp.path().join("collector"));
    let mut agent = Agent::new(&tmp.path().join("agent"), &collector.url(), QUICK_NOTICE);
    agent.enrol(&collector);
    let mut desktop = Desktop::start();
    let window = desktop.open_terminal("Czat");
    set_layout(&desktop, POLISH);
    agent.run(Some(&desktop.display));
    desktop.wait_notice_closed("the monitoring notice closes", || agent.log());
    desktop.xdotool(&["windowactivate", "--sync", &window.to_string()]);

    desktop.keys(POLISH_KEYS);
    let polish = collector.wait_alert("the Polish phrase", |a| {
        keyboard(a) && a["phrase"] == "nie chcę już żyć"
    });
    assert_eq!(polish["category"], "suicide", "{polish}");
    let context = polish["context"].as_str().unwrap();
    assert!(context.contains("nie chcę już żyć"), "{context}");

    set_layout(&desktop, ARABIC);
    desktop.keys(ARABIC_KEYS);
    let arabic = collector.wait_alert("the Arabic phrase", |a| {
        keyboard(a) && a["phrase"] == "سأنتحر"
    });
    assert_eq!(arabic["category"], "suicide", "{arabic}");
    let context = arabic["context"].as_str().unwrap();
    assert!(context.contains("سأنتحر"), "{context}");

    set_layout(&desktop, PORTUGUESE);
    let keys = portuguese_keys();
    desktop.keys(&keys.iter().map(String::as_str).collect::<Vec<_>>());
    let portuguese = collector.wait_alert("the Portuguese phrase", |a| {
        keyboard(a) && a["phrase"] == "não quero mais viver"
    });
    let context = portuguese["context"].as_str().unwrap();
    assert!(context.contains("não quero mais viver"), "{context}");
    // Digits from the keypad under Num Lock reach the detector as digits.
    desktop.keys(&["Num_Lock"]);
    desktop.keys(KEYPAD_1488);
    desktop.keys(&["space", "Return", "Num_Lock"]);
    let numbers = collector.wait_alert("the keypad phrase", |a| {
        keyboard(a) && a["phrase"] == "1488"
    });
    assert_eq!(numbers["category"], "extremism", "{numbers}");
    // Typed text in any script stays out of the log.
    let log = agent.log();
    assert!(
        !log.contains("chcę") && !log.contains("سأنتحر") && !log.contains("não"),
        "{log}"
    );
}

/// Collects the keys the source reports until Enter (Enter itself left out).
fn keys_until_enter(rx: &mpsc::Receiver<SourceEvent>) -> Vec<Key> {
    let mut keys = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(SourceEvent::Key(Key::Enter)) => return keys,
            Ok(SourceEvent::Key(key)) => keys.push(key),
            Ok(_) => {}
            Err(_) => panic!("timed out; got {keys:?}"),
        }
    }
}

/// The keypad keys that type 1488 with Num Lock on (their first level is the cursor key).
const KEYPAD_1488: &[&str] = &["KP_End", "KP_Left", "KP_Up", "KP_Up"];

#[test]
fn num_lock_makes_the_keypad_type_digits() {
    let mut desktop = Desktop::start();
    desktop.open_terminal("ward keypad test");
    // Num Lock switched on before the source starts is read from the server's state.
    desktop.keys(&["Num_Lock"]);
    let rx = listen(&desktop);
    desktop.keys(KEYPAD_1488);
    desktop.keys(&["Return"]);
    assert_eq!(line(&rx), "1488");
    // Switched off while the source runs, the same keys move the cursor.
    desktop.keys(&["Num_Lock"]);
    desktop.keys(KEYPAD_1488);
    desktop.keys(&["Return"]);
    let keys = keys_until_enter(&rx);
    let moves: Vec<Key> = keys.into_iter().filter(|k| *k != Key::Other).collect();
    assert_eq!(moves, [Key::Navigate; 4]);
    // And on again: digits.
    desktop.keys(&["Num_Lock", "KP_End", "KP_Next", "Return"]);
    assert_eq!(line(&rx), "13");
}

#[test]
fn a_modifier_held_before_the_source_starts_counts_and_does_not_stick() {
    let mut desktop = Desktop::start();
    desktop.open_terminal("ward held modifier test");
    desktop.xdotool(&["keydown", "Control_L"]);
    desktop.xdotool(&["keydown", "Shift_L"]);
    let rx = listen(&desktop);
    // Held from before the start: these are shortcuts, not text.
    desktop.keys(&["a", "b"]);
    desktop.xdotool(&["keyup", "Control_L"]);
    // Shift still held: a capital.
    desktop.keys(&["c"]);
    desktop.xdotool(&["keyup", "Shift_L"]);
    desktop.keys(&["d", "Return"]);
    let keys = keys_until_enter(&rx);
    let typed: String = keys
        .iter()
        .filter_map(|k| match k {
            Key::Char(c) => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(typed, "Cd", "{keys:?}");
    assert_eq!(
        keys.iter().filter(|k| **k == Key::Shortcut).count(),
        2,
        "{keys:?}"
    );
}
