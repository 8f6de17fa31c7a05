//! The one category vocabulary shared by detector, resolver, collector and reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A safeguarding or filtering category. Lower-case with hyphens on the wire and in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum Category {
    Suicide,
    SelfHarm,
    EatingDisorder,
    Bullying,
    Grooming,
    Sexual,
    Sexting,
    Csam,
    Extremism,
    Weapons,
    Violence,
    Drugs,
    Discrimination,
    Gambling,
    DomesticAbuse,
    Adult,
    Dating,
    Games,
    SocialMedia,
    Streaming,
    Chat,
    VpnProxy,
    Doh,
    Malware,
    Hacking,
    Piracy,
    Illegal,
    Test,
}

/// Error for a category name outside the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown category `{0}`")]
pub struct UnknownCategory(pub String);

impl Category {
    /// Every category, in a stable order (used for reports and validation messages).
    pub const ALL: [Category; 28] = [
        Category::Suicide,
        Category::SelfHarm,
        Category::EatingDisorder,
        Category::Bullying,
        Category::Grooming,
        Category::Sexual,
        Category::Sexting,
        Category::Csam,
        Category::Extremism,
        Category::Weapons,
        Category::Violence,
        Category::Drugs,
        Category::Discrimination,
        Category::Gambling,
        Category::DomesticAbuse,
        Category::Adult,
        Category::Dating,
        Category::Games,
        Category::SocialMedia,
        Category::Streaming,
        Category::Chat,
        Category::VpnProxy,
        Category::Doh,
        Category::Malware,
        Category::Hacking,
        Category::Piracy,
        Category::Illegal,
        Category::Test,
    ];

    /// The category of alerts about the device itself (source `device`) that name no content: a
    /// silent device, a monitoring helper stopped in a live session, alerts lost without a known
    /// category. The settled vocabulary has no category for the device; stopping the monitoring is
    /// circumvention, which the UK Safer Internet Centre files under malware/hacking (including
    /// bypass tools). Alerts lost from a full spool keep the category of what was lost instead.
    pub const TAMPER: Category = Category::Hacking;

    /// The name used on the wire, in files and in the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Suicide => "suicide",
            Category::SelfHarm => "self-harm",
            Category::EatingDisorder => "eating-disorder",
            Category::Bullying => "bullying",
            Category::Grooming => "grooming",
            Category::Sexual => "sexual",
            Category::Sexting => "sexting",
            Category::Csam => "csam",
            Category::Extremism => "extremism",
            Category::Weapons => "weapons",
            Category::Violence => "violence",
            Category::Drugs => "drugs",
            Category::Discrimination => "discrimination",
            Category::Gambling => "gambling",
            Category::DomesticAbuse => "domestic-abuse",
            Category::Adult => "adult",
            Category::Dating => "dating",
            Category::Games => "games",
            Category::SocialMedia => "social-media",
            Category::Streaming => "streaming",
            Category::Chat => "chat",
            Category::VpnProxy => "vpn-proxy",
            Category::Doh => "doh",
            Category::Malware => "malware",
            Category::Hacking => "hacking",
            Category::Piracy => "piracy",
            Category::Illegal => "illegal",
            Category::Test => "test",
        }
    }

    /// Whether an alert in this category must never carry a screenshot.
    ///
    /// The screen may show an indecent image of a child, which staff must never copy or store, so
    /// these alerts carry text only.
    pub fn no_capture(self) -> bool {
        matches!(self, Category::Csam | Category::Sexting | Category::Sexual)
    }

    /// Whether no policy, tier or administrator may lift a block in this category.
    pub fn unliftable(self) -> bool {
        matches!(self, Category::Illegal | Category::Csam)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCategory(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_json() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>().unwrap(), c);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Category>(&json).unwrap(), c);
        }
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!("Suicide".parse::<Category>().is_err());
        assert!(serde_json::from_str::<Category>("\"porn\"").is_err());
    }

    #[test]
    fn device_alerts_file_under_a_category_of_the_vocabulary() {
        assert!(Category::ALL.contains(&Category::TAMPER));
        assert_eq!(Category::TAMPER.as_str(), "hacking");
        assert!(!Category::TAMPER.no_capture());
    }

    #[test]
    fn no_capture_covers_sexual_categories_only() {
        let no: Vec<_> = Category::ALL.iter().filter(|c| c.no_capture()).collect();
        assert_eq!(no, [&Category::Sexual, &Category::Sexting, &Category::Csam]);
    }
}
