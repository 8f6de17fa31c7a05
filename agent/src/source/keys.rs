//! Keys as the text assembler understands them, and the translation from X11 keysyms.
//!
//! Only what changes typed text matters: a character, or an editing key that removes text or makes the
//! cursor position unknown. Everything else (function keys, media keys) is [`Key::Other`].
//!
//! A keysym becomes a character in one of three ways: Latin-1 keysyms are their own code points,
//! Unicode keysyms carry theirs above 0x0100_0000, and the legacy keysyms of other scripts (Latin-2
//! to 4 and 9, Arabic, Cyrillic, Greek, Hebrew, Thai and more, which common layouts still produce)
//! are looked up in a table ([`legacy`]). Dead keys (the Spanish layout's acute, the Portuguese
//! tilde) type nothing themselves and put their accent on the next letter ([`DeadKeys`]).

mod legacy;

/// A translated key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character, with shift, caps lock and AltGr applied.
    Char(char),
    /// Removes the character before the cursor.
    Backspace,
    /// Removes the character after the cursor (a no-op at the end of typed text).
    Delete,
    /// Ends a line or sends a message.
    Enter,
    /// Moves to another field.
    Tab,
    /// Cancels.
    Escape,
    /// Arrow keys, Home, End, Page Up/Down: the cursor is somewhere else now.
    Navigate,
    /// A key pressed with Control, Alt or Super held: a shortcut (paste, select all, undo), not text.
    Shortcut,
    /// A modifier on its own (Shift, Control, Caps Lock).
    Modifier,
    /// Anything else (function keys, media keys).
    Other,
}

/// Which modifiers are held (or locked), as a source knows them: from the server's keyboard state
/// where it has one (X11 with XKB), else tracked from key presses and releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Modifiers {
    /// Shift is held.
    pub shift: bool,
    /// Caps Lock is on.
    pub caps_lock: bool,
    /// Num Lock is on: the keypad types digits rather than moving the cursor.
    pub num_lock: bool,
    /// Control is held.
    pub control: bool,
    /// Alt (left) or Super is held.
    pub alt: bool,
    /// AltGr (ISO level 3 shift) is held.
    pub altgr: bool,
}

/// X11 keysym values this module needs (from X11/keysymdef.h).
pub mod keysym {
    #![allow(missing_docs)]
    pub const BACKSPACE: u32 = 0xff08;
    pub const TAB: u32 = 0xff09;
    pub const ISO_LEFT_TAB: u32 = 0xfe20;
    pub const RETURN: u32 = 0xff0d;
    pub const KP_ENTER: u32 = 0xff8d;
    pub const ESCAPE: u32 = 0xff1b;
    pub const DELETE: u32 = 0xffff;
    pub const KP_DELETE: u32 = 0xff9f;
    pub const HOME: u32 = 0xff50;
    pub const END: u32 = 0xff57;
    pub const SHIFT_L: u32 = 0xffe1;
    pub const SHIFT_R: u32 = 0xffe2;
    pub const CONTROL_L: u32 = 0xffe3;
    pub const CONTROL_R: u32 = 0xffe4;
    pub const CAPS_LOCK: u32 = 0xffe5;
    pub const META_L: u32 = 0xffe7;
    pub const ALT_L: u32 = 0xffe9;
    pub const ALT_R: u32 = 0xffea;
    pub const SUPER_L: u32 = 0xffeb;
    pub const SUPER_R: u32 = 0xffec;
    pub const ISO_LEVEL3_SHIFT: u32 = 0xfe03;
    pub const MODE_SWITCH: u32 = 0xff7e;
    pub const NUM_LOCK: u32 = 0xff7f;
    pub const KP_SPACE: u32 = 0xff80;
    pub const KP_0: u32 = 0xffb0;
    pub const KP_9: u32 = 0xffb9;
}

