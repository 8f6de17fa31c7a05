//! X11 capture: `GetImage` of the root window over the rectangle of the monitor showing the window.
//!
//! Pixel-identical to what xcap produces on X11, without its pipewire/wayland/dbus build
//! dependencies; and it reuses the program's one X connection (see `source::x11::Display`).

use std::sync::Arc;

use x11rb::connection::Connection;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder};

use super::{CaptureError, Capturer, Image};
use crate::source::x11::Display;
use crate::source::WindowInfo;

/// Captures from the shared display connection.
#[derive(Debug)]
pub struct X11Capturer {
    display: Arc<Display>,
}

/// A rectangle on the root window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x: i16,
    y: i16,
    width: u16,
    height: u16,
}

impl Rect {
    fn contains(&self, x: i32, y: i32) -> bool {
        let (rx, ry) = (i32::from(self.x), i32::from(self.y));
        x >= rx && y >= ry && x < rx + i32::from(self.width) && y < ry + i32::from(self.height)
    }
}

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(e.to_string())
}

impl X11Capturer {
    /// A capturer on `display`.
    pub fn new(display: Arc<Display>) -> X11Capturer {
        X11Capturer { display }
    }

    /// The monitor rectangles (RandR 1.5), or the whole root when RandR cannot say.
    fn monitors(&self) -> Result<Vec<Rect>, CaptureError> {
        let conn = &self.display.conn;
        let monitors = conn
            .randr_get_monitors(self.display.root, true)
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|r| {
                r.monitors
                    .iter()
                    .map(|m| Rect {
                        x: m.x,
                        y: m.y,
                        width: m.width,
                        height: m.height,
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if !monitors.is_empty() {
            return Ok(monitors);
        }
        let geometry = conn
            .get_geometry(self.display.root)
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        Ok(vec![Rect {
            x: 0,
            y: 0,
            width: geometry.width,
            height: geometry.height,
        }])
    }

    /// The centre of `window` in root coordinates.
    fn centre(&self, window: u32) -> Option<(i32, i32)> {
        let conn = &self.display.conn;
        let geometry = conn.get_geometry(window).ok()?.reply().ok()?;
        let origin = conn
            .translate_coordinates(window, self.display.root, 0, 0)
            .ok()?
            .reply()
            .ok()?;
        Some((
            i32::from(origin.dst_x) + i32::from(geometry.width) / 2,
            i32::from(origin.dst_y) + i32::from(geometry.height) / 2,
        ))
    }

    fn grab(&self, rect: Rect) -> Result<Image, CaptureError> {
        let conn = &self.display.conn;
        let reply = conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.display.root,
                rect.x,
                rect.y,
                rect.width,
                rect.height,
                !0,
            )
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        let setup = conn.setup();
        let bpp = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == reply.depth)
            .map(|f| f.bits_per_pixel)
            .ok_or_else(|| CaptureError::Format(format!("depth {}", reply.depth)))?;
        if bpp != 32 {
            return Err(CaptureError::Format(format!("{bpp} bits per pixel")));
        }
        let visual = setup
            .roots
            .iter()
            .flat_map(|s| s.allowed_depths.iter())
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == reply.visual)
            .ok_or_else(|| CaptureError::Format("unknown visual".into()))?;
        let masks = [visual.red_mask, visual.green_mask, visual.blue_mask];
        let big_endian = setup.image_byte_order == ImageOrder::MSB_FIRST;
        let (w, h) = (usize::from(rect.width), usize::from(rect.height));
        if reply.data.len() < w * h * 4 {
            return Err(CaptureError::Failed("short image reply".into()));
        }
        let mut rgb = Vec::with_capacity(w * h * 3);
        for px in reply.data.chunks_exact(4).take(w * h) {
            let bytes = [px[0], px[1], px[2], px[3]];
            let value = if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            };
            for mask in masks {
                rgb.push(channel(value, mask));
            }
        }
        Ok(Image {
            width: u32::from(rect.width),
            height: u32::from(rect.height),
            rgb,
        })
    }
}

/// Extracts one 8-bit channel given its mask (e.g. `0xff0000` for red in the usual layout).
fn channel(value: u32, mask: u32) -> u8 {
    if mask == 0 {
        return 0;
    }
    let shift = mask.trailing_zeros();
    let bits = (mask >> shift).count_ones();
    let v = (value & mask) >> shift;
    if bits >= 8 {
        (v >> (bits - 8)) as u8
    } else {
        // Scale narrower channels up to the full 0-255 range.
        ((v * 255) / ((1 << bits) - 1)) as u8
    }
}

impl Capturer for X11Capturer {
    fn capture(&self, window: &WindowInfo) -> Result<Image, CaptureError> {
        let monitors = self.monitors()?;
        let centre = u32::try_from(window.id)
            .ok()
            .filter(|&w| w != 0)
            .and_then(|w| self.centre(w));
        let rect = centre
            .and_then(|(x, y)| monitors.iter().find(|m| m.contains(x, y)))
            .unwrap_or(&monitors[0]);
        self.grab(*rect)
    }
}

#[cfg(test)]
mod tests {
    use super::channel;

    #[test]
    fn channels_follow_their_masks() {
        let px = 0x00_12_34_56;
        assert_eq!(channel(px, 0xff_0000), 0x12);
        assert_eq!(channel(px, 0x00_ff00), 0x34);
        assert_eq!(channel(px, 0x00_00ff), 0x56);
        // 5-6-5: full-scale values map to 255.
        assert_eq!(channel(0xf800, 0xf800), 255);
        assert_eq!(channel(0x07e0, 0x07e0), 255);
    }
}
