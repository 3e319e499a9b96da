//! Which experiments a diff runs, and why: every one, or with
//! `--changed-only` those whose experiment or baseline objects (as rendered)
//! differ between base and head. Comparing the rendered objects, not the
//! files, means a values file edit that renders the same objects skips, and
//! a shared chart template edit selects every baseline rendering it.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::experiment::LoadedExperiment;

/// One experiment's place in the diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    /// The experiment's name.
    pub experiment: String,
    /// Whether it runs (on each side it exists on).
    pub run: bool,
    /// Why it runs, or why it was skipped.
    pub reason: String,
}

/// Decides for every experiment of either side; ordered by name.
pub fn select(
    base: &[LoadedExperiment],
    head: &[LoadedExperiment],
    changed_only: bool,
) -> Vec<Selection> {
    let by_name = |side: &[LoadedExperiment]| -> BTreeMap<String, usize> {
        side.iter()
            .enumerate()
            .map(|(i, e)| (e.name().to_string(), i))
            .collect()
    };
    let (b, h) = (by_name(base), by_name(head));
    let names: BTreeSet<&String> = b.keys().chain(h.keys()).collect();
    names
        .into_iter()
        .map(|name| {
            let (run, reason) = match (b.get(name), h.get(name)) {
                (None, Some(_)) => (true, "new in head".to_string()),
                (Some(_), None) => (true, "removed in head".to_string()),
                (Some(&i), Some(&j)) if changed_only => match changes(&base[i], &head[j]) {
                    Some(why) => (true, why),
                    None => (
                        false,
                        "neither the experiment nor its baseline's objects changed".to_string(),
                    ),
                },
                _ => (
                    true,
                    "every experiment runs (no --changed-only)".to_string(),
                ),
            };
            Selection {
                experiment: name.clone(),
                run,
                reason,
            }
        })
        .collect()
}

/// What differs between an experiment's two versions, if anything.
fn changes(base: &LoadedExperiment, head: &LoadedExperiment) -> Option<String> {
    if json(&base.experiment) != json(&head.experiment) {
        return Some("the experiment changed".into());
    }
    let (bb, hb) = (&base.baseline, &head.baseline);
    if bb.spec.namespace != hb.spec.namespace
        || json(&bb.spec.steady_state) != json(&hb.spec.steady_state)
    {
        return Some(format!(
            "baseline {}'s namespace or steady state changed",
            hb.name()
        ));
    }
    let objects = |b: &crate::baseline::LoadedBaseline| -> BTreeMap<String, serde_json::Value> {
        b.objects
            .iter()
            .map(|o| {
                let kind = o.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("");
                let ns = o
                    .metadata
                    .namespace
                    .as_deref()
                    .unwrap_or(b.spec.namespace.as_str());
                let name = o.metadata.name.as_deref().unwrap_or("");
                (
                    format!("{kind} {ns}/{name}"),
                    serde_json::to_value(o).unwrap_or_default(),
                )
            })
            .collect()
    };
    let (before, after) = (objects(bb), objects(hb));
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let changed: Vec<String> = keys
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| match (before.contains_key(k), after.contains_key(k)) {
            (true, false) => format!("{k} (removed)"),
            (false, true) => format!("{k} (added)"),
            _ => k.clone(),
        })
        .collect();
    if changed.is_empty() {
        return None;
    }
    let shown: Vec<&str> = changed.iter().take(3).map(String::as_str).collect();
    let more = changed.len().saturating_sub(shown.len());
    Some(format!(
        "baseline {} objects changed: {}{}",
        hb.name(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// A value's JSON form, for comparing the two versions.
fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment(dir: &std::path::Path, replicas: u32, detect: &str) -> LoadedExperiment {
        std::fs::create_dir_all(dir.join("manifests")).unwrap();
        std::fs::write(
            dir.join("manifests/web.yaml"),
            format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: x}}]}}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("baseline.yaml"),
            "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata: {name: shop}\nspec: {namespace: shop}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("kill.yaml"),
            format!("apiVersion: breakfix.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: kill}}\nspec:\n  baseline: baseline.yaml\n  fault:\n    podKill: {{target: {{namespace: shop, deployment: web}}}}\n  slo: {{detectWithin: {detect}, recoverWithin: 60s}}\n"),
        )
        .unwrap();
        crate::experiment::load_experiment(&dir.join("kill.yaml"))
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn changed_only_runs_what_the_change_touches_and_says_why() {
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let base = experiment(dirs[0].path(), 2, "30s");
        let same = experiment(dirs[1].path(), 2, "30s");
        let scaled = experiment(dirs[2].path(), 3, "30s");
        let stricter = experiment(dirs[3].path(), 2, "10s");

        let skipped = select(
            std::slice::from_ref(&base),
            std::slice::from_ref(&same),
            true,
        );
        assert!(!skipped[0].run);
        assert!(skipped[0].reason.contains("neither"), "{skipped:?}");

        let objects = select(
            std::slice::from_ref(&base),
            std::slice::from_ref(&scaled),
            true,
        );
        assert!(objects[0].run);
        assert_eq!(
            objects[0].reason,
            "baseline shop objects changed: Deployment shop/web"
        );

        let spec = select(
            std::slice::from_ref(&base),
            std::slice::from_ref(&stricter),
            true,
        );
        assert_eq!(spec[0].reason, "the experiment changed");

        let all = select(
            std::slice::from_ref(&base),
            std::slice::from_ref(&same),
            false,
        );
        assert!(all[0].run);

        let new = select(&[], std::slice::from_ref(&same), true);
        assert_eq!((new[0].run, new[0].reason.as_str()), (true, "new in head"));
    }
}
