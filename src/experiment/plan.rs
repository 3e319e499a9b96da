//! `spec.fault`: one fault, or several in order.
//!
//! ```yaml
//! fault:
//!   imageTypo: {target: {namespace: shop, deployment: web}, typo: tag}
//!
//! fault:
//!   steps:
//!     - patch: {target: {apiVersion: v1, kind: Secret, namespace: shop, name: db}, …}
//!     - waitFor: 5s
//!     - patch: {target: {apiVersion: apps/v1, kind: Deployment, namespace: shop, name: web}, …}
//!     - waitFor:
//!         object: {apiVersion: apps/v1, kind: Deployment, name: web}
//!         expression: object.status.updatedReplicas >= 1
//!         timeout: 60s
//!   allowNamespaces: [payments]      # steps may act there too (besides the baseline's)
//! ```
//!
//! Every step is any fault of the catalogue or a generic primitive, written
//! as a single fault is. The runner applies them in order, each journaling
//! its undo before it mutates anything, waits where told, and reverts
//! newest first; a step that fails reverts the ones before it. Detection
//! watches what every step named, from the moment the last step is in.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::slo::ObjectTarget;
use crate::fault::{Claim, FaultSpec, catalogue};
use crate::vocab::{CelExpr, HumanDuration, Name, SignalKind};

/// What `spec.fault` holds.
#[derive(Debug, Clone)]
pub enum FaultPlan {
    /// One fault (`fault: {imageTypo: …}`).
    Single(FaultSpec),
    /// Several, in order (`fault: {steps: […]}`).
    Steps(Steps),
}

impl From<FaultSpec> for FaultPlan {
    /// One fault, as `fault: {…}` holds it.
    fn from(fault: FaultSpec) -> Self {
        Self::Single(fault)
    }
}

/// `fault.steps` and what they may touch.
#[derive(Debug, Clone, Default)]
pub struct Steps {
    /// The steps, applied in order.
    pub steps: Vec<Step>,
    /// Namespaces besides the baseline's (and kube-system) the steps may
    /// act in: a step elsewhere is refused unless its namespace is named
    /// here, so a typo cannot break someone else's namespace.
    pub allow_namespaces: Vec<Name>,
}

/// One item of `fault.steps`.
#[derive(Debug, Clone)]
pub enum Step {
    /// A fault, written as `spec.fault` writes one.
    Fault(FaultSpec),
    /// `waitFor:` a duration, or until a condition holds.
    WaitFor(Wait),
}

/// How long to wait between steps.
#[derive(Debug, Clone)]
pub enum Wait {
    /// `waitFor: 5s`.
    For(HumanDuration),
    /// `waitFor: {object, expression, timeout}`: until the CEL expression
    /// holds on the object (watched, not polled).
    Until(WaitCondition),
}

/// A condition to wait for between steps.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitCondition {
    /// The object the expression reads; namespace default: the baseline's.
    pub object: ObjectTarget,
    /// A CEL condition on the object, read as `object`, e.g.
    /// `object.status.updatedReplicas >= 1`.
    pub expression: CelExpr,
    /// Give up (and revert the steps so far) after this long (default 2m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// How long a `waitFor` condition waits unless it says.
pub const DEFAULT_WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

impl WaitCondition {
    /// Its timeout, or the default.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
            .map(HumanDuration::get)
            .unwrap_or(DEFAULT_WAIT_TIMEOUT)
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::For(d) => write!(f, "waitFor {d}"),
            Self::Until(c) => write!(f, "waitFor {}: {}", c.object, c.expression.as_str()),
        }
    }
}

