//! The wordlist file format: plain UTF-8 text that safeguarding staff can read, edit and diff.
//!
//! ```text
//! # Suicide: English. Lines starting with # are comments.
//! @category suicide          (default: the file's name, e.g. suicide.txt)
//! @language en               (default: the folder, e.g. en/suicide.txt)
//! @no-capture                (never screenshot hits from this file; always on for csam, sexting, sexual)
//!
//! 5 kill myself                                   severity 1-5, then the phrase
//! 4 self harm ; stem                              also matches longer words: "self harming"
//! 3 suicide ; except: suicide squad, suicide prevention
//! 2 killing me ; unless: homework, exam, laughing
//! 3 weed ; strict ; note: also a garden word      strict: no stretched or squeezed letters
//! 4 grooming ; near: online, older, secret        only near one of these words
//! - therapist                                     suppress entries with this phrase (local lists)
//! ! kill the process                              safe phrase: no alert inside it
//! ```
//!
//! Severity 5 means imminent risk to life. Options follow `;` on the line; unknown options are errors,
//! so a typo never silently disables a rule.

use ward_protocol::Category;

use crate::error::LoadError;
use crate::WordlistFile;

/// One entry as written in a file, before normalisation.
#[derive(Debug, Clone)]
pub(crate) struct RawEntry {
    pub(crate) id: String,
    pub(crate) category: Category,
    pub(crate) language: String,
    pub(crate) severity: u8,
    pub(crate) phrase: String,
    pub(crate) no_capture: bool,
    pub(crate) stem: bool,
    pub(crate) strict: bool,
    pub(crate) except: Vec<String>,
    pub(crate) unless: Vec<String>,
    pub(crate) near: Vec<String>,
}

/// A suppression (`- phrase`), optionally limited to one category.
#[derive(Debug, Clone)]
pub(crate) struct Suppression {
    pub(crate) phrase: String,
    pub(crate) category: Option<Category>,
}

/// Everything read from a set of files.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) entries: Vec<RawEntry>,
    pub(crate) suppressions: Vec<Suppression>,
    pub(crate) safe: Vec<String>,
}

/// File-wide settings from `@` headers, with defaults from the file's path.
struct Header {
    category: Option<Category>,
    language: String,
    no_capture: bool,
}

impl Header {
    fn from_path(name: &str) -> Header {
        let path = name.replace('\\', "/");
        let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let file = parts.pop().unwrap_or("");
        let stem = file.split('.').next().unwrap_or("");
        let language = parts
            .last()
            .filter(|d| (2..=3).contains(&d.len()) && d.chars().all(|c| c.is_ascii_lowercase()))
            .map_or_else(|| "und".to_string(), |d| d.to_string());
        Header {
            category: stem.parse().ok(),
            language,
            no_capture: false,
        }
    }
}

/// Parses one file into `out`; every bad line is reported, good lines are kept.
pub(crate) fn parse_file(file: &WordlistFile<'_>, out: &mut Parsed, errors: &mut Vec<LoadError>) {
    let mut header = Header::from_path(file.name);
    for (index, raw) in file.text.lines().enumerate() {
        let line = index + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let at = |reason: String| LoadError::Line {
            file: file.name.to_string(),
            line,
            reason,
        };
        if let Some(setting) = text.strip_prefix('@') {
            if let Err(reason) = apply_header(&mut header, setting) {
                errors.push(at(reason));
            }
        } else if let Some(phrase) = text.strip_prefix('-') {
            match phrase_only(phrase) {
                Ok(phrase) => out.suppressions.push(Suppression {
                    phrase,
                    category: header.category,
                }),
                Err(reason) => errors.push(at(reason)),
            }
        } else if let Some(phrase) = text.strip_prefix('!') {
            match phrase_only(phrase) {
                Ok(phrase) => out.safe.push(phrase),
                Err(reason) => errors.push(at(reason)),
            }
        } else {
            match parse_entry(&header, text) {
                Ok(mut entry) => {
                    entry.id = format!("{}:{}", file.name, line);
                    out.entries.push(entry);
                }
                Err(reason) => errors.push(at(reason)),
            }
        }
    }
}

fn apply_header(header: &mut Header, setting: &str) -> Result<(), String> {
    let (key, value) = setting
        .split_once(char::is_whitespace)
        .map_or((setting.trim(), ""), |(k, v)| (k.trim(), v.trim()));
    match key {
        "category" => {
            let category = value
                .parse::<Category>()
                .map_err(|e| format!("{e} (see protocol::Category for the vocabulary)"))?;
            header.category = Some(category);
        }
        "language" => {
            if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(format!("bad language tag `{value}`"));
            }
            header.language = value.to_ascii_lowercase();
        }
        "no-capture" => header.no_capture = true,
        other => return Err(format!("unknown setting `@{other}`")),
    }
    Ok(())
}

fn phrase_only(text: &str) -> Result<String, String> {
    let phrase = text.trim();
    if phrase.is_empty() {
        return Err("missing phrase".into());
    }
    if phrase.contains(';') {
        return Err("options are not allowed on this line".into());
    }
    Ok(phrase.to_string())
}

fn parse_entry(header: &Header, text: &str) -> Result<RawEntry, String> {
    let Some(category) = header.category else {
        return Err("no category: add `@category NAME` above the entries".into());
    };
    let mut fields = text.split(';');
    let first = fields.next().unwrap_or("").trim();
    let (severity, phrase) = first
        .split_once(char::is_whitespace)
        .ok_or_else(|| "expected `<severity 1-5> <phrase>`".to_string())?;
    let severity = match severity.parse::<u8>() {
        Ok(n @ 1..=5) => n,
        _ => return Err(format!("severity must be 1 to 5, found `{severity}`")),
    };
    let phrase = phrase.trim();
    if phrase.is_empty() {
        return Err("missing phrase".into());
    }
    let mut entry = RawEntry {
        id: String::new(),
        category,
        language: header.language.clone(),
        severity,
        phrase: phrase.to_string(),
        no_capture: header.no_capture || category.no_capture(),
        stem: false,
        strict: false,
        except: Vec::new(),
        unless: Vec::new(),
        near: Vec::new(),
    };
    for option in fields {
        let option = option.trim();
        let (key, value) = option
            .split_once(':')
            .map_or((option, None), |(k, v)| (k.trim(), Some(v)));
        let list = |v: Option<&str>| -> Result<Vec<String>, String> {
            let items: Vec<String> = v
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if items.is_empty() {
                Err(format!("`{key}:` needs a comma-separated list"))
            } else {
                Ok(items)
            }
        };
        match key {
            "" => {}
            "stem" => entry.stem = true,
            "strict" => entry.strict = true,
            "no-capture" => entry.no_capture = true,
            "note" => {}
            "except" => entry.except.extend(list(value)?),
            "unless" => entry.unless.extend(list(value)?),
            "near" => entry.near.extend(list(value)?),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(entry)
}
