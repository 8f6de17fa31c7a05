//! Where typed text and window changes come from, behind one small trait.
//!
//! The rest of the agent sees only [`SourceEvent`]s: a translated key, the foreground window changing,
//! or its title changing. It never learns which platform produced them, so the text pipeline, the
//! detector and the spool are tested once and run the same on X11 and Windows.
//!
//! Constraint: events carry single keys and window metadata only. Nothing here buffers, logs or stores
//! typed text; that is the text assembler's job, and it keeps text in memory only.

#[cfg(all(unix, not(target_os = "macos")))]
pub mod atspi;
pub mod keys;
#[cfg(windows)]
pub mod windows;
#[cfg(all(unix, not(target_os = "macos")))]
pub mod x11;

pub use keys::Key;

/// The foreground window as a source sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WindowInfo {
    /// A platform id, stable while the window lives (X11 window id, Windows HWND).
    pub id: u64,
    /// The title; empty when the window has none.
    pub title: String,
    /// The owning program's name (process name, or the window class when the process is unknown).
    pub application: Option<String>,
    /// The owning process, where the platform tells.
    pub pid: Option<u32>,
}

/// One thing that happened at the keyboard or on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// A key went down, already translated with the keyboard layout and modifiers.
    Key(Key),
    /// A different window is now in the foreground.
    Focus(WindowInfo),
    /// The foreground window's title changed (browser tabs, documents).
    Title(WindowInfo),
    /// The focused control inside the foreground window is (`true`) or stops being (`false`) a
    /// password field, as the platform's accessibility API reports it (AT-SPI role "password text",
    /// UI Automation `IsPassword`). While it is, keys are dropped unread.
    PasswordField(bool),
}

/// A failure of a source; the agent logs it and keeps running without that source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The display or desktop session could not be reached.
    #[error("cannot connect to the display: {0}")]
    Connect(String),
    /// A needed platform feature is missing (an X extension, a hook).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The connection broke while running.
    #[error("connection lost: {0}")]
    Lost(String),
}

/// A platform source of keys and window changes.
///
/// Implementations block in [`Source::next_event`]; the agent runs each source on its own thread and
/// forwards events to the async pipeline.
pub trait Source: Send {
    /// The foreground window right now, so the pipeline starts with the right window.
    ///
    /// # Errors
    /// The platform could not be asked.
    fn current_window(&mut self) -> Result<Option<WindowInfo>, SourceError>;

    /// Waits for the next event. `Ok(None)` means the source has ended (the session closed).
    ///
    /// # Errors
    /// The connection to the platform broke.
    fn next_event(&mut self) -> Result<Option<SourceEvent>, SourceError>;
}
