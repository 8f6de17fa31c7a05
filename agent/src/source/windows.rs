//! The Windows source: a low-level keyboard hook and the foreground window.
//!
//! The hook (`WH_KEYBOARD_LL`) sees every key press in the user's session; it translates the virtual
//! key with the foreground thread's keyboard layout (`ToUnicodeEx`, told not to disturb dead-key state)
//! and its own record of the modifiers. Foreground and title changes come from WinEvent hooks
//! (`EVENT_SYSTEM_FOREGROUND`, `EVENT_OBJECT_NAMECHANGE`). Hooks need a message loop on the thread that
//! installed them, so they run on a thread of their own and hand events over a channel.
//!
//! Password fields: whenever the foreground window or the focus changes (`EVENT_OBJECT_FOCUS`), and
//! before each key when the focused window handle differs from the last one looked at, the source
//! asks whether the focused control is a password field and reports a change as
//! [`SourceEvent::PasswordField`]; keys typed while it is one are then dropped unread. The answer
//! comes from UI Automation (`IUIAutomation::GetFocusedElement`, `CurrentIsPassword`), which knows
//! password boxes in browsers, WPF and UWP apps, or from the classic test for Win32 edit controls
//! (the focused window, from `GetGUIThreadInfo`, is an edit class with `ES_PASSWORD`), either of
//! which saying "password" is enough. Each key costs one `GetGUIThreadInfo` call; UI Automation is
//! asked only on a focus change, and on a thread of its own (see [`PasswordWatch`]).
//!
//! This runs in the user's session (the per-user helper); the Windows service part only spools and
//! ships.

use std::sync::{mpsc, Arc, Mutex};

use windows::core::PWSTR;
use windows::Win32::Foundation::{CloseHandle, HWND, LPARAM, LRESULT, WPARAM};
use windows::Win32::System::Com::{
    CoCreateInstance, CoInitializeEx, CLSCTX_INPROC_SERVER, COINIT_MULTITHREADED,
};
use windows::Win32::System::Threading::{
    OpenProcess, QueryFullProcessImageNameW, PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION,
};
use windows::Win32::UI::Accessibility::{
    CUIAutomation, IUIAutomation, SetWinEventHook, HWINEVENTHOOK,
};
use windows::Win32::UI::Input::KeyboardAndMouse::{GetKeyboardLayout, ToUnicodeEx};
use windows::Win32::UI::WindowsAndMessaging::{
    CallNextHookEx, DispatchMessageW, GetClassNameW, GetForegroundWindow, GetGUIThreadInfo,
    GetMessageW, GetWindowLongW, GetWindowTextLengthW, GetWindowTextW, GetWindowThreadProcessId,
    SetWindowsHookExW, TranslateMessage, ES_PASSWORD, GUITHREADINFO, GWL_STYLE, KBDLLHOOKSTRUCT,
    MSG, WH_KEYBOARD_LL, WM_KEYDOWN, WM_KEYUP, WM_SYSKEYDOWN, WM_SYSKEYUP,
};

use super::keys::{Key, ModifierKey, Modifiers};
use super::{Source, SourceError, SourceEvent, WindowInfo};

/// Virtual-key codes this module needs.
pub mod vk {
    #![allow(missing_docs)]
    pub const BACK: u32 = 0x08;
    pub const TAB: u32 = 0x09;
    pub const RETURN: u32 = 0x0d;
    pub const SHIFT: u32 = 0x10;
    pub const CONTROL: u32 = 0x11;
    pub const MENU: u32 = 0x12;
    pub const CAPITAL: u32 = 0x14;
    pub const ESCAPE: u32 = 0x1b;
    pub const PRIOR: u32 = 0x21;
    pub const DOWN: u32 = 0x28;
    pub const DELETE: u32 = 0x2e;
    pub const LWIN: u32 = 0x5b;
    pub const RWIN: u32 = 0x5c;
    pub const LSHIFT: u32 = 0xa0;
    pub const RSHIFT: u32 = 0xa1;
    pub const LCONTROL: u32 = 0xa2;
    pub const RCONTROL: u32 = 0xa3;
    pub const LMENU: u32 = 0xa4;
    pub const RMENU: u32 = 0xa5;
}

