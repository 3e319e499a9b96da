//! The end of a run: deleting the baselines it applied, and saying so.

use kube::Client;
use tokio_util::sync::CancellationToken;

use super::{EventSender, RunEvent};
use crate::baseline::{NAMESPACE_GONE_TIMEOUT, delete_baseline, wait_namespace_gone};
use crate::kobj::{self, ObjectRef};
use crate::vocab::duration::format_duration;

/// Deletes the baselines the run applied, newest first, each once, and
/// waits (a watch, bounded) until each namespace is gone, so that the next
/// run can apply into it at once instead of meeting it half-deleted. Says
/// what it does through `events`. A run stopped by a signal issues the
/// deletions without waiting: the process is expected to exit soon.
pub(super) async fn delete_baselines(
    client: &Client,
    applied: &[Vec<ObjectRef>],
    events: Option<&EventSender>,
    cancel: &CancellationToken,
) {
    let say = |message: String| {
        if let Some(tx) = events {
            let _ = tx.send(RunEvent::Note { message });
        }
    };
    let mut seen = std::collections::HashSet::new();
    for objects in applied.iter().rev() {
        let Some(namespace) = objects.iter().find(|o| o.kind == "Namespace") else {
            continue;
        };
        if !seen.insert(namespace.name.clone()) {
            continue;
        }
        let ns = namespace.name.as_str();
        let uid = match kobj::get(client, namespace).await {
            Ok(Some(live)) => live.metadata.uid,
            Ok(None) => continue,
            Err(e) => {
                say(format!("could not delete baseline namespace {ns}: {e}"));
                continue;
            }
        };
        say(format!("deleting baseline namespace {ns}"));
        if let Err(e) = delete_baseline(client, objects).await {
            say(format!("could not delete baseline namespace {ns}: {e}"));
            continue;
        }
        if cancel.is_cancelled() {
            continue;
        }
        let started = std::time::Instant::now();
        let Some(uid) = uid else { continue };
        match wait_namespace_gone(client, ns, &uid, NAMESPACE_GONE_TIMEOUT).await {
            Ok(()) => say(format!(
                "baseline namespace {ns} deleted ({})",
                format_duration(started.elapsed())
            )),
            Err(e) => say(format!("baseline namespace {ns}: {e}")),
        }
    }
}
