//! The X11 source: keys from XInput2 raw events, the foreground window from EWMH properties.
//!
//! Raw key events report every key press on the display whichever window has focus, as a keycode; the
//! source translates it with the server's keyboard mapping. Raw events carry no modifier state, so the
//! modifiers (Shift, Caps Lock, Num Lock, Control, Alt, AltGr) and the keyboard group (the layout a
//! pupil switched to, such as the second of "gb,ara") come from XKB state events: the server's own
//! state, read once at start and then pushed with every change, so a modifier held before the agent
//! started or across a focus change is neither missed nor left stuck, and a key press costs no round
//! trip. The server sends the state change a modifier key makes after that key's raw event and before
//! the next key's, so each key is translated with the state it was typed in. Only a server without
//! XKB has the modifiers tracked from key presses. The foreground window is
//! `_NET_ACTIVE_WINDOW` on the root when a window manager maintains it, and otherwise the input focus,
//! checked at each key press. Titles come from `_NET_WM_NAME`, falling back to `WM_NAME`; the owning
//! process from `_NET_WM_PID`.
//!
//! One X connection ([`Display`]) lives as long as the program and is shared with screen capture:
//! opening a connection per capture races with an X server that resets when its last client leaves.

use std::sync::Arc;

use x11rb::connection::Connection;
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xkb::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    self, AtomEnum, ChangeWindowAttributesAux, ConnectionExt as _, EventMask, Window,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use super::keys::{self, Key, KeySyms, Modifiers};
use super::{Source, SourceError, SourceEvent, WindowInfo};

x11rb::atom_manager! {
    /// The atoms the agent reads.
    pub Atoms: AtomsCookie {
        _NET_ACTIVE_WINDOW,
        _NET_WM_NAME,
        _NET_WM_PID,
        UTF8_STRING,
    }
}

/// The program's one connection to the X server, shared by the source and screen capture.
pub struct Display {
    /// The connection; thread-safe, so capture can run while the source waits for events.
    pub conn: RustConnection,
    /// The root window of the default screen.
    pub root: Window,
    /// Interned atoms.
    pub atoms: Atoms,
}

impl std::fmt::Debug for Display {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Display").field("root", &self.root).finish()
    }
}

impl Display {
    /// Connects to `name` (or `$DISPLAY`).
    ///
    /// # Errors
    /// No X server answers.
    pub fn connect(name: Option<&str>) -> Result<Arc<Display>, SourceError> {
        let (conn, screen) =
            RustConnection::connect(name).map_err(|e| SourceError::Connect(e.to_string()))?;
        let root = conn.setup().roots[screen].root;
        let atoms = Atoms::new(&conn).map_err(lost)?.reply().map_err(lost)?;
        Ok(Arc::new(Display { conn, root, atoms }))
    }

    /// Reads a property as bytes (empty when absent or the window has gone).
    fn property(&self, window: Window, property: u32, type_: u32) -> Option<(u32, Vec<u8>)> {
        let reply = self
            .conn
            .get_property(false, window, property, type_, 0, 4096)
            .ok()?
            .reply()
            .ok()?;
        (reply.type_ != u32::from(AtomEnum::NONE)).then_some((reply.type_, reply.value))
    }

    fn property_u32(&self, window: Window, property: u32, type_: AtomEnum) -> Option<u32> {
        let reply = self
            .conn
            .get_property(false, window, property, type_, 0, 1)
            .ok()?
            .reply()
            .ok()?;
        let value = reply.value32()?.next();
        value
    }

    /// The window `_NET_ACTIVE_WINDOW` names; `None` when no window manager maintains it.
    fn ewmh_active(&self) -> Option<Window> {
        self.property_u32(self.root, self.atoms._NET_ACTIVE_WINDOW, AtomEnum::WINDOW)
    }

    /// The top-level window holding the input focus (used without a window manager).
    fn focused_toplevel(&self) -> Option<Window> {
        let focus = self.conn.get_input_focus().ok()?.reply().ok()?.focus;
        // 0 is None and 1 is PointerRoot: no particular window.
        if focus <= 1 || focus == self.root {
            return None;
        }
        // Walk up to the child of the root: that is the application's window.
        let mut window = focus;
        loop {
            if self.title(window).is_some() {
                return Some(window);
            }
            let tree = self.conn.query_tree(window).ok()?.reply().ok()?;
            if tree.parent == self.root || tree.parent == 0 {
                return Some(window);
            }
            window = tree.parent;
        }
    }