/// The modifier a virtual key is, if it is one. Right Alt is AltGr on European layouts.
pub fn vk_modifier(code: u32) -> Option<ModifierKey> {
    Some(match code {
        vk::SHIFT | vk::LSHIFT | vk::RSHIFT => ModifierKey::Shift,
        vk::CAPITAL => ModifierKey::CapsLock,
        vk::CONTROL | vk::LCONTROL | vk::RCONTROL => ModifierKey::Control,
        vk::MENU | vk::LMENU | vk::LWIN | vk::RWIN => ModifierKey::Alt,
        vk::RMENU => ModifierKey::AltGr,
        _ => return None,
    })
}

/// Translates a virtual key pressed with `mods`; `layout_char` is what the keyboard layout says the
/// key types (from `ToUnicodeEx`), if anything.
pub fn translate_vk(code: u32, mods: Modifiers, layout_char: Option<char>) -> Key {
    if vk_modifier(code).is_some() {
        return Key::Modifier;
    }
    // AltGr arrives as Ctrl+Alt on Windows; it types characters, it is not a shortcut.
    let shortcut = (mods.control || mods.alt) && !mods.altgr;
    if shortcut {
        return Key::Shortcut;
    }
    match code {
        vk::BACK => Key::Backspace,
        vk::DELETE => Key::Delete,
        vk::RETURN => Key::Enter,
        vk::TAB => Key::Tab,
        vk::ESCAPE => Key::Escape,
        vk::PRIOR..=vk::DOWN => Key::Navigate,
        _ => match layout_char {
            Some(c) if !c.is_control() => Key::Char(c),
            _ => Key::Other,
        },
    }
}

/// What the keyboard layout of the foreground thread types for `code` with `mods`.
fn layout_char(code: u32, scan: u32, mods: Modifiers) -> Option<char> {
    let mut state = [0u8; 256];
    let down = 0x80;
    if mods.shift {
        state[vk::SHIFT as usize] = down;
    }
    if mods.caps_lock {
        state[vk::CAPITAL as usize] = 0x01;
    }
    if mods.altgr {
        state[vk::CONTROL as usize] = down;
        state[vk::MENU as usize] = down;
    }
    let mut out = [0u16; 8];
    // SAFETY: plain Win32 calls on values we own; flag 0x4 leaves the thread's dead-key state alone.
    let written = unsafe {
        let thread = GetWindowThreadProcessId(GetForegroundWindow(), None);
        let layout = GetKeyboardLayout(thread);
        ToUnicodeEx(code, scan, &state, &mut out, 0x4, Some(layout))
    };
    if written <= 0 {
        return None;
    }
    char::decode_utf16(out[..written as usize].iter().copied())
        .next()?
        .ok()
}

/// Title, process id and program name of a window.
pub fn window_info(hwnd: HWND) -> WindowInfo {
    // SAFETY: reading a window's text and owner is safe for any handle; a stale one yields nothing.
    let (title, pid) = unsafe {
        let len = GetWindowTextLengthW(hwnd).max(0) as usize;
        let mut buf = vec![0u16; len + 1];
        let n = GetWindowTextW(hwnd, &mut buf).max(0) as usize;
        let mut pid = 0u32;
        GetWindowThreadProcessId(hwnd, Some(&mut pid));
        (String::from_utf16_lossy(&buf[..n]), pid)
    };
    WindowInfo {
        id: hwnd.0 as usize as u64,
        title,
        application: (pid != 0).then(|| process_name(pid)).flatten(),
        pid: (pid != 0).then_some(pid),
    }
}

