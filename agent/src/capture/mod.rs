//! Screenshots for context when an alert fires: capture the active window's monitor, downscale,
//! PNG-encode, and never more than one per window per interval.
//!
//! On X11 the capture is a `GetImage` of the root window over the monitor's rectangle, on the
//! program's one X connection ([`x11::X11Capturer`]); on Windows it is xcap. Callers decide *whether*
//! to capture: no-capture categories never reach here (see `pipeline`).

#[cfg(windows)]
pub mod windows;
#[cfg(all(unix, not(target_os = "macos")))]
pub mod x11;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::source::WindowInfo;

/// An RGB image, 8 bits per channel, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

/// A capture that failed; the alert is sent without a screenshot and says why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The display could not be read.
    #[error("screen capture failed: {0}")]
    Failed(String),
    /// The display's pixel format is not one this agent reads.
    #[error("unsupported pixel format: {0}")]
    Format(String),
}

/// Something that can photograph the screen a window is on.
pub trait Capturer: Send + Sync {
    /// Captures the monitor showing `window` (the primary one when unknown).
    ///
    /// # Errors
    /// The screen could not be read.
    fn capture(&self, window: &WindowInfo) -> Result<Image, CaptureError>;
}

/// Shrinks `image` to at most `max_width` pixels wide, averaging the source pixels each target pixel
/// covers (keeps text legible, unlike dropping pixels).
pub fn downscale(image: &Image, max_width: u32) -> Image {
    if image.width <= max_width || max_width == 0 {
        return image.clone();
    }
    let (sw, sh) = (image.width as usize, image.height as usize);
    let dw = max_width as usize;
    let dh = ((sh * dw) / sw).max(1);
    let mut out = vec![0u8; dw * dh * 3];
    for dy in 0..dh {
        let y0 = dy * sh / dh;
        let y1 = ((dy + 1) * sh / dh).max(y0 + 1);
        for dx in 0..dw {
            let x0 = dx * sw / dw;
            let x1 = ((dx + 1) * sw / dw).max(x0 + 1);
            let mut sum = [0u32; 3];
            for y in y0..y1 {
                let row = &image.rgb[(y * sw + x0) * 3..(y * sw + x1) * 3];
                for px in row.chunks_exact(3) {
                    sum[0] += u32::from(px[0]);
                    sum[1] += u32::from(px[1]);
                    sum[2] += u32::from(px[2]);
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            let o = (dy * dw + dx) * 3;
            for c in 0..3 {
                out[o + c] = (sum[c] / n) as u8;
            }
        }
    }
    Image {
        width: dw as u32,
        height: dh as u32,
        rgb: out,
    }
}

/// Encodes `image` as PNG (fast compression: screenshots are mostly flat colour and text).
///
/// # Errors
/// The image's size does not match its buffer.
pub fn encode_png(image: &Image) -> Result<Vec<u8>, CaptureError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder
        .write_header()
        .map_err(|e| CaptureError::Failed(e.to_string()))?;
    writer
        .write_image_data(&image.rgb)
        .map_err(|e| CaptureError::Failed(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| CaptureError::Failed(e.to_string()))?;
    Ok(out)
}

/// At most one screenshot per window per interval.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    last: HashMap<u64, Instant>,
}

impl RateLimit {
    /// One capture per window per `interval`.
    pub fn new(interval: Duration) -> RateLimit {
        RateLimit {
            interval,
            last: HashMap::new(),
        }
    }

    /// Whether a capture of `window` is allowed at `now`; if so, counts it.
    pub fn allow(&mut self, window: u64, now: Instant) -> bool {
        if self
            .last
            .get(&window)
            .is_some_and(|t| now.duration_since(*t) < self.interval)
        {
            return false;
        }
        if self.last.len() > 1024 {
            let interval = self.interval;
            self.last.retain(|_, t| now.duration_since(*t) < interval);
        }
        self.last.insert(window, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> Image {
        let mut rgb = Vec::new();
        for y in 0..height {
            for x in 0..width {
                rgb.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, 200]);
            }
        }
        Image { width, height, rgb }
    }

    #[test]
    fn downscale_keeps_the_aspect_ratio_and_averages() {
        let small = downscale(&gradient(1920, 1080), 1280);
        assert_eq!((small.width, small.height), (1280, 720));
        assert_eq!(small.rgb.len(), 1280 * 720 * 3);
        // A 2x2 block of (0,0),(1,0),(0,1),(1,1) averages to (0,0) with integer rounding down.
        let half = downscale(&gradient(4, 4), 2);
        assert_eq!(&half.rgb[..3], &[0, 0, 200]);
        assert_eq!(&half.rgb[3..6], &[2, 0, 200]);
        let same = downscale(&gradient(100, 50), 1280);
        assert_eq!(same, gradient(100, 50));
    }

    #[test]
    fn png_round_trips() {
        let image = gradient(64, 32);
        let bytes = encode_png(&image).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (64, 32));
        assert_eq!(&buf[..info.buffer_size()], &image.rgb[..]);
    }

    #[test]
    fn rate_limit_is_per_window() {
        let mut limit = RateLimit::new(Duration::from_secs(60));
        let t = Instant::now();
        assert!(limit.allow(1, t));
        assert!(!limit.allow(1, t + Duration::from_secs(30)));
        assert!(limit.allow(2, t + Duration::from_secs(30)));
        assert!(limit.allow(1, t + Duration::from_secs(61)));
    }
}