    /// The window's title: `_NET_WM_NAME`, else `WM_NAME`.
    pub fn title(&self, window: Window) -> Option<String> {
        // Asked for with any type: some programs set `_NET_WM_NAME` as STRING rather than UTF8_STRING.
        let (type_, bytes) = self
            .property(window, self.atoms._NET_WM_NAME, AtomEnum::ANY.into())
            .or_else(|| self.property(window, AtomEnum::WM_NAME.into(), AtomEnum::ANY.into()))?;
        Some(if type_ == u32::from(AtomEnum::STRING) {
            // STRING is ISO 8859-1, whose bytes are the first 256 code points.
            bytes.iter().map(|&b| char::from(b)).collect()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }

    /// Title, process and program name of `window`.
    pub fn window_info(&self, window: Window) -> WindowInfo {
        let pid = self.property_u32(window, self.atoms._NET_WM_PID, AtomEnum::CARDINAL);
        let application = pid.and_then(process_name).or_else(|| self.class(window));
        WindowInfo {
            id: u64::from(window),
            title: self.title(window).unwrap_or_default(),
            application,
            pid,
        }
    }

    /// The class part of `WM_CLASS` ("instance\0class\0").
    fn class(&self, window: Window) -> Option<String> {
        let (_, bytes) =
            self.property(window, AtomEnum::WM_CLASS.into(), AtomEnum::STRING.into())?;
        let mut parts = bytes.split(|&b| b == 0).filter(|p| !p.is_empty());
        let instance = parts.next();
        parts
            .next()
            .or(instance)
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }

    /// The foreground top-level window, by EWMH or by input focus.
    pub fn foreground(&self) -> Option<Window> {
        match self.ewmh_active() {
            Some(0) => None,
            Some(window) => Some(window),
            None => self.focused_toplevel(),
        }
    }
}

/// The process name of `pid` on this machine.
fn process_name(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let comm = comm.trim();
    (!comm.is_empty()).then(|| comm.to_string())
}

fn lost(e: impl std::fmt::Display) -> SourceError {
    SourceError::Lost(e.to_string())
}

/// The keyboard state XKB reports: the effective modifiers (held, latched and locked together, as a
/// core modifier mask) and the group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct KeyboardState {
    mods: u16,
    group: u8,
}

/// Asks for XKB events when the modifiers, the keyboard group or the keysyms change, and returns the
/// state now.
///
/// Once a client uses XKB the server may stop sending it the core `MappingNotify` for new keysyms
/// (a layout switched with setxkbmap, a key bound on the fly), so XKB's map events are selected too.
/// Without XKB (a rare server) there is one layout and the first group is right; `None` says so.
fn watch_state(conn: &RustConnection) -> Option<KeyboardState> {
    let version = conn.xkb_use_extension(1, 0).ok()?.reply().ok()?;
    if !version.supported {
        return None;
    }
    let core = xkb::DeviceSpec::from(xkb::ID::USE_CORE_KBD);
    let parts = xkb::StatePart::MODIFIER_STATE | xkb::StatePart::GROUP_STATE;
    let state = xkb::SelectEventsAuxStateNotify {
        affect_state: parts,
        state_details: parts,
    };
    conn.xkb_select_events(
        core,
        xkb::EventType::from(0u16),
        // Map events for new keysyms. x11rb asks for the event types its details name, and map
        // events have none there (their parts are the next two fields), so this adds the type.
        xkb::EventType::MAP_NOTIFY,
        xkb::MapPart::KEY_SYMS,
        xkb::MapPart::KEY_SYMS,
        &xkb::SelectEventsAux::new().state_notify(state),
    )
    .ok()?
    .check()
    .ok()?;
    let state = conn.xkb_get_state(core).ok()?.reply().ok()?;
    Some(KeyboardState {
        mods: u16::from(state.mods),
        group: u8::from(state.group),
    })
}

/// Which core modifier bits (Mod1 to Mod5) mean Num Lock, AltGr and Alt on this server, from its
/// modifier mapping: the bit a key with that keysym is mapped to. Shift, Lock and Control are fixed
/// bits; the rest vary with the keymap (Num Lock is Mod2 and AltGr Mod5 on common layouts, the
/// defaults when no key says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModifierBits {
    num_lock: u16,
    altgr: u16,
    alt: u16,
}

impl ModifierBits {
    const SHIFT: u16 = 1 << 0;
    const LOCK: u16 = 1 << 1;
    const CONTROL: u16 = 1 << 2;