/// The executable's file name for `pid`.
fn process_name(pid: u32) -> Option<String> {
    // SAFETY: the handle is closed before returning; the buffer outlives the call.
    unsafe {
        let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, false, pid).ok()?;
        let mut buf = [0u16; 1024];
        let mut len = buf.len() as u32;
        let ok = QueryFullProcessImageNameW(
            process,
            PROCESS_NAME_WIN32,
            PWSTR(buf.as_mut_ptr()),
            &mut len,
        );
        let _ = CloseHandle(process);
        ok.ok()?;
        let path = String::from_utf16_lossy(&buf[..len as usize]);
        path.rsplit(['\\', '/']).next().map(str::to_string)
    }
}

/// The control with the keyboard focus in the foreground window's thread, if any.
pub fn focused_control() -> Option<HWND> {
    // SAFETY: plain Win32 queries into a struct we own, its size set as the API requires.
    unsafe {
        let thread = GetWindowThreadProcessId(GetForegroundWindow(), None);
        if thread == 0 {
            return None;
        }
        let mut info = GUITHREADINFO {
            cbSize: std::mem::size_of::<GUITHREADINFO>() as u32,
            ..Default::default()
        };
        GetGUIThreadInfo(thread, &mut info).ok()?;
        (!info.hwndFocus.0.is_null()).then_some(info.hwndFocus)
    }
}

/// Whether `hwnd` is a classic Win32 edit control that hides what is typed: an edit class
/// (`Edit`, `RichEdit20W`, `RICHEDIT50W`, WinForms' `WindowsForms10.EDIT...`) with `ES_PASSWORD`.
pub fn is_password_control(hwnd: HWND) -> bool {
    let mut class = [0u16; 128];
    // SAFETY: reading the class name and style of a window works for any handle, also another
    // process's; a stale handle yields 0.
    let (len, style) = unsafe {
        (
            GetClassNameW(hwnd, &mut class),
            GetWindowLongW(hwnd, GWL_STYLE),
        )
    };
    let class = String::from_utf16_lossy(&class[..len.max(0) as usize]).to_ascii_lowercase();
    class.contains("edit") && style & ES_PASSWORD != 0
}

/// Asks UI Automation whether the focused element is a password field; `None` when it cannot tell.
fn uia_says_password(uia: &IUIAutomation) -> Option<bool> {
    // SAFETY: COM calls on an interface created on this thread.
    unsafe {
        let element = uia.GetFocusedElement().ok()?;
        element.CurrentIsPassword().ok().map(|b| b.as_bool())
    }
}

/// What is known about the focused control. Both threads that learn something (the hook thread and
/// the UI Automation thread) update it and report under one lock, so the pipeline hears the changes
/// in order.
#[derive(Debug, Default)]
struct FocusState {
    /// The focused window the answers are for.
    focus: Option<isize>,
    /// The classic test's answer for it.
    classic: bool,
    /// UI Automation's answer, once it gave one for this focused window.
    uia: Option<bool>,
    /// What the pipeline was last told.
    reported: bool,
}

impl FocusState {
    /// Either test saying "password" is enough.
    fn password(&self) -> bool {
        self.classic || self.uia == Some(true)
    }

    /// Sends the answer when it differs from what the pipeline was last told.
    fn report(&mut self, tx: &mpsc::Sender<SourceEvent>) {
        let password = self.password();
        if password != self.reported {
            self.reported = password;
            let _ = tx.send(SourceEvent::PasswordField(password));
        }
    }
}

/// Tells the pipeline whether the focused control is a password field.
///
/// The hook thread calls it on every focus change and before each key; those calls cost one
/// `GetGUIThreadInfo` and, for a newly focused window, the classic test. UI Automation, which may
/// have to wait for a busy program, is asked on a thread of its own: a low-level keyboard hook that
/// does not return within the system's timeout is removed by Windows without notice, so nothing slow
/// may run on the hook thread. Its answer arrives a moment after the focus change; the text pipeline
/// discards the keys it has not yet scanned when a password field is reported.
pub struct PasswordWatch {
    state: Arc<Mutex<FocusState>>,
    tx: mpsc::Sender<SourceEvent>,
    /// Requests to the UI Automation thread (the focused window to ask about); `None` without it.
    ask: Option<mpsc::Sender<Option<isize>>>,
}

