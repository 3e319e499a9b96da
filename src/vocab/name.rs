//! Kubernetes object names, checked where they are read.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// A DNS-1123 label: what Kubernetes accepts for namespaces and most object
/// names (lower-case alphanumerics and `-`, 1–63 characters, alphanumeric at
/// both ends). Checking it on load keeps shell and path characters out of
/// everything breakfix later builds from names (file names, labels, kind
/// cluster names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Name(String);

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The name is longer than 63 characters.
    #[error("`{0}` is longer than 63 characters")]
    TooLong(String),
    /// The name is not a DNS label.
    #[error(
        "`{name}` is not a valid Kubernetes name: {reason}; use lower-case letters, digits and `-`, starting and ending with a letter or digit"
    )]
    Invalid {
        /// The name.
        name: String,
        /// Why not.
        reason: String,
    },
}

impl Name {
    /// Checks `s` against DNS-1123 label rules.
    pub fn new(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > 63 {
            return Err(NameError::TooLong(s.to_string()));
        }
        let invalid = |reason: String| NameError::Invalid {
            name: s.escape_debug().to_string(),
            reason,
        };
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(invalid(format!(
                "character `{}` is not allowed",
                c.escape_debug()
            )));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(invalid("it starts or ends with `-`".into()));
        }
        Ok(Self(s.to_string()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Name::new(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Name {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Name".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "maxLength": 63,
            "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            "description": "A Kubernetes DNS-1123 label",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("web")]
    #[case("image-typo-2")]
    #[case("a")]
    fn accepts_dns_labels(#[case] s: &str) {
        assert_eq!(Name::new(s).unwrap().as_str(), s);
    }

    #[rstest]
    #[case("", "empty")]
    #[case("Web", "character `W`")]
    #[case("a;rm -rf", "character `;`")]
    #[case("../etc", "character `.`")]
    #[case("-web", "starts or ends")]
    #[case("web-", "starts or ends")]
    #[case("$(reboot)", "character `$`")]
    fn rejects_non_dns_labels(#[case] s: &str, #[case] needle: &str) {
        let err = Name::new(s).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }

    #[test]
    fn rejects_names_over_63_characters() {
        assert!(matches!(
            Name::new(&"a".repeat(64)),
            Err(NameError::TooLong(_))
        ));
    }
}
