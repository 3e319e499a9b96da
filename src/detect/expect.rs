//! Which signals count as detection: any one of a set (the default), all of
//! them, or all of them in a given order.
//!
//! ```yaml
//! signals: [ErrImagePull, ImagePullBackOff]            # any one of them
//! signals: {any: [ErrImagePull, ImagePullBackOff]}     # the same, spelled out
//! signals: {all: [EndpointsEmpty, CanaryFailing]}      # both, in any order
//! signals: {all: [EndpointsEmpty, CanaryFailing], inOrder: true}
//! ```
//!
//! With `all`, detection is the moment the last missing signal is seen.
//! With `inOrder`, a signal counts only once every signal listed before it
//! has been seen (the watches' arrival order, which follows the cluster's
//! own order to within milliseconds): `CanaryFailing` seen before
//! `EndpointsEmpty` does not count, a later `CanaryFailing` on another pod
//! does.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::vocab::SignalKind;

/// How the listed signals combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Combine {
    /// The first of them to show is detection.
    #[default]
    Any,
    /// Every one of them must show; detection is when the last one does.
    All,
    /// Every one of them, each only after those listed before it.
    InOrder,
}

/// The signals an experiment expects, and how they combine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedSignals {
    /// Whether any or all of the signals must show.
    pub combine: Combine,
    /// In the order written; empty means "the fault's own" (any of them).
    pub signals: Vec<SignalKind>,
}

impl ExpectedSignals {
    /// Any one of `signals`.
    pub fn any(signals: &[SignalKind]) -> Self {
        Self {
            combine: Combine::Any,
            signals: signals.to_vec(),
        }
    }

    /// Whether no signal is listed.
    pub fn is_empty(&self) -> bool {
        self.signals.is_empty()
    }

    /// Whether `kind` is one of the listed signals.
    pub fn contains(&self, kind: &SignalKind) -> bool {
        self.signals.contains(kind)
    }

    /// A fresh matcher for one trial.
    pub fn matcher(&self) -> Matcher {
        Matcher {
            expected: self.clone(),
            seen: vec![false; self.signals.len()],
        }
    }

    /// `ErrImagePull or ImagePullBackOff`, `EndpointsEmpty and then CanaryFailing`.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.signals.iter().map(ToString::to_string).collect();
        let joiner = match self.combine {
            Combine::Any => " or ",
            Combine::All => " and ",
            Combine::InOrder => " then ",
        };
        names.join(joiner)
    }
}

impl fmt::Display for ExpectedSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Tracks which expected signals a trial has seen so far.
#[derive(Debug, Clone)]
pub struct Matcher {
    expected: ExpectedSignals,
    seen: Vec<bool>,
}

impl Matcher {
    /// Feeds one observed signal; true once the expectation is met (and
    /// from then on).
    pub fn see(&mut self, kind: SignalKind) -> bool {
        let listed = &self.expected.signals;
        match self.expected.combine {
            Combine::Any | Combine::All => {
                for (i, k) in listed.iter().enumerate() {
                    if *k == kind {
                        self.seen[i] = true;
                    }
                }
            }
            Combine::InOrder => {
                // The next unseen position counts if it is this kind.
                if let Some(next) = self.seen.iter().position(|s| !s)
                    && listed[next] == kind
                {
                    self.seen[next] = true;
                }
            }
        }
        self.met()
    }

    /// Whether the expectation is met.
    pub fn met(&self) -> bool {
        match self.expected.combine {
            Combine::Any => self.seen.iter().any(|s| *s),
            Combine::All | Combine::InOrder => {
                !self.seen.is_empty() && self.seen.iter().all(|s| *s)
            }
        }
    }

    /// The expected signals not seen (yet, or in their turn).
    pub fn missing(&self) -> Vec<SignalKind> {
        self.expected
            .signals
            .iter()
            .zip(&self.seen)
            .filter(|(_, s)| !**s)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The expected signals seen so far.
    pub fn seen(&self) -> Vec<SignalKind> {
        self.expected
            .signals
            .iter()
            .zip(&self.seen)
            .filter(|(_, s)| **s)
            .map(|(k, _)| *k)
            .collect()
    }
}

impl Serialize for ExpectedSignals {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.combine {
            Combine::Any => self.signals.serialize(s),
            Combine::All | Combine::InOrder => {
                let in_order = self.combine == Combine::InOrder;
                let mut map = s.serialize_map(Some(1 + usize::from(in_order)))?;
                map.serialize_entry("all", &self.signals)?;
                if in_order {
                    map.serialize_entry("inOrder", &true)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ExpectedSignals {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ExpectedVisitor)
    }
}

struct ExpectedVisitor;

impl<'de> Visitor<'de> for ExpectedVisitor {
    type Value = ExpectedSignals;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of signals, or `{any: [...]}`, or `{all: [...], inOrder: true}`")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let signals = Vec::<SignalKind>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(ExpectedSignals::any(&signals))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut any: Option<Vec<SignalKind>> = None;
        let mut all: Option<Vec<SignalKind>> = None;
        let mut in_order: Option<bool> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "any" if any.is_none() => any = Some(map.next_value()?),
                "all" if all.is_none() => all = Some(map.next_value()?),
                "inOrder" if in_order.is_none() => in_order = Some(map.next_value()?),
                "any" | "all" | "inOrder" => {
                    return Err(de::Error::custom(format!("duplicate field `{key}`")));
                }
                other => {
                    return Err(de::Error::unknown_field(other, &["any", "all", "inOrder"]));
                }
            }
        }
        let in_order = in_order.unwrap_or(false);
        let (combine, signals) = match (any, all) {
            (Some(_), Some(_)) => {
                return Err(de::Error::custom(
                    "give either `any` or `all`, not both: a detection is one of them",
                ));
            }
            (Some(_), None) if in_order => {
                return Err(de::Error::custom(
                    "`inOrder` goes with `all`: `any` is met by the first signal alone",
                ));
            }
            (Some(signals), None) => (Combine::Any, signals),
            (None, Some(signals)) if in_order => (Combine::InOrder, signals),
            (None, Some(signals)) => (Combine::All, signals),
            (None, None) => {
                return Err(de::Error::custom(
                    "expected `any: [...]` or `all: [...]` listing the signals",
                ));
            }
        };
        if signals.is_empty() {
            return Err(de::Error::custom(
                "the list of signals is empty; name at least one, or leave `signals` out for the fault's own",
            ));
        }
        let mut unique = signals.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != signals.len() {
            return Err(de::Error::custom("a signal is listed twice"));
        }
        Ok(ExpectedSignals { combine, signals })
    }
}