/// A problem with the plan, for a diagnostic: the step it is about (its
/// index in `steps`), or the plan itself; the key under the step or plan
/// to point at; the message and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    /// The step at fault (0-based), or `None` for the list itself.
    pub step: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl FaultPlan {
    /// `imageTypo`, or `steps`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Single(f) => f.kind(),
            Self::Steps(_) => "steps",
        }
    }

    /// For reports: `imageTypo`, or `steps: patch, patch`.
    pub fn label(&self) -> String {
        match self {
            Self::Single(f) => f.kind().to_string(),
            Self::Steps(s) => format!(
                "steps: {}",
                s.faults()
                    .map(FaultSpec::kind)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The faults, in order.
    pub fn faults(&self) -> Box<dyn Iterator<Item = &FaultSpec> + '_> {
        match self {
            Self::Single(f) => Box::new(std::iter::once(f)),
            Self::Steps(s) => Box::new(s.faults()),
        }
    }

    /// The faults, in order, to rewrite (a baseline moved to a namespace
    /// of its own, say).
    pub fn faults_mut(&mut self) -> Box<dyn Iterator<Item = &mut FaultSpec> + '_> {
        match self {
            Self::Single(f) => Box::new(std::iter::once(f)),
            Self::Steps(s) => Box::new(s.steps.iter_mut().filter_map(|s| match s {
                Step::Fault(f) => Some(f),
                Step::WaitFor(_) => None,
            })),
        }
    }

    /// The items in order, as the runner carries them out.
    pub fn items(&self) -> Vec<Step> {
        match self {
            Self::Single(f) => vec![Step::Fault(f.clone())],
            Self::Steps(s) => s.steps.clone(),
        }
    }

    /// Every fault's default signals, in order, once each.
    pub fn default_signals(&self) -> Vec<SignalKind> {
        union(self.faults().map(FaultSpec::default_signals))
    }

    /// Every signal some step can produce.
    pub fn supported_signals(&self) -> Vec<SignalKind> {
        union(self.faults().map(FaultSpec::supported_signals))
    }

    /// Whether Kubernetes heals every step without a revert.
    pub fn can_self_heal(&self) -> bool {
        self.faults().all(FaultSpec::can_self_heal)
    }

    /// What the steps need to themselves while they are in, sorted.
    pub fn claims(&self) -> Vec<Claim> {
        let mut claims: Vec<Claim> = self.faults().flat_map(FaultSpec::claims).collect();
        claims.sort();
        claims.dedup();
        claims
    }

    /// Whether a step touches something every workload shares.
    pub fn is_cluster_scoped(&self) -> bool {
        self.faults().any(FaultSpec::is_cluster_scoped)
    }

    /// The namespace of a single fault (`None` for steps: see
    /// [`FaultPlan::problems`], which checks each step's).
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Self::Single(f) => f.namespace(),
            Self::Steps(_) => None,
        }
    }

    /// Checks that need more than types, given the baseline's namespace.
    pub fn problems(&self, baseline_namespace: Option<&str>) -> Vec<PlanProblem> {
        let mut out = Vec::new();
        let steps = match self {
            Self::Single(f) => {
                if let Err(message) = f.validate() {
                    out.push(PlanProblem {
                        step: None,
                        message: format!("spec.fault.{}: {message}", f.kind()),
                        help: None,
                    });
                }
                return out;
            }
            Self::Steps(s) => s,
        };
        if steps.steps.is_empty() {
            out.push(PlanProblem {
                step: None,
                message: "spec.fault.steps is empty; there is nothing to inject".into(),
                help: Some("list one or more faults, e.g. `steps: [{patch: {…}}, {waitFor: 5s}, {scale: {…}}]`, or write the single fault directly under `fault:`".into()),
            });
            return out;
        }
        let last = steps.steps.len() - 1;
        for (i, step) in steps.steps.iter().enumerate() {
            let at = format!("spec.fault.steps[{i}]");
            match step {
                Step::WaitFor(w) if i == 0 => out.push(PlanProblem {
                    step: Some(i),
                    message: format!("{at}: `{w}` comes before any fault; the baseline is already steady when the first step runs"),
                    help: Some("start with a fault; `waitFor` goes between steps".into()),
                }),
                Step::WaitFor(w) if i == last => out.push(PlanProblem {
                    step: Some(i),
                    message: format!("{at}: `{w}` comes after the last fault; detection starts as soon as the last step is in"),
                    help: Some("end with a fault; to keep the fault in after detection, use `spec.hold`".into()),
                }),
                Step::WaitFor(_) => {}
                Step::Fault(f) => {
                    if let Err(message) = f.validate() {
                        out.push(PlanProblem {
                            step: Some(i),
                            message: format!("{at} ({}): {message}", f.kind()),
                            help: None,
                        });
                    }
                    if let (Some(ns), Some(home)) = (f.namespace(), baseline_namespace)
                        && ns != home
                        && !crate::vocab::is_system_namespace(ns)
                        && !steps.allow_namespaces.iter().any(|a| a.as_str() == ns)
                    {
                        out.push(PlanProblem {
                            step: Some(i),
                            message: format!(
                                "{at} ({}) acts in namespace `{ns}`, but the baseline lives in `{home}`",
                                f.kind()
                            ),
                            help: Some(format!(
                                "if that is intended, say so: `allowNamespaces: [{ns}]` beside `steps:`"
                            )),
                        });
                    }
                }
            }
        }
        if !steps.steps.iter().any(|s| matches!(s, Step::Fault(_))) {
            out.push(PlanProblem {
                step: None,
                message: "spec.fault.steps has no fault, only waits".into(),
                help: None,
            });
        }
        out
    }
}