    /// Reads the server's modifier mapping; the common layout's bits if it does not answer.
    fn load(conn: &RustConnection, keymap: &Keymap) -> ModifierBits {
        let mapping = conn
            .get_modifier_mapping()
            .ok()
            .and_then(|c| c.reply().ok());
        let Some(mapping) = mapping else {
            return ModifierBits::COMMON;
        };
        let per_modifier = mapping.keycodes.len() / 8;
        let rows: Vec<&[u8]> = if per_modifier == 0 {
            Vec::new()
        } else {
            mapping.keycodes.chunks(per_modifier).collect()
        };
        ModifierBits::from_rows(&rows, |keycode| keymap.key(u32::from(keycode)))
    }

    const COMMON: ModifierBits = ModifierBits {
        num_lock: 1 << 4,
        altgr: 1 << 7,
        alt: (1 << 3) | (1 << 6),
    };

    /// From the modifier mapping's eight rows of keycodes (Shift, Lock, Control, Mod1 to Mod5).
    fn from_rows(rows: &[&[u8]], key: impl Fn(u8) -> KeySyms) -> ModifierBits {
        let mut found = ModifierBits {
            num_lock: 0,
            altgr: 0,
            alt: 0,
        };
        for (index, row) in rows.iter().enumerate().skip(3).take(5) {
            let bit = 1u16 << index;
            let syms = row.iter().filter(|&&k| k != 0).flat_map(|&k| {
                let key = key(k);
                (0..4).flat_map(move |g| *key.group(g))
            });
            for sym in syms {
                match keys::modifier_of(sym) {
                    Some(keys::ModifierKey::NumLock) => found.num_lock |= bit,
                    // Right Alt is AltGr only where the layout says so (ISO_Level3_Shift).
                    Some(keys::ModifierKey::AltGr) if sym != keys::keysym::ALT_R => {
                        found.altgr |= bit
                    }
                    Some(keys::ModifierKey::Alt | keys::ModifierKey::AltGr) => found.alt |= bit,
                    _ => {}
                }
            }
        }
        // A bit that is both (a key mapped oddly) counts as AltGr: it must not turn text into shortcuts.
        found.alt &= !found.altgr;
        if found.num_lock == 0 {
            found.num_lock = ModifierBits::COMMON.num_lock;
        }
        if found.altgr == 0 {
            found.altgr = ModifierBits::COMMON.altgr & !found.alt & !found.num_lock;
        }
        if found.alt == 0 {
            found.alt = ModifierBits::COMMON.alt & !found.altgr & !found.num_lock;
        }
        found
    }

    /// The modifiers a core modifier mask holds.
    fn modifiers(&self, mask: u16) -> Modifiers {
        Modifiers {
            shift: mask & Self::SHIFT != 0,
            caps_lock: mask & Self::LOCK != 0,
            num_lock: mask & self.num_lock != 0,
            control: mask & Self::CONTROL != 0,
            alt: mask & self.alt != 0,
            altgr: mask & self.altgr != 0,
        }
    }
}

/// The keyboard mapping: the keysyms of every keycode, per group and level.
///
/// Read from XKB when the server has it: its description says how many groups and levels each key
/// has, which the core mapping cannot (there a key's third level and its second group's levels share
/// positions that depend on the key). Servers without XKB give the core mapping.
#[derive(Debug, Default)]
struct Keymap {
    min_keycode: u8,
    keys: Vec<KeySyms>,
}

impl Keymap {
    fn load(conn: &RustConnection, xkb: bool) -> Result<Keymap, SourceError> {
        if xkb {
            if let Some(keymap) = Self::load_xkb(conn) {
                return Ok(keymap);
            }
        }
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let reply = conn
            .get_keyboard_mapping(min, max - min + 1)
            .map_err(lost)?
            .reply()
            .map_err(lost)?;
        let per_keycode = usize::from(reply.keysyms_per_keycode).max(1);
        Ok(Keymap {
            min_keycode: min,
            keys: reply
                .keysyms
                .chunks(per_keycode)
                .map(KeySyms::from_core)
                .collect(),
        })
    }

    /// Every key's symbols from XKB; `None` if the server does not answer.
    fn load_xkb(conn: &RustConnection) -> Option<Keymap> {
        let none = xkb::MapPart::from(0u16);
        let reply = conn
            .xkb_get_map(
                xkb::DeviceSpec::from(xkb::ID::USE_CORE_KBD),
                xkb::MapPart::KEY_SYMS,
                none,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                xkb::VMod::from(0u16),
                0,
                0,
                0,
                0,
                0,
                0,
            )
            .ok()?
            .reply()
            .ok()?;
        let keys = reply
            .map
            .syms_rtrn?
            .iter()
            .map(|k| KeySyms::from_xkb(k.group_info & 0x0f, k.width, &k.syms))
            .collect();
        Some(Keymap {
            min_keycode: reply.first_key_sym,
            keys,
        })
    }

