//! Windows capture with xcap: the monitor showing the foreground window.

use xcap::{Monitor, Window};

use super::{CaptureError, Capturer, Image};
use crate::source::WindowInfo;

/// Captures with xcap.
#[derive(Debug, Default)]
pub struct XcapCapturer;

fn failed(e: xcap::XCapError) -> CaptureError {
    CaptureError::Failed(e.to_string())
}

/// The monitor showing the window with handle `id`, else the primary one.
fn monitor_of(id: u64) -> Result<Monitor, CaptureError> {
    let of_window = Window::all()
        .ok()
        .and_then(|all| {
            all.into_iter()
                .find(|w| w.id().is_ok_and(|wid| u64::from(wid) == id))
        })
        .and_then(|w| w.current_monitor().ok());
    if let Some(monitor) = of_window {
        return Ok(monitor);
    }
    let monitors = Monitor::all().map_err(failed)?;
    let primary = monitors
        .iter()
        .position(|m| m.is_primary().unwrap_or(false))
        .unwrap_or(0);
    monitors
        .into_iter()
        .nth(primary)
        .ok_or_else(|| CaptureError::Failed("no monitor".into()))
}

impl Capturer for XcapCapturer {
    fn capture(&self, window: &WindowInfo) -> Result<Image, CaptureError> {
        let rgba = monitor_of(window.id)?.capture_image().map_err(failed)?;
        let (width, height) = (rgba.width(), rgba.height());
        let rgb = rgba
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        Ok(Image { width, height, rgb })
    }
}