impl Steps {
    /// The faults among the steps, in order.
    pub fn faults(&self) -> impl Iterator<Item = &FaultSpec> {
        self.steps.iter().filter_map(|s| match s {
            Step::Fault(f) => Some(f),
            Step::WaitFor(_) => None,
        })
    }
}

/// Signals of several lists, in order of first appearance, once each.
fn union<'a>(lists: impl Iterator<Item = &'a [SignalKind]>) -> Vec<SignalKind> {
    let mut out: Vec<SignalKind> = Vec::new();
    for list in lists {
        for s in list {
            if !out.contains(s) {
                out.push(*s);
            }
        }
    }
    out
}

/// The keys a fault can be written with, for messages.
fn fault_keys() -> Vec<&'static str> {
    catalogue().iter().map(|e| e.fault).collect()
}

/// Deserializes the variant `key` of an externally tagged enum (such as
/// [`FaultSpec`]) from the value of `map`'s current entry: how a mapping
/// whose first key decides what it is (`steps:` or a fault) is read without
/// buffering, so errors inside keep their line and column.
struct KeyedVariant<'a, A> {
    key: String,
    map: &'a mut A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for KeyedVariant<'_, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> de::EnumAccess<'de> for KeyedVariant<'_, A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), A::Error> {
        let key: de::value::StrDeserializer<'_, A::Error> = self.key.as_str().into_deserializer();
        let value = seed.deserialize(key)?;
        Ok((value, self))
    }
}

impl<'de, A: MapAccess<'de>> de::VariantAccess<'de> for KeyedVariant<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.map.next_value::<de::IgnoredAny>().map(|_| ())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("tuple variants are not used here"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("struct variants are not used here"))
    }
}

