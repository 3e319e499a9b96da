//! The vocabulary every other module speaks: object names, durations,
//! diagnostics about input files and how YAML is read into them, the API
//! version of breakfix's files, the signal kinds a cluster can show, and the
//! labels breakfix puts on what it touches.
//!
//! This module imports nothing else of the crate, so it can sit at the bottom
//! of the module graph (the order is in the crate's documentation and
//! `tests/layering.rs` checks it).

pub mod cel;
pub mod diagnostic;
pub mod duration;
pub mod load;
pub mod name;
mod signal;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use cel::CelExpr;
pub use diagnostic::Diagnostic;
pub use duration::HumanDuration;
pub use name::Name;
pub use signal::SignalKind;

/// Field manager used for every server-side apply and patch breakfix makes.
pub const FIELD_MANAGER: &str = "breakfix";
/// Label carried by every object breakfix creates, valued with the run id.
pub const RUN_LABEL: &str = "breakfix.dev/run";
/// Label marking objects that belong to breakfix; breakfix writes the value
/// `breakfix`, as Helm writes `Helm`.
pub const MANAGED_LABEL: &str = "app.kubernetes.io/managed-by";

/// The only `apiVersion` this release reads.
pub const API_VERSION: &str = "breakfix.dev/v1alpha1";

/// `apiVersion: breakfix.dev/v1alpha1`, checked on load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct ApiVersion(#[schemars(regex(pattern = r"^breakfix\.dev/v1alpha1$"))] String);

impl Default for ApiVersion {
    fn default() -> Self {
        Self(API_VERSION.to_string())
    }
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == API_VERSION {
            Ok(Self(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "apiVersion `{s}` is not one breakfix reads; expected `{API_VERSION}`"
            )))
        }
    }
}

/// Namespaces a fault may target outside its baseline (cluster services such as CoreDNS).
pub fn is_system_namespace(ns: &str) -> bool {
    ns == "kube-system"
}
