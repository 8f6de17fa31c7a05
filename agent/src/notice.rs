//! The monitoring notice shown at logon: pupils and staff are told, in the school's words, that
//! they are monitored (no covert monitoring).
//!
//! On X11 it is a small window of its own (its own short-lived connection, so its events do not mix
//! with the source's) that closes on a click, a key, or after the configured time. Each showing is
//! logged, recorded in the status file and in the session's record (with the [`fingerprint`] of
//! the text), from which every heartbeat tells the collector that this user was shown it.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of the notice text: which wording a user was shown, without sending the wording.
pub fn fingerprint(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Wraps `text` into lines of at most `width` characters, on word boundaries.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Shows the notice on X11 until dismissed or `duration` passes.
#[cfg(all(unix, not(target_os = "macos")))]
pub fn show_x11(
    display: Option<&str>,
    text: &str,
    duration: std::time::Duration,
) -> anyhow::Result<()> {
    use std::time::Instant;
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{
        AtomEnum, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, PropMode,
        WindowClass,
    };
    use x11rb::protocol::Event;
    use x11rb::wrapper::ConnectionExt as _;

    let (conn, screen_num) = x11rb::connect(display)?;
    let screen = &conn.setup().roots[screen_num];
    let lines = wrap(text, 64);
    let (char_w, line_h) = (6u16, 15u16);
    let width = 64 * char_w + 40;
    let height = (lines.len() as u16 + 3) * line_h + 30;
    let window = conn.generate_id()?;
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        window,
        screen.root,
        ((screen.width_in_pixels.saturating_sub(width)) / 2) as i16,
        ((screen.height_in_pixels.saturating_sub(height)) / 3) as i16,
        width,
        height,
        1,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new()
            .background_pixel(screen.white_pixel)
            .event_mask(EventMask::EXPOSURE | EventMask::BUTTON_PRESS | EventMask::KEY_PRESS),
    )?;
    let title = "Monitoring notice";
    conn.change_property8(
        PropMode::REPLACE,
        window,
        AtomEnum::WM_NAME,
        AtomEnum::STRING,
        title.as_bytes(),
    )?;
    let font = conn.generate_id()?;
    conn.open_font(font, b"fixed")?;
    let gc = conn.generate_id()?;
    conn.create_gc(
        gc,
        window,
        &CreateGCAux::new()
            .foreground(screen.black_pixel)
            .background(screen.white_pixel)
            .font(font),
    )?;
    conn.map_window(window)?;
    conn.flush()?;
    let draw = |conn: &x11rb::rust_connection::RustConnection| -> anyhow::Result<()> {
        let mut y = line_h as i16 + 10;
        for line in lines
            .iter()
            .map(String::as_str)
            .chain(["", "(click or press a key to close)"])
        {
            // Core fonts speak Latin-1; anything else is shown as '?'.
            let bytes: Vec<u8> = line
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect();
            conn.image_text8(window, gc, 20, y, &bytes)?;
            y += line_h as i16;
        }
        conn.flush()?;
        Ok(())
    };
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        match conn.poll_for_event()? {
            Some(Event::Expose(_)) => draw(&conn)?,
            Some(Event::ButtonPress(_) | Event::KeyPress(_)) => break,
            Some(_) => {}
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    conn.destroy_window(window)?;
    conn.flush()?;
    Ok(())
}

/// Shows the notice in a message box on the user's desktop until acknowledged.
#[cfg(windows)]
pub fn show_windows(text: &str) {
    use windows::core::{w, PCWSTR};
    use windows::Win32::UI::WindowsAndMessaging::{
        MessageBoxW, MB_ICONINFORMATION, MB_OK, MB_SETFOREGROUND, MB_TOPMOST,
    };
    let wide: Vec<u16> = text.encode_utf16().chain([0]).collect();
    // SAFETY: the text outlives the call; no owner window.
    unsafe {
        MessageBoxW(
            None,
            PCWSTR(wide.as_ptr()),
            w!("Monitoring notice"),
            MB_OK | MB_ICONINFORMATION | MB_SETFOREGROUND | MB_TOPMOST,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{fingerprint, wrap};

    #[test]
    fn the_fingerprint_is_the_texts_sha256() {
        assert_eq!(
            fingerprint("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(
            fingerprint("You are monitored."),
            fingerprint("You are monitored")
        );
    }

    #[test]
    fn wrapping_keeps_words_whole() {
        let lines = wrap("one two three four five six", 9);
        assert_eq!(lines, ["one two", "three", "four five", "six"]);
        assert!(wrap("", 10).is_empty());
    }
}