/// Reads a fault whose key was just read from `map`; an unknown key is an
/// error naming every fault (and what else may stand there: `also`).
fn fault_from<'de, A: MapAccess<'de>>(
    key: String,
    map: &mut A,
    also: &str,
) -> Result<FaultSpec, A::Error> {
    let keys = fault_keys();
    if !keys.contains(&key.as_str()) {
        return Err(de::Error::custom(format!(
            "unknown fault `{key}`; expected one of {}, or {also}",
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    FaultSpec::deserialize(KeyedVariant { key, map })
}

/// Refuses a second key in a mapping that must hold one.
fn no_second_key<'de, A: MapAccess<'de>>(map: &mut A, what: &str) -> Result<(), A::Error> {
    match map.next_key::<String>()? {
        None => Ok(()),
        Some(second) => Err(de::Error::custom(format!(
            "{what} has a second key `{second}`; {what} is exactly one key (is `{second}` indented under the wrong parent?)"
        ))),
    }
}

impl<'de> Deserialize<'de> for FaultPlan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PlanVisitor)
    }
}

struct PlanVisitor;

impl<'de> Visitor<'de> for PlanVisitor {
    type Value = FaultPlan;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("one fault (e.g. `imageTypo: {…}`) or `steps: […]`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FaultPlan, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "spec.fault is empty; name one fault (e.g. `imageTypo: {…}`) or `steps: […]`",
            ));
        };
        if first != "steps" && first != "allowNamespaces" {
            let fault = fault_from(first, &mut map, "`steps`")?;
            no_second_key(&mut map, "a fault")?;
            return Ok(FaultPlan::Single(fault));
        }
        let mut steps: Option<Vec<Step>> = None;
        let mut allow: Option<Vec<Name>> = None;
        let mut key = Some(first);
        while let Some(k) = key {
            match k.as_str() {
                "steps" if steps.is_none() => steps = Some(map.next_value()?),
                "allowNamespaces" if allow.is_none() => allow = Some(map.next_value()?),
                "steps" | "allowNamespaces" => {
                    return Err(de::Error::custom(format!("duplicate field `{k}`")));
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown field `{other}` beside `steps`; expected `steps` or `allowNamespaces` (a fault of its own goes in a step: `- {other}: {{…}}`)"
                    )));
                }
            }
            key = map.next_key()?;
        }
        let Some(steps) = steps else {
            return Err(de::Error::missing_field("steps"));
        };
        Ok(FaultPlan::Steps(Steps {
            steps,
            allow_namespaces: allow.unwrap_or_default(),
        }))
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = Step;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a fault (e.g. `patch: {…}`) or `waitFor: 5s`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "an empty step; write a fault (e.g. `patch: {…}`) or `waitFor: 5s`",
            ));
        };
        let step = if key == "waitFor" {
            Step::WaitFor(map.next_value()?)
        } else {
            Step::Fault(fault_from(key, &mut map, "`waitFor`")?)
        };
        no_second_key(&mut map, "a step")?;
        Ok(step)
    }
}

impl<'de> Deserialize<'de> for Wait {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WaitVisitor)
    }
}

struct WaitVisitor;

impl<'de> Visitor<'de> for WaitVisitor {
    type Value = Wait;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration (`5s`) or `{object: {…}, expression: …, timeout: 60s}`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Wait, E> {
        HumanDuration::parse(v)
            .map(Wait::For)
            .map_err(de::Error::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Wait, E> {
        Err(de::Error::custom(format!(
            "`{v}` is a bare number; write a duration with its unit, e.g. `{v}s`"
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Wait, A::Error> {
        WaitCondition::deserialize(de::value::MapAccessDeserializer::new(map)).map(Wait::Until)
    }
}

impl Serialize for FaultPlan {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Single(f) => serde_yaml::with::singleton_map::serialize(f, s),
            Self::Steps(steps) => {
                let allow = !steps.allow_namespaces.is_empty();
                let mut map = s.serialize_map(Some(1 + usize::from(allow)))?;
                map.serialize_entry("steps", &steps.steps)?;
                if allow {
                    map.serialize_entry("allowNamespaces", &steps.allow_namespaces)?;
                }
                map.end()
            }
        }
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Fault(f) => serde_yaml::with::singleton_map::serialize(f, s),
            Self::WaitFor(w) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("waitFor", w)?;
                map.end()
            }
        }
    }
}

impl Serialize for Wait {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::For(d) => d.serialize(s),
            Self::Until(c) => c.serialize(s),
        }
    }
}

