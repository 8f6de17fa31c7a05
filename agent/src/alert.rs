//! Hits become alerts: the protocol record with who, where, what, and a screenshot when allowed.
//!
//! Whether a screenshot is taken is decided here and only here: never for no-capture categories
//! (csam, sexting, sexual, or entries marked `no-capture`), never when switched off, at most one per
//! window per interval. Every alert without one says why, so a reviewer never wonders.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use uuid::Uuid;
use ward_protocol::{Alert, AlertSource, Category, Screenshot};

use crate::capture::{downscale, encode_png, Capturer, RateLimit};
use crate::text::Hit;

/// What the DSL is told when a csam phrase fired: there is no picture on purpose, and the device is
/// evidence.
pub const CSAM_REASON: &str = "no screenshot: the screen may show an indecent image of a child, \
which must never be copied or stored. Do not look at, copy or photograph this device's screen; \
leave the device alone and follow the safeguarding procedure (the police handle the device).";

/// Builds alerts for one device and user.
pub struct AlertFactory {
    /// The enrolled device id (the shipper also sets it on send).
    pub device: String,
    /// The signed-in user.
    pub user: Option<String>,
    capturer: Option<Arc<dyn Capturer>>,
    max_width: u32,
    limit: RateLimit,
}

impl std::fmt::Debug for AlertFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertFactory")
            .field("device", &self.device)
            .field("capture", &self.capturer.is_some())
            .finish()
    }
}

/// The screenshot decision for one hit.
#[derive(Debug)]
pub enum ShotPlan {
    /// Capture this window's monitor.
    Capture(Arc<dyn Capturer>),
    /// No screenshot, for this reason.
    Withheld(String),
}

impl std::fmt::Debug for dyn Capturer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capturer")
    }
}

impl AlertFactory {
    /// A factory; `capturer` is `None` where screenshots are off or impossible.
    pub fn new(
        device: String,
        user: Option<String>,
        capturer: Option<Arc<dyn Capturer>>,
        max_width: u32,
        limit: RateLimit,
    ) -> AlertFactory {
        AlertFactory {
            device,
            user,
            capturer,
            max_width,
            limit,
        }
    }

    /// Decides whether `hit` gets a screenshot (counting it against the window's rate limit).
    pub fn plan(&mut self, hit: &Hit, now: Instant) -> ShotPlan {
        if hit.category == Category::Csam {
            return ShotPlan::Withheld(CSAM_REASON.into());
        }
        if hit.no_capture || hit.category.no_capture() {
            return ShotPlan::Withheld(format!(
                "no screenshot: {} alerts never carry one (the screen may show an indecent image)",
                hit.category
            ));
        }
        let Some(capturer) = &self.capturer else {
            return ShotPlan::Withheld("screenshots are off on this device".into());
        };
        if !self.limit.allow(hit.window.id, now) {
            return ShotPlan::Withheld(
                "rate limited: a screenshot of this window was taken moments ago".into(),
            );
        }
        ShotPlan::Capture(Arc::clone(capturer))
    }

    /// Takes the planned screenshot (blocking: run it off the async threads).
    pub fn shoot(plan: ShotPlan, hit: &Hit, max_width: u32) -> Result<Screenshot, String> {
        let capturer = match plan {
            ShotPlan::Capture(c) => c,
            ShotPlan::Withheld(reason) => return Err(reason),
        };
        let image = capturer.capture(&hit.window).map_err(|e| e.to_string())?;
        let small = downscale(&image, max_width);
        let png = encode_png(&small).map_err(|e| e.to_string())?;
        Ok(Screenshot {
            format: "png".into(),
            width: small.width,
            height: small.height,
            data_base64: base64::engine::general_purpose::STANDARD.encode(png),
        })
    }

    /// Screenshot width limit.
    pub fn max_width(&self) -> u32 {
        self.max_width
    }

    /// The alert for `hit`, with the screenshot outcome.
    pub fn alert(&self, hit: Hit, shot: Result<Screenshot, String>) -> Alert {
        let (screenshot, no_screenshot_reason) = match shot {
            Ok(s) => (Some(s), None),
            Err(reason) => (None, Some(bounded(&reason, 512))),
        };
        let title = clean(&hit.window.title);
        Alert {
            id: Uuid::now_v7(),
            device: self.device.clone(),
            user: self.user.clone(),
            time: jiff::Timestamp::now(),
            source: hit.source,
            category: hit.category,
            severity: hit.severity,
            phrase: bounded(&clean(&hit.phrase), 256),
            context: bounded(&clean_prose(&hit.context), ward_protocol_context_limit()),
            language: Some(bounded(&hit.language, 16)).filter(|l| !l.is_empty()),
            application: hit
                .window
                .application
                .as_deref()
                .map(|a| bounded(&clean(a), 256))
                .filter(|a| !a.is_empty()),
            window_title: Some(bounded(&title, 1024)).filter(|t| !t.is_empty()),
            wordlist_version: Some(bounded(&hit.wordlist_version, 128)).filter(|v| !v.is_empty()),
            client_ip: None,
            screenshot,
            no_screenshot_reason,
        }
    }