impl std::fmt::Debug for PasswordWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordWatch")
            .field("uia", &self.ask.is_some())
            .field(
                "state",
                &*self.state.lock().unwrap_or_else(|p| p.into_inner()),
            )
            .finish()
    }
}

impl PasswordWatch {
    /// Starts the UI Automation thread. Without UI Automation the classic test alone answers:
    /// Wine 8 (Debian 12), where the Windows tests run, cannot create the `CUIAutomation` client
    /// object at all, so under Wine only the classic test is exercised; on Windows both are.
    pub fn new(tx: mpsc::Sender<SourceEvent>) -> PasswordWatch {
        let state = Arc::new(Mutex::new(FocusState::default()));
        let (ask, requests) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let thread_state = Arc::clone(&state);
        let thread_tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("ward-uia".into())
            .spawn(move || uia_thread(thread_state, thread_tx, requests, ready_tx));
        let available = spawned.is_ok() && ready.recv().unwrap_or(false);
        if !available {
            tracing::warn!("UI Automation is not available: password fields are recognised in classic edit controls only");
        }
        PasswordWatch {
            state,
            tx,
            ask: available.then_some(ask),
        }
    }

    /// A new foreground window: the pipeline starts it with no password field, so decide afresh.
    pub fn foreground_changed(&self) {
        {
            let mut state = self.lock();
            state.reported = false;
            state.focus = None;
        }
        self.focus_changed();
    }

    /// The focus moved (a focus event, or seen before a key): the classic answer at once, UI
    /// Automation's when it comes.
    pub fn focus_changed(&self) {
        let focused = focused_control();
        let focus = focused.map(|h| h.0 as isize);
        {
            let mut state = self.lock();
            if state.focus != focus {
                // Another window: UI Automation's last answer was about something else. Within the
                // same window (a browser page) it stands until the new one arrives, erring towards
                // dropping keys rather than reading a password.
                state.uia = None;
            }
            state.focus = focus;
            state.classic = focused.is_some_and(is_password_control);
            state.report(&self.tx);
        }
        if let Some(ask) = &self.ask {
            let _ = ask.send(focus);
        }
    }