/// What a modifier keysym does to the tracked state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModifierKey {
    /// Shift (held).
    Shift,
    /// Caps Lock (toggles on press).
    CapsLock,
    /// Control (held).
    Control,
    /// Alt, Meta or Super (held).
    Alt,
    /// AltGr / ISO level 3 (held).
    AltGr,
    /// Num Lock (toggles on press).
    NumLock,
}

/// The modifier a keysym is, if it is one.
pub fn modifier_of(sym: u32) -> Option<ModifierKey> {
    use keysym::*;
    Some(match sym {
        SHIFT_L | SHIFT_R => ModifierKey::Shift,
        CAPS_LOCK => ModifierKey::CapsLock,
        NUM_LOCK => ModifierKey::NumLock,
        CONTROL_L | CONTROL_R => ModifierKey::Control,
        META_L | ALT_L | SUPER_L | SUPER_R => ModifierKey::Alt,
        // Right Alt is AltGr on most European layouts; either way it never types a shortcut alone.
        ALT_R | ISO_LEVEL3_SHIFT | MODE_SWITCH => ModifierKey::AltGr,
        _ => return None,
    })
}

impl Modifiers {
    /// Updates the state for a modifier key going down (`pressed`) or up.
    pub fn apply(&mut self, key: ModifierKey, pressed: bool) {
        match key {
            ModifierKey::Shift => self.shift = pressed,
            ModifierKey::CapsLock => {
                if pressed {
                    self.caps_lock = !self.caps_lock;
                }
            }
            ModifierKey::Control => self.control = pressed,
            ModifierKey::Alt => self.alt = pressed,
            ModifierKey::AltGr => self.altgr = pressed,
            ModifierKey::NumLock => {
                if pressed {
                    self.num_lock = !self.num_lock;
                }
            }
        }
    }
}

/// The Unicode character a keysym types, if it is a printable one.
pub fn keysym_char(sym: u32) -> Option<char> {
    match sym {
        // Latin-1 keysyms are their own code points.
        0x20..=0x7e | 0xa0..=0xff => char::from_u32(sym),
        // Directly encoded Unicode keysyms.
        0x0100_0000..=0x0110_ffff => char::from_u32(sym - 0x0100_0000).filter(|c| !c.is_control()),
        // Currency keysyms (EuroSign is 0x20ac) are their own code points.
        0x20a0..=0x20ac => char::from_u32(sym),
        0x100..=0x1fff => legacy_char(sym),
        keysym::KP_SPACE => Some(' '),
        keysym::KP_0..=keysym::KP_9 => char::from_digit(sym - keysym::KP_0, 10),
        0xffaa => Some('*'),
        0xffab => Some('+'),
        0xffad => Some('-'),
        0xffae => Some('.'),
        0xffaf => Some('/'),
        _ => None,
    }
}

/// The combining accent a dead keysym puts on the next letter (X11 `dead_grave` 0xfe50 to
/// `dead_belowcomma` 0xfe6e; `dead_stroke`, which has no combining form, is left out).
pub fn dead_key_accent(sym: u32) -> Option<char> {
    const ACCENTS: [char; 31] = [
        '\u{300}', '\u{301}', '\u{302}', '\u{303}', '\u{304}', '\u{306}', '\u{307}', '\u{308}',
        '\u{30a}', '\u{30b}', '\u{30c}', '\u{327}', '\u{328}', '\u{345}', '\u{3099}', '\u{309a}',
        '\u{323}', '\u{309}', '\u{31b}', '\0', '\u{313}', '\u{314}', '\u{30f}', '\u{325}',
        '\u{331}', '\u{32d}', '\u{330}', '\u{32e}', '\u{324}', '\u{311}', '\u{326}',
    ];
    let index = usize::try_from(sym.checked_sub(0xfe50)?).ok()?;
    ACCENTS.get(index).copied().filter(|&c| c != '\0')
}