impl JsonSchema for ExpectedSignals {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ExpectedSignals".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let list = generator.subschema_for::<Vec<SignalKind>>();
        schemars::json_schema!({
            "description": "The signals that count as detection: a list (any one of them), `{any: [...]}`, or `{all: [...]}` (every one; with `inOrder: true`, in the order listed).",
            "oneOf": [
                list,
                {
                    "type": "object",
                    "properties": {"any": list},
                    "required": ["any"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": {"all": list, "inOrder": {"type": "boolean", "default": false}},
                    "required": ["all"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SignalKind::{CanaryFailing, EndpointsEmpty, ErrImagePull, ImagePullBackOff};
    use rstest::rstest;

    fn parse(yaml: &str) -> Result<ExpectedSignals, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[rstest]
    #[case("[ErrImagePull, ImagePullBackOff]", Combine::Any, &[ErrImagePull, ImagePullBackOff])]
    #[case("{any: [ErrImagePull]}", Combine::Any, &[ErrImagePull])]
    #[case("{all: [EndpointsEmpty, CanaryFailing]}", Combine::All, &[EndpointsEmpty, CanaryFailing])]
    #[case("{all: [EndpointsEmpty, CanaryFailing], inOrder: true}", Combine::InOrder, &[EndpointsEmpty, CanaryFailing])]
    #[case("{all: [EndpointsEmpty], inOrder: false}", Combine::All, &[EndpointsEmpty])]
    fn reads_every_form(
        #[case] yaml: &str,
        #[case] combine: Combine,
        #[case] signals: &[SignalKind],
    ) {
        let e = parse(yaml).unwrap();
        assert_eq!((e.combine, e.signals.as_slice()), (combine, signals));
        let back: ExpectedSignals =
            serde_yaml::from_str(&serde_yaml::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e, "round trip");
    }

    #[rstest]
    #[case("{any: [ErrImagePull], all: [ErrImagePull]}", "not both")]
    #[case("{any: [ErrImagePull], inOrder: true}", "`inOrder` goes with `all`")]
    #[case("{all: []}", "empty")]
    #[case("{alll: [ErrImagePull]}", "unknown field `alll`")]
    #[case("{inOrder: true}", "expected `any: [...]` or `all: [...]`")]
    #[case("{all: [ErrImagePull, ErrImagePull]}", "listed twice")]
    #[case("{all: [Typo]}", "unknown variant `Typo`")]
    #[case("ErrImagePull", "a list of signals")]
    fn refuses_what_cannot_mean_anything(#[case] yaml: &str, #[case] says: &str) {
        let err = parse(yaml).unwrap_err();
        assert!(err.contains(says), "{yaml} → {err}");
    }

    #[rstest]
    // any: the first listed signal to show.
    #[case(Combine::Any, &[CanaryFailing], true)]
    // all: both, whatever the order.
    #[case(Combine::All, &[CanaryFailing], false)]
    #[case(Combine::All, &[CanaryFailing, EndpointsEmpty], true)]
    // inOrder: CanaryFailing first does not count; seen again later, it does.
    #[case(Combine::InOrder, &[CanaryFailing, EndpointsEmpty], false)]
    #[case(Combine::InOrder, &[CanaryFailing, EndpointsEmpty, CanaryFailing], true)]
    #[case(Combine::InOrder, &[EndpointsEmpty, ErrImagePull, CanaryFailing], true)]
    fn matches_as_combined(
        #[case] combine: Combine,
        #[case] observed: &[SignalKind],
        #[case] met: bool,
    ) {
        let expected = ExpectedSignals {
            combine,
            signals: vec![EndpointsEmpty, CanaryFailing],
        };
        let mut m = expected.matcher();
        let mut result = false;
        for kind in observed {
            result = m.see(*kind);
        }
        assert_eq!(result, met, "{observed:?}");
        assert_eq!(m.met(), met);
    }

    #[test]
    fn describes_itself_for_messages() {
        let e = parse("{all: [EndpointsEmpty, CanaryFailing], inOrder: true}").unwrap();
        assert_eq!(e.to_string(), "EndpointsEmpty then CanaryFailing");
        assert_eq!(
            parse("[ErrImagePull, ImagePullBackOff]")
                .unwrap()
                .to_string(),
            "ErrImagePull or ImagePullBackOff"
        );
    }
}
