//! HTML built so that escaping cannot be forgotten.
//!
//! Pages are written with [`html!`](crate::html): the format string is a literal (so it is trusted
//! markup written by us), and every argument is rendered through [`Render`], which escapes text and
//! passes through only values that are already [`Html`]. A window title, phrase or user name typed by
//! a pupil can therefore never become markup, whichever page shows it.

use std::fmt::{self, Display, Write};

/// A fragment of markup that is safe to send: built only from literals and escaped values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// An empty fragment.
    pub fn new() -> Html {
        Html(String::new())
    }

    /// Markup from a string literal written in this program (never from data).
    pub fn lit(markup: &'static str) -> Html {
        Html(markup.to_string())
    }

    /// Appends another fragment.
    pub fn push(&mut self, other: Html) {
        self.0.push_str(&other.0);
    }

    /// Appends escaped text.
    pub fn push_text(&mut self, text: &str) {
        escape_into(&mut self.0, text);
    }

    /// The finished markup.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The markup as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Built by the [`html!`](crate::html) macro only; not for data.
    #[doc(hidden)]
    pub fn from_format(args: fmt::Arguments<'_>) -> Html {
        let mut out = String::new();
        let _ = out.write_fmt(args);
        Html(out)
    }
}

impl FromIterator<Html> for Html {
    fn from_iter<I: IntoIterator<Item = Html>>(iter: I) -> Self {
        let mut out = Html::new();
        for part in iter {
            out.push(part);
        }
        out
    }
}

/// How a value goes into a page.
pub trait Render {
    /// Writes the value, escaped unless it is already markup.
    fn render(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl Render for Html {
    fn render(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        out.write_str(&self.0)
    }
}

impl Render for str {
    fn render(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut escaped = String::with_capacity(self.len());
        escape_into(&mut escaped, self);
        out.write_str(&escaped)
    }
}

impl Render for String {
    fn render(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_str().render(out)
    }
}

impl<T: Render + ?Sized> Render for &T {
    fn render(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).render(out)
    }
}

impl<T: Render> Render for Option<T> {
    fn render(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Some(value) => value.render(out),
            None => Ok(()),
        }
    }
}

macro_rules! render_display {
    ($($t:ty),*) => {$(
        impl Render for $t {
            fn render(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Numbers and these types never contain markup characters, but escape anyway.
                self.to_string().as_str().render(out)
            }
        }
    )*};
}
render_display!(
    u8,
    u16,
    u32,
    u64,
    usize,
    i32,
    i64,
    f64,
    char,
    bool,
    ward_protocol::Category,
    jiff::Timestamp
);

/// Adapter the macro wraps around every argument.
#[doc(hidden)]
pub struct Escaped<'a, T: Render + ?Sized>(pub &'a T);

impl<T: Render + ?Sized> Display for Escaped<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.render(f)
    }
}

/// Builds [`Html`] from a literal template; every `{}` argument is escaped unless it is `Html`.
#[macro_export]
macro_rules! html {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::ui::html::Html::from_format(format_args!(
            $fmt $(, $crate::ui::html::Escaped(&$arg))*
        ))
    };
}

/// Escapes text for element content and quoted attribute values.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than whitespace have no business in a page.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// Escaped text as a fragment.
pub fn text(value: &str) -> Html {
    let mut out = Html::new();
    out.push_text(value);
    out
}

/// Percent-encodes a value for a query string or path segment.
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_escaped_and_markup_passes_through() {
        let title = "<script>alert('x')</script> & \"quotes\"";
        let inner = crate::html!("<b>{}</b>", "a<b");
        let page = crate::html!("<p title=\"{}\">{}</p>{}", title, title, inner);
        assert_eq!(
            page.as_str(),
            "<p title=\"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;\">\
             &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;</p><b>a&lt;b</b>"
        );
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(text("a\u{0}b\nc").as_str(), "a\u{fffd}b\nc");
    }

    #[test]
    fn url_encoding_keeps_unreserved_only() {
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