/// Dead keys as an input method applies them: a dead key types nothing, and the next character
/// carries its accent (´ then e is é). Space after a dead key types the accent itself as the common
/// layouts do (´ then space is an apostrophe on US International); a letter that takes no such accent
/// is typed bare, and an editing key or shortcut cancels the dead key.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeadKeys {
    pending: Option<char>,
}

impl DeadKeys {
    /// Takes a key press, its keysym and its translation; returns the key to pass on, if any.
    pub fn press(&mut self, sym: u32, key: Key) -> Option<Key> {
        if key != Key::Shortcut {
            if let Some(accent) = dead_key_accent(sym) {
                self.pending = Some(accent);
                return None;
            }
        }
        match key {
            Key::Modifier => Some(key),
            Key::Char(c) => {
                let Some(accent) = self.pending.take() else {
                    return Some(key);
                };
                if c == ' ' {
                    return Some(Key::Char(spacing_accent(accent).unwrap_or(' ')));
                }
                Some(Key::Char(
                    unicode_normalization::char::compose(c, accent).unwrap_or(c),
                ))
            }
            _ => {
                self.pending = None;
                Some(key)
            }
        }
    }
}

/// The character a dead key followed by space types, for the accents that have one on a keyboard.
fn spacing_accent(accent: char) -> Option<char> {
    Some(match accent {
        '\u{300}' => '`',
        '\u{301}' => '\'',
        '\u{302}' => '^',
        '\u{303}' => '~',
        '\u{308}' => '"',
        _ => return None,
    })
}

/// The character of a legacy keysym, from the X11 table.
fn legacy_char(sym: u32) -> Option<char> {
    let key = u16::try_from(sym).ok()?;
    let at = legacy::LEGACY
        .binary_search_by_key(&key, |&(k, _)| k)
        .ok()?;
    char::from_u32(u32::from(legacy::LEGACY[at].1))
}

/// One key's keysyms: up to four levels (plain, Shift, AltGr, AltGr with Shift) in each of up to
/// four groups (the layouts a keyboard switches between, such as "gb,ara"); `0` is NoSymbol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySyms {
    groups: u8,
    levels: [[u32; 4]; 4],
}

impl KeySyms {
    /// From XKB's description of a key: `groups` groups of `width` levels, one group after another.
    /// Levels past the fourth (rare "level 5" layouts) are not read.
    pub fn from_xkb(groups: u8, width: u8, syms: &[u32]) -> KeySyms {
        let mut key = KeySyms {
            groups: groups.min(4),
            ..KeySyms::default()
        };
        let width = usize::from(width);
        for (group, levels) in key.levels.iter_mut().enumerate().take(key.groups.into()) {
            for (level, sym) in levels.iter_mut().enumerate().take(width) {
                *sym = syms.get(group * width + level).copied().unwrap_or(0);
            }
        }
        key
    }

    /// From a row of the core keyboard mapping, as a server without XKB gives it:
    /// `[group1 level1, group1 level2, group2 level1, group2 level2, group1 level3, group1 level4,
    /// group2 level3, group2 level4]`.
    pub fn from_core(row: &[u32]) -> KeySyms {
        let at = |i: usize| row.get(i).copied().unwrap_or(0);
        let second = [at(2), at(3), at(6), at(7)];
        KeySyms {
            groups: if second == [0; 4] { 1 } else { 2 },
            levels: [[at(0), at(1), at(4), at(5)], second, [0; 4], [0; 4]],
        }
    }

    /// The levels of `group` (0 for the first layout). A key with fewer groups (the space bar, digits
    /// on many layouts) wraps the group into its own, as XKB does by default.
    pub fn group(&self, group: u8) -> &[u32; 4] {
        let index = match self.groups {
            0 => 0,
            n => group % n,
        };
        &self.levels[usize::from(index)]
    }
}