    fn key(&self, keycode: u32) -> KeySyms {
        keycode
            .checked_sub(u32::from(self.min_keycode))
            .and_then(|index| self.keys.get(index as usize))
            .copied()
            .unwrap_or_default()
    }
}

/// Keys and foreground-window changes from an X server.
#[derive(Debug)]
pub struct X11Source {
    display: Arc<Display>,
    keymap: Keymap,
    /// The core modifier bits of Num Lock, Alt and AltGr in the current keymap.
    bits: ModifierBits,
    /// The modifiers in effect: the server's XKB state, or tracked from keys without XKB.
    mods: Modifiers,
    /// The XKB group (layout) in effect: 0 is the first.
    group: u8,
    /// Whether the server has XKB (the keymap, the modifiers and the group come from it).
    xkb: bool,
    /// A dead key waiting for the next letter.
    dead: keys::DeadKeys,
    /// Whether a window manager maintains `_NET_ACTIVE_WINDOW`.
    ewmh: bool,
    /// The foreground window as last reported, and its title.
    foreground: Option<(Window, String)>,
    /// Events found while producing another (a focus change noticed at a key press).
    pending: std::collections::VecDeque<SourceEvent>,
}

impl X11Source {
    /// Starts listening on `display`: selects raw key and button events and property changes.
    ///
    /// # Errors
    /// The server lacks XInput 2.2, or the connection fails.
    pub fn new(display: Arc<Display>) -> Result<X11Source, SourceError> {
        let conn = &display.conn;
        let version = conn
            .xinput_xi_query_version(2, 2)
            .map_err(|e| SourceError::Unsupported(format!("XInput2: {e}")))?
            .reply()
            .map_err(|e| SourceError::Unsupported(format!("XInput2: {e}")))?;
        if (version.major_version, version.minor_version) < (2, 0) {
            return Err(SourceError::Unsupported(format!(
                "XInput {}.{} (need 2.0)",
                version.major_version, version.minor_version
            )));
        }
        let mask = xinput::XIEventMask::RAW_KEY_PRESS
            | xinput::XIEventMask::RAW_KEY_RELEASE
            | xinput::XIEventMask::RAW_BUTTON_PRESS;
        conn.xinput_xi_select_events(
            display.root,
            &[xinput::EventMask {
                deviceid: 1, // XIAllMasterDevices: one event per key, whichever keyboard.
                mask: vec![mask],
            }],
        )
        .map_err(lost)?
        .check()
        .map_err(lost)?;
        conn.change_window_attributes(
            display.root,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )
        .map_err(lost)?
        .check()
        .map_err(lost)?;
        let state = watch_state(conn);
        let keymap = Keymap::load(conn, state.is_some())?;
        let bits = ModifierBits::load(conn, &keymap);
        let mods = match state {
            Some(state) => bits.modifiers(state.mods),
            // Without XKB, the core state is read once and then tracked from key presses.
            None => conn
                .query_pointer(display.root)
                .ok()
                .and_then(|c| c.reply().ok())
                .map(|pointer| bits.modifiers(u16::from(pointer.mask)))
                .unwrap_or_default(),
        };
        let ewmh = display.ewmh_active().is_some();
        Ok(X11Source {
            display,
            keymap,
            bits,
            mods,
            group: state.map_or(0, |s| s.group),
            xkb: state.is_some(),
            dead: keys::DeadKeys::default(),
            ewmh,
            foreground: None,
            pending: Default::default(),
        })
    }

