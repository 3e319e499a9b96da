//! The end of a run: deleting the baselines it applied, and saying so.

use kube::Client;
use tokio_util::sync::CancellationToken;

use super::{EventSender, RunEvent};
use crate::baseline::{NAMESPACE_GONE_TIMEOUT, delete_baseline, wait_namespace_gone};
use crate::fault::Claim;
use crate::kobj::{self, ObjectRef};
use crate::lease;
use crate::vocab::duration::format_duration;

/// Deletes the baselines the run applied, newest first, each once, and
/// waits (a watch, bounded) until each namespace is gone, so that the next
/// run can apply into it at once instead of meeting it half-deleted. Says
/// what it does through `events`. A run stopped by a signal issues the
/// deletions without waiting: the process is expected to exit soon.
///
/// Each namespace is claimed again ([`lease::acquire`], without waiting)
/// for as long as it is being deleted: another run that claimed it since
/// this run's trial let go has its baseline in there, and it is left in
/// place; a run that wants it after this one claimed it waits until it is
/// gone, and never applies into a namespace being deleted under it.
pub(super) async fn delete_baselines(
    client: &Client,
    claimant: &lease::Claimant,
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
        let claim = [Claim::Namespace(ns.to_string())];
        let held = match lease::acquire(client, claimant, &claim, None, cancel, |_| {}).await {
            Ok(held) => Some(held),
            Err(lease::LeaseError::Held { holder, .. }) => {
                say(format!(
                    "baseline namespace {ns} left in place: {holder} holds it now"
                ));
                continue;
            }
            // Claims cannot be written here: delete as a run alone would.
            Err(e) => {
                tracing::warn!("claiming {ns} to delete it: {e}");
                None
            }
        };
        delete_namespace(client, namespace, objects, &say, cancel).await;
        if let Some(held) = held {
            held.release().await;
        }
    }
}

/// Deletes one baseline (`objects`, whose namespace is `namespace`) and
/// waits for its namespace to go, unless the run is stopping.
async fn delete_namespace(
    client: &Client,
    namespace: &ObjectRef,
    objects: &[ObjectRef],
    say: &impl Fn(String),
    cancel: &CancellationToken,
) {
    let ns = namespace.name.as_str();
    let uid = match kobj::get(client, namespace).await {
        Ok(Some(live)) => live.metadata.uid,
        Ok(None) => return,
        Err(e) => {
            say(format!("could not delete baseline namespace {ns}: {e}"));
            return;
        }
    };
    say(format!("deleting baseline namespace {ns}"));
    if let Err(e) = delete_baseline(client, objects).await {
        say(format!("could not delete baseline namespace {ns}: {e}"));
        return;
    }
    if cancel.is_cancelled() {
        return;
    }
    let started = std::time::Instant::now();
    let Some(uid) = uid else { return };
    match wait_namespace_gone(client, ns, &uid, NAMESPACE_GONE_TIMEOUT).await {
        Ok(()) => say(format!(
            "baseline namespace {ns} deleted ({})",
            format_duration(started.elapsed())
        )),
        Err(e) => say(format!("baseline namespace {ns}: {e}")),
    }
}