    /// Before a key: nothing to do unless the focused window changed and its event has not come yet.
    pub fn before_key(&self) {
        let focus = focused_control().map(|h| h.0 as isize);
        if self.lock().focus != focus {
            self.focus_changed();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FocusState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Answers the hook thread's questions with UI Automation, in a COM apartment of its own.
fn uia_thread(
    state: Arc<Mutex<FocusState>>,
    tx: mpsc::Sender<SourceEvent>,
    requests: mpsc::Receiver<Option<isize>>,
    ready: mpsc::Sender<bool>,
) {
    // SAFETY: COM initialisation for this thread; creating an in-process COM object used only here.
    let uia = unsafe {
        let _ = CoInitializeEx(None, COINIT_MULTITHREADED);
        CoCreateInstance::<_, IUIAutomation>(&CUIAutomation, None, CLSCTX_INPROC_SERVER).ok()
    };
    let _ = ready.send(uia.is_some());
    let Some(uia) = uia else { return };
    while let Ok(mut focus) = requests.recv() {
        // Only the latest focus matters.
        while let Ok(later) = requests.try_recv() {
            focus = later;
        }
        let answer = uia_says_password(&uia);
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        if state.focus == focus {
            state.uia = answer;
            state.report(&tx);
        }
    }
}

std::thread_local! {
    /// The hook thread's state; hook procedures have no context argument.
    static HOOK: std::cell::RefCell<Option<HookState>> = const { std::cell::RefCell::new(None) };
}

struct HookState {
    tx: mpsc::Sender<SourceEvent>,
    mods: Modifiers,
    foreground: Option<(isize, String)>,
    passwords: PasswordWatch,
}

unsafe extern "system" fn keyboard_proc(code: i32, wparam: WPARAM, lparam: LPARAM) -> LRESULT {
    if code >= 0 {
        // SAFETY: for WH_KEYBOARD_LL, lparam points at a KBDLLHOOKSTRUCT for the duration of the call.
        let info = unsafe { &*(lparam.0 as *const KBDLLHOOKSTRUCT) };
        let pressed = matches!(wparam.0 as u32, WM_KEYDOWN | WM_SYSKEYDOWN);
        let released = matches!(wparam.0 as u32, WM_KEYUP | WM_SYSKEYUP);
        HOOK.with_borrow_mut(|state| {
            let Some(state) = state else { return };
            if let Some(m) = vk_modifier(info.vkCode) {
                if pressed || released {
                    state.mods.apply(m, pressed);
                }
                return;
            }
            if pressed {
                // Before the key, so a key typed into a password field is never read.
                state.passwords.before_key();
                let c = layout_char(info.vkCode, info.scanCode, state.mods);
                let _ = state
                    .tx
                    .send(SourceEvent::Key(translate_vk(info.vkCode, state.mods, c)));
            }
        });
    }
    // SAFETY: passing the event on is what every hook must do.
    unsafe { CallNextHookEx(None, code, wparam, lparam) }
}

const EVENT_SYSTEM_FOREGROUND: u32 = 0x0003;
const EVENT_OBJECT_FOCUS: u32 = 0x8005;
const EVENT_OBJECT_NAMECHANGE: u32 = 0x800c;
const WINEVENT_OUTOFCONTEXT: u32 = 0;

unsafe extern "system" fn win_event_proc(
    _hook: HWINEVENTHOOK,
    event: u32,
    hwnd: HWND,
    id_object: i32,
    _id_child: i32,
    _thread: u32,
    _time: u32,
) {
    if event == EVENT_OBJECT_FOCUS {
        // Any object: focus moving between controls, or inside a browser page.
        HOOK.with_borrow_mut(|state| {
            if let Some(state) = state {
                state.passwords.focus_changed();
            }
        });
        return;
    }
    // Only the window itself (OBJID_WINDOW = 0), not its controls.
    if id_object != 0 || hwnd.0.is_null() {
        return;
    }
    // SAFETY: plain Win32 query.
    let foreground = unsafe { GetForegroundWindow() };
    if event == EVENT_OBJECT_NAMECHANGE && hwnd != foreground {
        return;
    }
    let info = window_info(hwnd);
    HOOK.with_borrow_mut(|state| {
        let Some(state) = state else { return };
        let key = hwnd.0 as isize;
        let event = match &state.foreground {
            Some((w, title)) if *w == key && *title == info.title => return,
            Some((w, _)) if *w == key => SourceEvent::Title(info.clone()),
            _ => SourceEvent::Focus(info.clone()),
        };
        let focus = matches!(event, SourceEvent::Focus(_));
        state.foreground = Some((key, info.title));
        let _ = state.tx.send(event);
        if focus {
            // A new window starts with no password field as far as the pipeline knows.
            state.passwords.foreground_changed();
        }
    });
}

/// Keys and foreground-window changes from the hooks of the user's session.
#[derive(Debug)]
pub struct WindowsSource {
    rx: mpsc::Receiver<SourceEvent>,
}

impl WindowsSource {
    /// Installs the hooks on a thread of their own.
    ///
    /// # Errors
    /// The keyboard hook could not be installed (no interactive session).
    pub fn new() -> Result<WindowsSource, SourceError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("ward-hooks".into())
            .spawn(move || hook_thread(tx, ready_tx))
            .map_err(|e| SourceError::Unsupported(e.to_string()))?;
        ready_rx
            .recv()
            .map_err(|_| SourceError::Unsupported("hook thread ended".into()))??;
        Ok(WindowsSource { rx })
    }
}

fn hook_thread(tx: mpsc::Sender<SourceEvent>, ready: mpsc::Sender<Result<(), SourceError>>) {
    let passwords = PasswordWatch::new(tx.clone());
    HOOK.with_borrow_mut(|s| {
        *s = Some(HookState {
            tx,
            mods: Modifiers::default(),
            foreground: None,
            passwords,
        })
    });
    // SAFETY: the procedures live for the program; the hooks are removed when the thread ends.
    let hooked = unsafe {
        SetWindowsHookExW(WH_KEYBOARD_LL, Some(keyboard_proc), None, 0).map(|_| {
            SetWinEventHook(
                EVENT_SYSTEM_FOREGROUND,
                EVENT_SYSTEM_FOREGROUND,
                None,
                Some(win_event_proc),
                0,
                0,
                WINEVENT_OUTOFCONTEXT,
            );
            SetWinEventHook(
                EVENT_OBJECT_FOCUS,
                EVENT_OBJECT_FOCUS,
                None,
                Some(win_event_proc),
                0,
                0,
                WINEVENT_OUTOFCONTEXT,
            );
            SetWinEventHook(
                EVENT_OBJECT_NAMECHANGE,
                EVENT_OBJECT_NAMECHANGE,
                None,
                Some(win_event_proc),
                0,
                0,
                WINEVENT_OUTOFCONTEXT,
            );
        })
    };
    let failed = hooked.is_err();
    let _ = ready.send(hooked.map_err(|e| SourceError::Unsupported(format!("keyboard hook: {e}"))));
    if failed {
        return;
    }
    let mut msg = MSG::default();
    // SAFETY: the standard message loop the hooks need.
    unsafe {
        while GetMessageW(&mut msg, None, 0, 0).as_bool() {
            let _ = TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
    }
}

impl Source for WindowsSource {
    fn current_window(&mut self) -> Result<Option<WindowInfo>, SourceError> {
        // SAFETY: plain Win32 query.
        let hwnd = unsafe { GetForegroundWindow() };
        Ok((!hwnd.0.is_null()).then(|| window_info(hwnd)))
    }

    fn next_event(&mut self) -> Result<Option<SourceEvent>, SourceError> {
        Ok(self.rx.recv().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use windows::core::w;
    use windows::Win32::UI::Input::KeyboardAndMouse::SetFocus;
    use windows::Win32::UI::WindowsAndMessaging::{
        CreateWindowExW, DestroyWindow, SetForegroundWindow, WINDOW_EX_STYLE, WINDOW_STYLE,
        WS_CHILD, WS_OVERLAPPEDWINDOW, WS_VISIBLE,
    };

    /// A child control of `parent`.
    unsafe fn control(
        parent: HWND,
        class: windows::core::PCWSTR,
        style: WINDOW_STYLE,
        y: i32,
    ) -> HWND {
        // SAFETY: the caller owns `parent` and destroys it (and so its children).
        unsafe {
            CreateWindowExW(
                WINDOW_EX_STYLE(0),
                class,
                w!(""),
                WS_CHILD | WS_VISIBLE | style,
                10,
                y,
                200,
                24,
                Some(parent),
                None,
                None,
                None,
            )
            .expect("control created")
        }
    }

    #[test]
    fn a_focused_password_edit_control_is_a_password_field() {
        // SAFETY: windows created, focused and destroyed within the test, on its thread.
        unsafe {
            let parent = CreateWindowExW(
                WINDOW_EX_STYLE(0),
                w!("STATIC"),
                w!("Sign in"),
                WS_OVERLAPPEDWINDOW | WS_VISIBLE,
                0,
                0,
                400,
                200,
                None,
                None,
                None,
                None,
            )
            .expect("window created");
            let password = control(parent, w!("EDIT"), WINDOW_STYLE(ES_PASSWORD as u32), 10);
            let plain = control(parent, w!("EDIT"), WINDOW_STYLE(0), 40);
            let rich = control(parent, w!("STATIC"), WINDOW_STYLE(ES_PASSWORD as u32), 70);
            assert!(is_password_control(password));
            assert!(!is_password_control(plain));
            // The same style bit means something else outside edit controls.
            assert!(!is_password_control(rich));
            assert!(!is_password_control(parent));

            let _ = SetForegroundWindow(parent);
            SetFocus(Some(password)).expect("focus");
            assert_eq!(focused_control(), Some(password));
            // Under Wine there is no UI Automation (see `PasswordWatch::new`): these are the
            // classic test's answers there, and either's on Windows.
            let (tx, rx) = mpsc::channel();
            let watch = PasswordWatch::new(tx);
            let next = || rx.recv_timeout(std::time::Duration::from_secs(5)).ok();
            watch.foreground_changed();
            assert_eq!(next(), Some(SourceEvent::PasswordField(true)), "{watch:?}");
            watch.before_key();
            assert!(rx.try_recv().is_err(), "no change, no event");

            // The focus moves before its event arrives: the next key's check sees it.
            SetFocus(Some(plain)).expect("focus");
            assert_eq!(focused_control(), Some(plain));
            watch.before_key();
            assert_eq!(next(), Some(SourceEvent::PasswordField(false)), "{watch:?}");
            watch.focus_changed();
            assert!(rx.try_recv().is_err(), "no change, no event");
            SetFocus(Some(password)).expect("focus");
            watch.focus_changed();
            assert_eq!(next(), Some(SourceEvent::PasswordField(true)));
            // A new foreground window: reported again, as the pipeline forgot on the window change.
            watch.foreground_changed();
            assert_eq!(next(), Some(SourceEvent::PasswordField(true)));
            let _ = DestroyWindow(parent);
        }
    }

    #[test]
    fn hook_translation_handles_editing_keys_and_shortcuts() {
        let plain = Modifiers::default();
        assert_eq!(translate_vk(vk::BACK, plain, None), Key::Backspace);
        assert_eq!(translate_vk(vk::RETURN, plain, Some('\r')), Key::Enter);
        assert_eq!(translate_vk(0x25, plain, None), Key::Navigate); // VK_LEFT
        assert_eq!(translate_vk(0x41, plain, Some('a')), Key::Char('a'));
        assert_eq!(translate_vk(vk::LSHIFT, plain, None), Key::Modifier);
        let ctrl = Modifiers {
            control: true,
            ..plain
        };
        assert_eq!(translate_vk(0x56, ctrl, Some('\u{16}')), Key::Shortcut); // Ctrl+V
        let altgr = Modifiers {
            control: true,
            alt: true,
            altgr: true,
            ..plain
        };
        assert_eq!(translate_vk(0x45, altgr, Some('€')), Key::Char('€'));
    }

    #[test]
    fn layout_translation_applies_shift() {
        let shift = Modifiers {
            shift: true,
            ..Modifiers::default()
        };
        assert_eq!(layout_char(0x41, 0x1e, Modifiers::default()), Some('a'));
        assert_eq!(layout_char(0x41, 0x1e, shift), Some('A'));
        assert_eq!(layout_char(0x31, 0x02, shift), Some('!'));
    }

    #[test]
    fn window_titles_are_read() {
        // SAFETY: a window created and destroyed within the test.
        unsafe {
            let hwnd = CreateWindowExW(
                WINDOW_EX_STYLE(0),
                w!("STATIC"),
                w!("how to tie a noose - Search"),
                WS_OVERLAPPEDWINDOW,
                0,
                0,
                200,
                100,
                None,
                None,
                None,
                None,
            )
            .expect("window created");
            let info = window_info(hwnd);
            assert_eq!(info.title, "how to tie a noose - Search");
            assert_eq!(info.pid, Some(std::process::id()));
            assert!(info
                .application
                .as_deref()
                .is_some_and(|a| a.to_ascii_lowercase().ends_with(".exe")));
            let _ = DestroyWindow(hwnd);
        }
    }
}