    /// Watches `window` for title changes; harmless if it has gone.
    fn watch(&self, window: Window) {
        let aux = ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE);
        // A window may vanish between the event and this request; the error is ignored on purpose.
        let _ = self.display.conn.change_window_attributes(window, &aux);
    }

    /// Re-reads the foreground window; returns a focus event when it changed.
    fn refresh_foreground(&mut self) -> Option<SourceEvent> {
        let window = self.display.foreground();
        if window == self.foreground.as_ref().map(|(w, _)| *w) {
            return None;
        }
        let info = match window {
            Some(w) => {
                self.watch(w);
                self.display.window_info(w)
            }
            None => WindowInfo::default(),
        };
        self.foreground = window.map(|w| (w, info.title.clone()));
        Some(SourceEvent::Focus(info))
    }

    fn on_key(&mut self, keycode: u32, pressed: bool) -> Option<SourceEvent> {
        let key = self.keymap.key(keycode);
        let levels = key.group(self.group);
        if let Some(modifier) = keys::modifier_of(levels[0]) {
            if !self.xkb {
                self.mods.apply(modifier, pressed);
            }
            return None;
        }
        if !pressed {
            return None;
        }
        let sym = keys::pick_keysym(levels, self.mods);
        let key = self
            .dead
            .press(sym, keys::translate_keysym(sym, self.mods))?;
        if !self.ewmh {
            if let Some(focus) = self.refresh_foreground() {
                self.pending.push_back(SourceEvent::Key(key));
                return Some(focus);
            }
        }
        Some(SourceEvent::Key(key))
    }

    fn on_property(&mut self, event: &xproto::PropertyNotifyEvent) -> Option<SourceEvent> {
        let atoms = self.display.atoms;
        if event.window == self.display.root {
            if event.atom == atoms._NET_ACTIVE_WINDOW {
                self.ewmh = true;
                return self.refresh_foreground();
            }
            return None;
        }
        let title_atom =
            event.atom == atoms._NET_WM_NAME || event.atom == u32::from(AtomEnum::WM_NAME);
        let (window, old_title) = self.foreground.as_ref()?;
        if !title_atom || event.window != *window {
            return None;
        }
        let info = self.display.window_info(*window);
        if &info.title == old_title {
            return None;
        }
        self.foreground = Some((*window, info.title.clone()));
        Some(SourceEvent::Title(info))
    }
}

impl Source for X11Source {
    fn current_window(&mut self) -> Result<Option<WindowInfo>, SourceError> {
        Ok(match self.refresh_foreground() {
            Some(SourceEvent::Focus(info)) if info.id != 0 => Some(info),
            _ => None,
        })
    }

    fn next_event(&mut self) -> Result<Option<SourceEvent>, SourceError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            let event = self.display.conn.wait_for_event().map_err(lost)?;
            let produced = match event {
                Event::XinputRawKeyPress(e) => self.on_key(e.detail, true),
                Event::XinputRawKeyRelease(e) => self.on_key(e.detail, false),
                // A click (not the wheel, buttons 4 to 7) may move the text cursor.
                Event::XinputRawButtonPress(e) if !(4..=7).contains(&e.detail) => {
                    Some(SourceEvent::Key(Key::Navigate))
                }
                Event::PropertyNotify(e) => self.on_property(&e),
                Event::XkbStateNotify(e) => {
                    self.group = u8::from(e.group);
                    self.mods = self.bits.modifiers(u16::from(e.mods));
                    None
                }
                Event::MappingNotify(_)
                | Event::XkbMapNotify(_)
                | Event::XkbNewKeyboardNotify(_) => {
                    self.keymap = Keymap::load(&self.display.conn, self.xkb)?;
                    self.bits = ModifierBits::load(&self.display.conn, &self.keymap);
                    None
                }
                _ => None,
            };
            if let Some(event) = produced {
                return Ok(Some(event));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keymap with `syms` (first level) on keycodes 10, 11, ...
    fn keymap(syms: &[u32]) -> impl Fn(u8) -> KeySyms + '_ {
        move |keycode| {
            let at = usize::from(keycode).wrapping_sub(10);
            syms.get(at)
                .map_or_else(KeySyms::default, |&s| KeySyms::from_core(&[s]))
        }
    }

    #[test]
    fn modifier_bits_follow_the_servers_mapping() {
        use keys::keysym::*;
        let syms = [NUM_LOCK, ALT_L, ISO_LEVEL3_SHIFT, SUPER_L, MODE_SWITCH];
        // Num Lock on Mod3 and AltGr on Mod4 here, unlike the common layout.
        let rows: [&[u8]; 8] = [&[], &[], &[], &[11], &[], &[10], &[12, 14], &[13]];
        let bits = ModifierBits::from_rows(&rows, keymap(&syms));
        assert_eq!(bits.num_lock, 1 << 5);
        assert_eq!(bits.altgr, 1 << 6);
        assert_eq!(bits.alt, (1 << 3) | (1 << 7));
        let m = bits.modifiers((1 << 5) | (1 << 6) | ModifierBits::SHIFT);
        assert!(m.num_lock && m.altgr && m.shift && !m.alt && !m.caps_lock && !m.control);
        // A server that maps none of them gets the common layout's bits.
        assert_eq!(
            ModifierBits::from_rows(&[&[] as &[u8]; 8], keymap(&[])),
            ModifierBits::COMMON
        );
    }
}
