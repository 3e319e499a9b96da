//! Durations as experiments write them: `500ms`, `30s`, `2m`, `1h30m`.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A positive duration written as a sequence of `<integer><unit>` parts,
/// units `ms`, `s`, `m`, `h` (the subset of Go's `time.ParseDuration` that
/// Kubernetes users know from probe and timeout fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// Why a duration string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration; write e.g. `30s`, `2m` or `500ms`")]
    Empty,
    /// A number without a unit.
    #[error("`{0}` has a number without a unit; add one of ms, s, m, h (e.g. `{0}s`)")]
    MissingUnit(String),
    /// A unit breakfix does not read.
    #[error("`{input}` has an unknown unit `{unit}`; use ms, s, m or h")]
    UnknownUnit {
        /// The text.
        input: String,
        /// The unit.
        unit: String,
    },
    /// Not a duration at all.
    #[error("`{0}` is not a duration; write e.g. `30s`, `2m` or `1m30s`")]
    Malformed(String),
    /// Zero, where a positive duration is needed.
    #[error("`{0}` is zero; a duration here must be positive")]
    Zero(String),
    /// Longer than a day.
    #[error("`{0}` is too long; at most 24h")]
    TooLong(String),
}

impl HumanDuration {
    /// Parses `input`; see the type's documentation for the grammar.
    pub fn parse(input: &str) -> Result<Self, DurationError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(DurationError::Malformed(s.to_string()));
            }
            let value: u64 = rest[..digits]
                .parse()
                .map_err(|_| DurationError::TooLong(s.to_string()))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            if unit_len == 0 {
                return Err(if rest.is_empty() {
                    DurationError::MissingUnit(s.to_string())
                } else {
                    DurationError::Malformed(s.to_string())
                });
            }
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let part = match unit {
                "ms" => Duration::from_millis(value),
                "s" => Duration::from_secs(value),
                "m" => Duration::from_secs(value.saturating_mul(60)),
                "h" => Duration::from_secs(value.saturating_mul(3600)),
                other => {
                    return Err(DurationError::UnknownUnit {
                        input: s.to_string(),
                        unit: other.to_string(),
                    });
                }
            };
            total = total.saturating_add(part);
        }
        if total.is_zero() {
            return Err(DurationError::Zero(s.to_string()));
        }
        if total > Duration::from_secs(24 * 3600) {
            return Err(DurationError::TooLong(s.to_string()));
        }
        Ok(Self(total))
    }

    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// Formats a duration the way breakfix prints times: `850ms`, `12.3s`, `2m05s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let secs = d.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        HumanDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl HumanDuration {
    /// The duration as a file would write it, exact and parseable again
    /// (`1m30s`, `500ms`, `2s250ms`), unlike the rounded [`fmt::Display`].
    pub fn to_written(self) -> String {
        let ms = self.0.as_millis();
        let parts = [
            (ms / 3_600_000, "h"),
            (ms / 60_000 % 60, "m"),
            (ms / 1000 % 60, "s"),
            (ms % 1000, "ms"),
        ];
        let written: String = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, unit)| format!("{n}{unit}"))
            .collect();
        if written.is_empty() {
            "0s".into()
        } else {
            written
        }
    }
}

/// Serialized as written in files, so a serialized experiment reads back
/// to the same durations.
impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_written())
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(ms|s|m|h))+$",
            "description": "A positive duration such as 500ms, 30s, 2m or 1m30s",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("500ms", Duration::from_millis(500))]
    #[case("30s", Duration::from_secs(30))]
    #[case("2m", Duration::from_secs(120))]
    #[case("1m30s", Duration::from_secs(90))]
    #[case("1h", Duration::from_secs(3600))]
    #[case(" 45s ", Duration::from_secs(45))]
    fn parses_valid_durations(#[case] input: &str, #[case] expected: Duration) {
        assert_eq!(HumanDuration::parse(input).unwrap().get(), expected);
    }

    #[rstest]
    #[case("", DurationError::Empty)]
    #[case("30", DurationError::MissingUnit("30".into()))]
    #[case("30sec", DurationError::UnknownUnit { input: "30sec".into(), unit: "sec".into() })]
    #[case("s", DurationError::Malformed("s".into()))]
    #[case("-5s", DurationError::Malformed("-5s".into()))]
    #[case("1.5s", DurationError::Malformed("1.5s".into()))]
    #[case("0s", DurationError::Zero("0s".into()))]
    #[case("25h", DurationError::TooLong("25h".into()))]
    fn rejects_invalid_durations(#[case] input: &str, #[case] expected: DurationError) {
        assert_eq!(HumanDuration::parse(input).unwrap_err(), expected);
    }

    #[rstest]
    #[case("500ms")]
    #[case("30s")]
    #[case("1m30s")]
    #[case("2s250ms")]
    #[case("1h1m1s1ms")]
    fn serializes_as_written_and_reads_back(#[case] written: &str) {
        let d = HumanDuration::parse(written).unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{written}\""));
        assert_eq!(serde_json::from_str::<HumanDuration>(&json).unwrap(), d);
    }

    #[rstest]
    #[case(Duration::from_millis(850), "850ms")]
    #[case(Duration::from_millis(12_340), "12.3s")]
    #[case(Duration::from_secs(125), "2m05s")]
    fn formats_durations(#[case] d: Duration, #[case] expected: &str) {
        assert_eq!(format_duration(d), expected);
    }
}