impl JsonSchema for FaultPlan {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FaultPlan".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let fault = generator.subschema_for::<FaultSpec>();
        let step = generator.subschema_for::<Step>();
        let names = generator.subschema_for::<Vec<Name>>();
        schemars::json_schema!({
            "description": "One fault (exactly one key), or `steps`: faults applied in order with optional waits between them, reverted newest first.",
            "oneOf": [
                fault,
                {
                    "type": "object",
                    "properties": {
                        "steps": {"type": "array", "items": step, "minItems": 1},
                        "allowNamespaces": names
                    },
                    "required": ["steps"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl JsonSchema for Step {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Step".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let fault = generator.subschema_for::<FaultSpec>();
        let wait = generator.subschema_for::<Wait>();
        schemars::json_schema!({
            "description": "A fault (exactly one key), or `waitFor`.",
            "oneOf": [
                fault,
                {
                    "type": "object",
                    "properties": {"waitFor": wait},
                    "required": ["waitFor"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl JsonSchema for Wait {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Wait".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let duration = generator.subschema_for::<HumanDuration>();
        let condition = generator.subschema_for::<WaitCondition>();
        schemars::json_schema!({
            "description": "A duration (`5s`), or a condition on an object to wait for (watched, with a timeout).",
            "oneOf": [duration, condition]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn plan(yaml: &str) -> Result<FaultPlan, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    const SECRET_THEN_RESTART: &str = r#"
steps:
  - patch:
      target: {apiVersion: v1, kind: Secret, namespace: shop, name: db}
      type: json
      patch: [{op: move, from: /data/password, path: /data/passwd}]
  - waitFor: 2s
  - patch:
      target: {apiVersion: apps/v1, kind: Deployment, namespace: shop, name: web}
      patch: {spec: {template: {metadata: {annotations: {breakfix.dev/restartedAt: now}}}}}
  - waitFor:
      object: {apiVersion: apps/v1, kind: Deployment, name: web}
      expression: object.status.updatedReplicas >= 1
  - scale: {target: {kind: Deployment, namespace: shop, name: web}, replicas: 1}
"#;

    #[test]
    fn reads_a_single_fault_as_before() {
        let p = plan("imageTypo: {target: {namespace: shop, deployment: web}, typo: tag}").unwrap();
        assert!(matches!(p, FaultPlan::Single(FaultSpec::ImageTypo(_))));
        assert_eq!((p.kind(), p.label()), ("imageTypo", "imageTypo".into()));
        assert!(p.problems(Some("shop")).is_empty());
    }

    #[test]
    fn reads_steps_with_waits_between() {
        let p = plan(SECRET_THEN_RESTART).unwrap();
        let FaultPlan::Steps(s) = &p else {
            panic!("not steps")
        };
        assert_eq!(s.steps.len(), 5);
        assert!(matches!(s.steps[1], Step::WaitFor(Wait::For(d)) if d.get().as_secs() == 2));
        let Step::WaitFor(Wait::Until(c)) = &s.steps[3] else {
            panic!("not a condition wait")
        };
        assert_eq!(c.timeout(), DEFAULT_WAIT_TIMEOUT);
        assert_eq!(p.label(), "steps: patch, patch, scale");
        assert_eq!(p.faults().count(), 3);
        assert_eq!(p.supported_signals(), SignalKind::ALL);
        assert!(
            p.problems(Some("shop")).is_empty(),
            "{:?}",
            p.problems(Some("shop"))
        );
        // It writes back as it reads.
        let again: FaultPlan = serde_yaml::from_str(&serde_yaml::to_string(&p).unwrap()).unwrap();
        assert_eq!(again.label(), p.label());
    }

    #[rstest]
    #[case(
        "imageTypoo: {}",
        "unknown fault `imageTypoo`; expected one of `imageTypo`"
    )]
    #[case("imageTypoo: {}", "or `steps`")]
    #[case(
        "{imageTypo: {target: {namespace: a, deployment: b}}, podKill: {}}",
        "a fault has a second key `podKill`"
    )]
    #[case("steps: [{waitFor: 5}]", "`5` is a bare number")]
    #[case("steps: [{waitFor: soon}]", "`soon` is not a duration")]
    #[case("steps: [{patchh: {}}]", "unknown fault `patchh`")]
    #[case("steps: [{patchh: {}}]", "or `waitFor`")]
    #[case("steps: [{}]", "an empty step")]
    #[case("steps: [{waitFor: 5s, scale: {}}]", "a step has a second key `scale`")]
    #[case("steps: []\nsteps: []", "duplicate")]
    #[case("allowNamespaces: [a]", "missing field `steps`")]
    #[case("steps: []\ntimeout: 5s", "unknown field `timeout` beside `steps`")]
    #[case(
        "steps: [{waitFor: {object: {apiVersion: v1, kind: ConfigMap, name: x}, expresion: 'true'}}]",
        "unknown field `expresion`"
    )]
    #[case("{}", "spec.fault is empty")]
    fn refuses_malformed_plans(#[case] yaml: &str, #[case] says: &str) {
        let err = plan(yaml).unwrap_err();
        assert!(err.contains(says), "{yaml}\n→ {err}");
    }

    #[test]
    fn errors_inside_a_step_keep_their_position() {
        let yaml = "steps:\n  - waitFor: 1s\n  - patch:\n      target: {apiVersion: v1, kind: Service, name: web}\n      typo: 1\n";
        let err = serde_yaml::from_str::<FaultPlan>(yaml).unwrap_err();
        assert!(err.to_string().contains("unknown field `typo`"), "{err}");
        let at = err.location().expect("a location");
        assert_eq!(at.line(), 5, "{err}");
    }

    #[rstest]
    #[case("steps: []", None, "spec.fault.steps is empty")]
    #[case(
        "steps: [{waitFor: 1s}, {scale: {target: {kind: Deployment, namespace: shop, name: web}, replicas: 0}}]",
        Some(0),
        "comes before any fault"
    )]
    #[case(
        "steps: [{scale: {target: {kind: Deployment, namespace: shop, name: web}, replicas: 0}}, {waitFor: 1s}]",
        Some(1),
        "comes after the last fault"
    )]
    #[case(
        "steps: [{scale: {target: {kind: Deployment, namespace: payments, name: api}, replicas: 0}}]",
        Some(0),
        "acts in namespace `payments`, but the baseline lives in `shop`"
    )]
    #[case(
        "steps: [{patch: {target: {apiVersion: v1, kind: Service, namespace: shop, name: web}, patch: {}}}]",
        Some(0),
        "the patch is empty"
    )]
    fn finds_what_the_steps_get_wrong(
        #[case] yaml: &str,
        #[case] step: Option<usize>,
        #[case] says: &str,
    ) {
        let problems = plan(yaml).unwrap().problems(Some("shop"));
        assert!(
            problems
                .iter()
                .any(|p| p.step == step && p.message.contains(says)),
            "{yaml}\n→ {problems:?}"
        );
    }

    #[test]
    fn another_namespace_is_fine_once_named() {
        let p = plan("steps: [{scale: {target: {kind: Deployment, namespace: payments, name: api}, replicas: 0}}]\nallowNamespaces: [payments]").unwrap();
        assert!(p.problems(Some("shop")).is_empty());
        let sys = plan("steps: [{scale: {target: {kind: Deployment, namespace: kube-system, name: coredns}, replicas: 0}}]").unwrap();
        assert!(
            sys.problems(Some("shop")).is_empty(),
            "kube-system needs no allowance"
        );
    }

    #[test]
    fn the_schema_offers_both_forms() {
        let schema = serde_json::to_value(schemars::schema_for!(FaultPlan)).unwrap();
        let text = schema.to_string();
        assert!(text.contains("\"steps\""), "{text}");
        assert!(text.contains("\"waitFor\""), "{text}");
        assert!(text.contains("\"imageTypo\""), "{text}");
    }
}