/// Whether `sym` is one of the keypad's keysyms (`KP_Space` to `KP_Equal`, X11's `IsKeypadKey`).
fn is_keypad(sym: u32) -> bool {
    (0xff80..=0xffbd).contains(&sym)
}

/// Picks the keysym from one group's levels of a key, given the modifiers.
///
/// A keypad key whose second level is a keypad keysym (`KP_End` / `KP_1`) takes that level while
/// Num Lock is on, and Shift then gives the first back, as XKB's keypad key type and Xlib do.
pub fn pick_keysym(levels: &[u32; 4], mods: Modifiers) -> u32 {
    let [level1, level2, level3, level4] = *levels;
    if mods.num_lock && is_keypad(level2) {
        return if mods.shift { level1 } else { level2 };
    }
    let (lower, upper) = if mods.altgr && level3 != 0 {
        (level3, level4)
    } else {
        (level1, level2)
    };
    let shifted = if upper == 0 { lower } else { upper };
    let sym = if mods.shift { shifted } else { lower };
    if !mods.caps_lock {
        return sym;
    }
    // Caps Lock shifts letters only, and Shift undoes it.
    match (keysym_char(lower), keysym_char(shifted)) {
        (Some(l), Some(_)) if l.is_alphabetic() => {
            if mods.shift {
                lower
            } else {
                shifted
            }
        }
        _ => sym,
    }
}