    /// An alert about the device itself (a full spool dropped alerts).
    pub fn device_alert(
        &self,
        category: Category,
        severity: u8,
        phrase: &str,
        context: &str,
    ) -> Alert {
        Alert {
            id: Uuid::now_v7(),
            device: self.device.clone(),
            user: self.user.clone(),
            time: jiff::Timestamp::now(),
            source: AlertSource::Device,
            category,
            severity,
            phrase: bounded(phrase, 256),
            context: bounded(context, ward_protocol_context_limit()),
            language: None,
            application: Some("ward-agent".into()),
            window_title: None,
            wordlist_version: None,
            client_ip: None,
            screenshot: None,
            no_screenshot_reason: Some("device alert".into()),
        }
    }
}

/// The protocol's bound on context (`ward_protocol` validation refuses longer).
fn ward_protocol_context_limit() -> usize {
    1024
}

/// Control characters become spaces: titles and names must be one clean line.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// As [`clean`], keeping line breaks and tabs (context may span lines).
fn clean_prose(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// At most `max` characters.
fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{CaptureError, Image};
    use crate::source::WindowInfo;
    use std::time::Duration;
    use ward_protocol::Validate;

    /// A fixed picture: the real capturers need a display (see the integration tests).
    struct Still;
    impl Capturer for Still {
        fn capture(&self, _: &WindowInfo) -> Result<Image, CaptureError> {
            Ok(Image {
                width: 2,
                height: 1,
                rgb: vec![255, 0, 0, 0, 0, 255],
            })
        }
    }

    fn hit(category: Category, no_capture: bool) -> Hit {
        Hit {
            source: AlertSource::Keyboard,
            category,
            severity: 5,
            phrase: "kill myself".into(),
            language: "en".into(),
            context: "i want to\u{7} kill myself".into(),
            no_capture,
            window: WindowInfo {
                id: 7,
                title: "Chat\u{1b}".into(),
                application: Some("firefox".into()),
                pid: Some(1),
            },
            wordlist_version: "v1".into(),
        }
    }

    fn factory() -> AlertFactory {
        AlertFactory::new(
            "ws-1".into(),
            Some("pupil".into()),
            Some(Arc::new(Still)),
            1280,
            RateLimit::new(Duration::from_secs(60)),
        )
    }

    fn make(f: &mut AlertFactory, h: Hit, now: Instant) -> Alert {
        let plan = f.plan(&h, now);
        let shot = AlertFactory::shoot(plan, &h, 1280);
        f.alert(h, shot)
    }

    #[test]
    fn alerts_carry_a_screenshot_and_pass_validation() {
        let mut f = factory();
        let a = make(&mut f, hit(Category::Suicide, false), Instant::now());
        assert!(a.screenshot.is_some());
        assert_eq!(a.window_title.as_deref(), Some("Chat "));
        a.validate(jiff::Timestamp::now()).unwrap();
    }

    #[test]
    fn no_capture_categories_never_capture_and_say_why() {
        let mut f = factory();
        let now = Instant::now();
        for category in [Category::Sexual, Category::Sexting] {
            let a = make(&mut f, hit(category, false), now);
            assert!(a.screenshot.is_none());
            assert!(a.no_screenshot_reason.unwrap().contains(category.as_str()));
        }
        let a = make(&mut f, hit(Category::Csam, false), now);
        assert!(a.screenshot.is_none());
        assert!(a
            .no_screenshot_reason
            .unwrap()
            .contains("leave the device alone"));
        let a = make(&mut f, hit(Category::Suicide, true), now);
        assert!(a.screenshot.is_none());
        a.validate(jiff::Timestamp::now()).unwrap();
    }

    #[test]
    fn screenshots_are_rate_limited_per_window() {
        let mut f = factory();
        let now = Instant::now();
        assert!(make(&mut f, hit(Category::Suicide, false), now)
            .screenshot
            .is_some());
        let second = make(
            &mut f,
            hit(Category::Suicide, false),
            now + Duration::from_secs(1),
        );
        assert!(second.screenshot.is_none());
        assert!(second
            .no_screenshot_reason
            .unwrap()
            .starts_with("rate limited"));
    }
}
