//! Whether a 429 tells the client how long to wait. The reference says clients should
//! honour `Retry-After` "if present" and back off exponentially with jitter otherwise
//! (docs/contract.md §7); whether production sends it is not documented. A profile
//! chooses, so a client's path without the header runs locally too.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// `limits.retry_after`: `always`, `never`, or the share (0 to 1) of 429s that carry
/// `Retry-After` and `retry-after-ms`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum RetryAfter {
    /// Every 429 carries the headers: what plan profiles have always done.
    #[default]
    Always,
    Never,
    Share(f64),
}

impl RetryAfter {
    /// The probability a 429 carries the headers.
    pub fn share(self) -> f64 {
        match self {
            RetryAfter::Always => 1.0,
            RetryAfter::Never => 0.0,
            RetryAfter::Share(p) => p,
        }
    }

    /// The profile error for a share outside 0..=1, if any.
    pub fn problem(self) -> Option<String> {
        match self {
            RetryAfter::Share(p) if !(0.0..=1.0).contains(&p) => Some(format!(
                "limits.retry_after must be always, never or a share from 0 to 1, got {p}"
            )),
            _ => None,
        }
    }
}

impl Serialize for RetryAfter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RetryAfter::Always => s.serialize_str("always"),
            RetryAfter::Never => s.serialize_str("never"),
            RetryAfter::Share(p) => s.serialize_f64(*p),
        }
    }
}

impl<'de> Deserialize<'de> for RetryAfter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Word(String),
            Share(f64),
        }
        match Form::deserialize(d)? {
            Form::Word(w) if w == "always" => Ok(RetryAfter::Always),
            Form::Word(w) if w == "never" => Ok(RetryAfter::Never),
            Form::Word(w) => Err(de::Error::custom(format!(
                "retry_after must be always, never or a share from 0 to 1, got `{w}`"
            ))),
            Form::Share(p) => Ok(RetryAfter::Share(p)),
        }
    }
}
