//! The waits between a fault's steps (`waitFor:` in `fault.steps`): a
//! plain duration, or until a CEL condition holds on one object, watched
//! (not polled) and bounded by its timeout.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::Api;
use kube::Client;
use kube::api::DynamicObject;
use kube::discovery::Scope as ApiScope;
use kube::runtime::wait::await_condition;
use serde_json::Value;

use crate::experiment::Wait;
use crate::experiment::plan::WaitCondition;
use crate::kobj::{self, ObjectError, ObjectRef};
use crate::vocab::HumanDuration;
use crate::vocab::duration::format_duration;

/// Why a `waitFor` between steps failed; the steps before it are reverted.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The object's kind is not served by the cluster, or discovery failed.
    #[error("waitFor {object}: {source}")]
    Resolve {
        /// The object as the file names it.
        object: String,
        /// Why the object could not be resolved.
        #[source]
        source: ObjectError,
    },
    /// The watch on the object failed.
    #[error("waitFor {object}: the watch failed: {source}")]
    Watch {
        /// The object, with its namespace.
        object: String,
        /// Why the watch failed.
        #[source]
        source: kube::runtime::wait::Error,
    },
    /// The condition did not hold in time.
    #[error("waitFor {object}: `{expression}` did not hold within {} (last read: {last})", format_duration(*.timeout))]
    Timeout {
        /// The object, with its namespace.
        object: String,
        /// The CEL expression.
        expression: String,
        /// How long it was given.
        timeout: Duration,
        /// What the expression read last, explained.
        last: String,
    },
}

/// Waits as `wait` says; `Ok` says what was waited for, `Err` why the wait
/// failed (the condition never held, the object's kind is unknown, …).
pub async fn wait(
    client: &Client,
    wait: &Wait,
    default_namespace: &str,
) -> Result<String, WaitError> {
    match wait {
        Wait::For(d) => {
            tokio::time::sleep(d.get()).await;
            Ok(format!("waited {d}"))
        }
        Wait::Until(c) => until(client, c, default_namespace).await,
    }
}

/// Keeps a fault in as `spec.hold` says and returns how the hold ended: its
/// duration passed, its condition held, or (a condition's) `timeout`, by
/// default `limit`, ran out. A hold always ends; it never fails the trial.
pub async fn hold(
    client: &Client,
    hold: &Wait,
    default_namespace: &str,
    limit: Duration,
) -> String {
    match hold {
        Wait::For(d) => {
            tokio::time::sleep(d.get()).await;
            format!("held for {d}")
        }
        Wait::Until(c) => {
            let bounded = WaitCondition {
                timeout: Some(c.timeout.unwrap_or(HumanDuration(limit))),
                ..c.clone()
            };
            match until(client, &bounded, default_namespace).await {
                Ok(done) => format!("hold ended: {done}"),
                Err(why) => format!("hold ended without its condition: {why}"),
            }
        }
    }
}

/// Waits until `c.expression` holds on `c.object` (a missing object reads
/// as `null`), or its timeout passes.
async fn until(
    client: &Client,
    c: &WaitCondition,
    default_namespace: &str,
) -> Result<String, WaitError> {
    let target = ObjectRef {
        api_version: c.object.api_version.clone(),
        kind: c.object.kind.clone(),
        namespace: c.object.namespace.as_ref().map(ToString::to_string),
        name: c.object.name.clone(),
    };
    let (resource, caps) =
        kobj::resolve(client, &target)
            .await
            .map_err(|source| WaitError::Resolve {
                object: c.object.to_string(),
                source,
            })?;
    let (api, shown): (Api<DynamicObject>, String) = match caps.scope {
        ApiScope::Namespaced => {
            let ns = target
                .namespace
                .clone()
                .unwrap_or_else(|| default_namespace.to_string());
            let shown = format!("{}/{} -n {ns}", target.kind.to_lowercase(), target.name);
            (Api::namespaced_with(client.clone(), &ns, &resource), shown)
        }
        ApiScope::Cluster => (
            Api::all_with(client.clone(), &resource),
            c.object.to_string(),
        ),
    };
    let last: Arc<Mutex<Value>> = Arc::new(Mutex::new(Value::Null));
    let seen = last.clone();
    let expression = c.expression.clone();
    let condition = move |obj: Option<&DynamicObject>| {
        let value = obj
            .and_then(|o| serde_json::to_value(o).ok())
            .unwrap_or(Value::Null);
        let holds = expression.holds(&value);
        *seen.lock().unwrap_or_else(PoisonError::into_inner) = value;
        holds
    };
    let timeout = c.timeout();
    let started = std::time::Instant::now();
    match tokio::time::timeout(timeout, await_condition(api, &target.name, condition)).await {
        Ok(Ok(_)) => Ok(format!(
            "`{}` held on {shown} after {}",
            c.expression.as_str(),
            format_duration(round_ms(started.elapsed()))
        )),
        Ok(Err(source)) => Err(WaitError::Watch {
            object: shown,
            source,
        }),
        Err(_) => {
            let value = last.lock().unwrap_or_else(PoisonError::into_inner).clone();
            Err(WaitError::Timeout {
                object: shown,
                expression: c.expression.as_str().to_string(),
                timeout,
                last: c.expression.explain(&value),
            })
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