/// Translates a keysym typed with `mods` into a [`Key`].
pub fn translate_keysym(sym: u32, mods: Modifiers) -> Key {
    use keysym::*;
    if modifier_of(sym).is_some() {
        return Key::Modifier;
    }
    let editing = match sym {
        BACKSPACE => Some(Key::Backspace),
        DELETE | KP_DELETE => Some(Key::Delete),
        RETURN | KP_ENTER => Some(Key::Enter),
        TAB | ISO_LEFT_TAB => Some(Key::Tab),
        ESCAPE => Some(Key::Escape),
        // Home, Left, Up, Right, Down, Prior, Next, End, Begin and their keypad twins.
        0xff50..=0xff58 | 0xff95..=0xff9d => Some(Key::Navigate),
        _ => None,
    };
    if mods.control || mods.alt {
        // Ctrl+Backspace and friends still edit, but by an unknown amount: treat as a shortcut.
        return Key::Shortcut;
    }
    if let Some(key) = editing {
        return key;
    }
    keysym_char(sym).map_or(Key::Other, Key::Char)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A_ROW: [u32; 4] = [0x61, 0x41, 0, 0]; // a A
    const ONE_ROW: [u32; 4] = [0x31, 0x21, 0, 0]; // 1 !
    const E_ROW_WITH_ALTGR: [u32; 4] = [0x65, 0x45, 0x20ac, 0xa2]; // e E € ¢

    fn mods(shift: bool, caps: bool) -> Modifiers {
        Modifiers {
            shift,
            caps_lock: caps,
            ..Modifiers::default()
        }
    }

    fn check(row: &[u32], m: Modifiers, expected: Key) {
        check_in(&KeySyms::from_core(row), m, 0, expected);
    }

    fn check_in(key: &KeySyms, m: Modifiers, group: u8, expected: Key) {
        assert_eq!(
            translate_keysym(pick_keysym(key.group(group), m), m),
            expected,
            "{key:x?} group {group} {m:?}"
        );
    }

    #[test]
    fn shift_and_caps_lock_apply_to_letters() {
        check(&A_ROW, mods(false, false), Key::Char('a'));
        check(&A_ROW, mods(true, false), Key::Char('A'));
        check(&A_ROW, mods(false, true), Key::Char('A'));
        check(&A_ROW, mods(true, true), Key::Char('a'));
    }

    #[test]
    fn caps_lock_leaves_digits_alone() {
        check(&ONE_ROW, mods(false, true), Key::Char('1'));
        check(&ONE_ROW, mods(true, true), Key::Char('!'));
    }

    #[test]
    fn altgr_reaches_level_three() {
        let m = Modifiers {
            altgr: true,
            ..Modifiers::default()
        };
        let key = KeySyms::from_xkb(1, 4, &E_ROW_WITH_ALTGR);
        check_in(&key, m, 0, Key::Char('€'));
    }

    #[test]
    fn control_makes_a_shortcut() {
        let m = Modifiers {
            control: true,
            ..Modifiers::default()
        };
        check(&A_ROW, m, Key::Shortcut);
        check(&[keysym::BACKSPACE], m, Key::Shortcut);
    }

    #[test]
    fn editing_keys_translate() {
        let m = Modifiers::default();
        check(&[keysym::BACKSPACE], m, Key::Backspace);
        check(&[keysym::RETURN], m, Key::Enter);
        check(&[keysym::DELETE], m, Key::Delete);
        check(&[0xff51], m, Key::Navigate);
        check(&[keysym::SHIFT_L], m, Key::Modifier);
        check(&[0xffbe], m, Key::Other); // F1
        check(&[0x20], m, Key::Char(' '));
        check(&[0x0100_0142], m, Key::Char('ł'));
    }

    #[test]
    fn the_legacy_table_is_sorted_without_duplicates() {
        assert!(legacy::LEGACY.windows(2).all(|w| w[0].0 < w[1].0));
    }

    /// One keysym of each legacy block a layout produces, with the character keysymdef.h gives it.
    const LEGACY_SAMPLES: &[(u32, char, &str)] = &[
        (0x1a1, 'Ą', "Latin-2 Aogonek"),
        (0x1b3, 'ł', "Latin-2 lstroke"),
        (0x1ea, 'ę', "Latin-2 eogonek"),
        (0x1ba, 'ş', "Latin-2 scedilla (Romanian's legacy s)"),
        (0x1fe, 'ţ', "Latin-2 tcedilla, the block's last"),
        (0x2a1, 'Ħ', "Latin-3 Hstroke"),
        (0x2fe, 'ŝ', "Latin-3 scircumflex"),
        (0x3a2, 'ĸ', "Latin-4 kra"),
        (0x3fe, 'ū', "Latin-4 umacron"),
        (0x13bc, 'Œ', "Latin-9 OE"),
        (0x13bd, 'œ', "Latin-9 oe"),
        (0x13be, 'Ÿ', "Latin-9 Ydiaeresis"),
        (0x4b1, 'ア', "Katakana A"),
        (0x5ac, '،', "Arabic comma"),
        (0x5c7, 'ا', "Arabic alef"),
        (0x5d3, 'س', "Arabic seen"),
        (0x5f2, 'ْ', "Arabic sukun"),
        (0x6a1, 'ђ', "Serbian dje"),
        (0x6c1, 'а', "Cyrillic a"),
        (0x6e1, 'А', "Cyrillic A"),
        (0x6ff, 'Ъ', "Cyrillic HARDSIGN"),
        (0x7a1, 'Ά', "Greek ALPHAaccent"),
        (0x7e1, 'α', "Greek alpha"),
        (0x7f3, 'ς', "Greek final small sigma"),
        (0x7f9, 'ω', "Greek omega"),
        (0xce0, 'א', "Hebrew aleph"),
        (0xcfa, 'ת', "Hebrew taw"),
        (0xda1, 'ก', "Thai kokai"),
        (0xdf9, '๙', "Thai leknine"),
        (0xeb8, 'ㅈ', "Hangul J"),
        (0x8bd, '≠', "Technical notequal"),
        (0xaa9, '—', "Publishing emdash"),
        (0x20ac, '€', "EuroSign"),
    ];

    #[test]
    fn legacy_keysyms_of_every_block_type_their_characters() {
        for &(sym, expected, name) in LEGACY_SAMPLES {
            assert_eq!(keysym_char(sym), Some(expected), "{name} ({sym:#x})");
            let m = Modifiers::default();
            assert_eq!(translate_keysym(sym, m), Key::Char(expected), "{name}");
        }
    }

    #[test]
    fn gaps_in_the_legacy_blocks_type_nothing() {
        // 0x1a4 is currency, 0x5ad to 0x5ba are unassigned in the Arabic block, 0x7a6 in Greek.
        for sym in [0x1a0, 0x5ad, 0x5ba, 0x7a6, 0xcdd, 0x1000, 0x1fff] {
            assert_eq!(keysym_char(sym), None, "{sym:#x}");
            assert_eq!(translate_keysym(sym, Modifiers::default()), Key::Other);
        }
    }

    #[test]
    fn unicode_keysyms_cover_scripts_without_legacy_keysyms() {
        // Romanian comma-below letters, Urdu and Punjabi (Gurmukhi) as their layouts produce them.
        for c in ['ș', 'ț', 'ی', 'ے', 'ਪ', 'ੰ', '😀'] {
            assert_eq!(keysym_char(0x0100_0000 + u32::from(c)), Some(c));
        }
        // Control characters are not text even when encoded.
        assert_eq!(keysym_char(0x0100_0007), None);
    }

    #[test]
    fn caps_lock_and_shift_apply_to_legacy_letters() {
        // The Polish layout's e key: e E eogonek Eogonek on levels 1 to 4.
        let row = [0x65, 0x45, 0x65, 0x45, 0x1ea, 0x1ca]; // as the core mapping gives it
        let altgr = |shift, caps_lock| Modifiers {
            altgr: true,
            shift,
            caps_lock,
            ..Modifiers::default()
        };
        check(&row, altgr(false, false), Key::Char('ę'));
        check(&row, altgr(true, false), Key::Char('Ę'));
        check(&row, altgr(false, true), Key::Char('Ę'));
        // A Russian layout's f key: Cyrillic_a and Cyrillic_A.
        check(&[0x6c1, 0x6e1], mods(false, true), Key::Char('А'));
        check(&[0x6c1, 0x6e1], mods(true, true), Key::Char('а'));
    }

    #[test]
    fn groups_are_the_layouts_switched_between() {
        let plain = Modifiers::default();
        let altgr = Modifiers {
            altgr: true,
            ..plain
        };
        // A "us,ara" keyboard's f key as XKB describes it: two groups of four levels (the US group
        // has no AltGr level), and the space bar with one group of one level.
        let f_key = KeySyms::from_xkb(2, 4, &[0x66, 0x46, 0, 0, 0x5e1, 0xfef9, 0x10006a4, 0]);
        check_in(&f_key, plain, 0, Key::Char('f'));
        check_in(&f_key, altgr, 0, Key::Char('f'));
        check_in(&f_key, plain, 1, Key::Char('ف'));
        check_in(&f_key, altgr, 1, Key::Char('ڤ'));
        let space = KeySyms::from_xkb(1, 1, &[0x20]);
        check_in(&space, plain, 1, Key::Char(' '));
        // A third layout (gb,pl,ru): the Cyrillic group of the same key.
        let a_key = KeySyms::from_xkb(3, 2, &[0x61, 0x41, 0x61, 0x41, 0x6c6, 0x6e6]);
        check_in(&a_key, mods(true, false), 2, Key::Char('Ф'));
        // Without XKB, the core row's second group.
        let s_key = KeySyms::from_core(&[0x73, 0x53, 0x5d3, 0x5f0]);
        check_in(&s_key, plain, 0, Key::Char('s'));
        check_in(&s_key, plain, 1, Key::Char('س'));
        check_in(&s_key, mods(true, false), 1, Key::Char('\u{650}'));
        let e_key = KeySyms::from_core(&[0x65, 0x45, 0x65, 0x45, 0xe9, 0xc9, 0x1ea, 0x1ca]);
        check_in(&e_key, altgr, 1, Key::Char('ę'));
        check_in(&e_key, altgr, 0, Key::Char('é'));
    }

    /// Presses `keys` (keysym, modifiers) through dead-key handling; returns the characters typed.
    fn typed_with_dead_keys(keys: &[(u32, Modifiers)]) -> String {
        let mut dead = DeadKeys::default();
        keys.iter()
            .filter_map(|&(sym, m)| dead.press(sym, translate_keysym(sym, m)))
            .filter_map(|k| match k {
                Key::Char(c) => Some(c),
                Key::Backspace => Some('⌫'),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn dead_keys_put_their_accent_on_the_next_letter() {
        let plain = Modifiers::default();
        let shift = mods(true, false);
        const TILDE: u32 = 0xfe53;
        const ACUTE: u32 = 0xfe51;
        // Portuguese "não", Spanish "papá", French "À", Romanian "ș" (dead comma below).
        let nao = [(0x6e, plain), (TILDE, plain), (0x61, plain), (0x6f, plain)];
        assert_eq!(typed_with_dead_keys(&nao), "não");
        let papa = [
            (0x70, plain),
            (0x61, plain),
            (0x70, plain),
            (ACUTE, plain),
            (0x61, plain),
        ];
        assert_eq!(typed_with_dead_keys(&papa), "papá");
        let a_grave = [(0xfe50, plain), (keysym::SHIFT_L, shift), (0x41, shift)];
        assert_eq!(typed_with_dead_keys(&a_grave), "À");
        assert_eq!(typed_with_dead_keys(&[(0xfe6e, plain), (0x73, plain)]), "ș");
        // Space types the accent itself; a letter it does not fit is typed bare.
        assert_eq!(typed_with_dead_keys(&[(ACUTE, plain), (0x20, plain)]), "'");
        assert_eq!(typed_with_dead_keys(&[(ACUTE, plain), (0x74, plain)]), "t");
        // An editing key cancels it.
        let cancelled = [(TILDE, plain), (keysym::BACKSPACE, plain), (0x61, plain)];
        assert_eq!(typed_with_dead_keys(&cancelled), "⌫a");
        assert_eq!(
            dead_key_accent(0xfe63),
            None,
            "dead_stroke has no combining form"
        );
        assert_eq!(dead_key_accent(0xfe6f), None);
    }

    #[test]
    fn num_lock_turns_the_keypad_into_digits() {
        // The keypad's 1 key: KP_End, and KP_1 on the second level.
        const KP_1_ROW: [u32; 4] = [0xff9c, 0xffb1, 0, 0];
        let num = Modifiers {
            num_lock: true,
            ..Modifiers::default()
        };
        check(&KP_1_ROW, Modifiers::default(), Key::Navigate);
        check(&KP_1_ROW, num, Key::Char('1'));
        // Shift swaps the two: with Num Lock on it gives the cursor key back, without it the digit.
        check(&KP_1_ROW, Modifiers { shift: true, ..num }, Key::Navigate);
        check(&KP_1_ROW, mods(true, false), Key::Char('1'));
        // The keypad's operators type the same either way; Num Lock leaves other keys alone.
        check(&[0xffab, 0xffab], num, Key::Char('+'));
        check(&A_ROW, num, Key::Char('a'));
        check(&ONE_ROW, num, Key::Char('1'));
        let mut tracked = Modifiers::default();
        tracked.apply(modifier_of(keysym::NUM_LOCK).unwrap(), true);
        tracked.apply(ModifierKey::NumLock, false);
        assert!(tracked.num_lock);
    }

    #[test]
    fn caps_lock_toggles_on_press_only() {
        let mut m = Modifiers::default();
        m.apply(ModifierKey::CapsLock, true);
        m.apply(ModifierKey::CapsLock, false);
        assert!(m.caps_lock);
        m.apply(ModifierKey::CapsLock, true);
        assert!(!m.caps_lock);
    }
}
