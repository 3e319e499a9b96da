//! Condition SLOs: one object watched from before injection to recovery,
//! the user's CEL condition evaluated on every watch event, and each change
//! of its truth recorded with the values it read (and why it could not be
//! evaluated, when it could not).

use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use kube::api::DynamicObject;
use kube::discovery::Scope as ApiScope;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::experiment::slo::ConditionSlo;
use crate::kobj::{self, ObjectRef};
use crate::slo::measurement::{ConditionMeasurement, FalseSpan};
use crate::vocab::CelExpr;

/// How long the initial read may take.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A change of the condition's truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// When the condition changed.
    pub at: Timestamp,
    /// Whether it holds from then on.
    pub holds: bool,
    /// `path = value` for each path the expression reads.
    pub values: String,
}

/// What the watch task hands back.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Each change of the condition, in order.
    pub transitions: Vec<Transition>,
    /// Why the recording stopped early, if it did.
    pub error: Option<String>,
}

/// A running condition watch; dropping it stops the watch.
pub struct ConditionWatch {
    name: String,
    object: String,
    expr: String,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<Recorded>>,
    error: Option<String>,
    _stop_on_drop: DropGuard,
}

impl ConditionWatch {
    /// Resolves the object's kind, starts watching it and returns once its
    /// current state (or absence) is known.
    pub async fn start(client: &Client, spec: &ConditionSlo, default_namespace: &str) -> Self {
        let stop = CancellationToken::new();
        let mut watch = Self {
            name: spec.name.to_string(),
            object: spec.object.to_string(),
            expr: spec.expression.to_string(),
            stop: stop.clone(),
            task: None,
            error: None,
            _stop_on_drop: stop.clone().drop_guard(),
        };
        let target = ObjectRef {
            api_version: spec.object.api_version.clone(),
            kind: spec.object.kind.clone(),
            namespace: spec.object.namespace.as_ref().map(ToString::to_string),
            name: spec.object.name.clone(),
        };
        let (resource, caps) = match kobj::resolve(client, &target).await {
            Ok(r) => r,
            Err(e) => {
                watch.error = Some(e.to_string());
                return watch;
            }
        };
        let api: Api<DynamicObject> = match caps.scope {
            ApiScope::Namespaced => {
                let ns = target
                    .namespace
                    .clone()
                    .unwrap_or_else(|| default_namespace.to_string());
                watch.object = format!("{}/{} -n {ns}", target.kind.to_lowercase(), target.name);
                Api::namespaced_with(client.clone(), &ns, &resource)
            }
            ApiScope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let config = watcher::Config::default().fields(&format!("metadata.name={}", target.name));
        let events = watcher(api, config).default_backoff().boxed();
        let (ready_tx, ready_rx) = oneshot::channel();
        watch.task = Some(tokio::spawn(record(
            events,
            spec.expression.clone(),
            stop,
            ready_tx,
        )));
        let _ = tokio::time::timeout(INIT_TIMEOUT, ready_rx).await;
        watch
    }

    /// Stops watching; summarizes the window `from`..`to`.
    pub async fn finish(self, from: Timestamp, to: Timestamp) -> ConditionMeasurement {
        self.stop.cancel();
        let recorded = match self.task {
            Some(task) => task.await.unwrap_or_else(|e| Recorded {
                error: Some(format!("the condition watch crashed: {e}")),
                ..Recorded::default()
            }),
            None => Recorded {
                error: self.error,
                ..Recorded::default()
            },
        };
        let mut m = summarize(&recorded.transitions, from, to);
        m.name = self.name;
        m.object = self.object;
        m.expr = self.expr;
        m.error = recorded.error.or_else(|| {
            recorded
                .transitions
                .is_empty()
                .then(|| "the object's state was never read".to_string())
        });
        m
    }
}

async fn record(
    mut events: futures::stream::BoxStream<
        'static,
        Result<watcher::Event<DynamicObject>, watcher::Error>,
    >,
    expr: CelExpr,
    stop: CancellationToken,
    ready: oneshot::Sender<()>,
) -> Recorded {
    let mut out = Recorded::default();
    let mut ready = Some(ready);
    let mut listed: Option<Value> = None;
    let push = |out: &mut Recorded, object: &Value| {
        let evaluation = expr.evaluate(object);
        if out
            .transitions
            .last()
            .is_none_or(|t| t.holds != evaluation.holds)
        {
            let read = expr.explain(object);
            let values = match evaluation.error {
                Some(why) if !read.contains(&why) => format!("{read} ({why})"),
                _ => read,
            };
            out.transitions.push(Transition {
                at: Timestamp::now(),
                holds: evaluation.holds,
                values,
            });
        }
    };
    loop {
        let event = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            e = events.next() => match e {
                Some(e) => e,
                None => break,
            },
        };
        match event {
            Ok(watcher::Event::Init) => listed = None,
            Ok(watcher::Event::InitApply(obj)) => {
                listed = Some(serde_json::to_value(&obj).unwrap_or(Value::Null));
            }
            Ok(watcher::Event::InitDone) => {
                push(&mut out, listed.as_ref().unwrap_or(&Value::Null));
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
            Ok(watcher::Event::Apply(obj)) => {
                push(&mut out, &serde_json::to_value(&obj).unwrap_or(Value::Null));
            }
            Ok(watcher::Event::Delete(_)) => push(&mut out, &Value::Null),
            Err(e) => {
                out.error
                    .get_or_insert_with(|| format!("watch failed: {e}"));
            }
        }
    }
    out
}

/// The window `from`..`to` of a condition's transitions (pure).
pub fn summarize(
    transitions: &[Transition],
    from: Timestamp,
    to: Timestamp,
) -> ConditionMeasurement {
    let mut m = ConditionMeasurement {
        from: Some(from),
        to: Some(to),
        ..ConditionMeasurement::default()
    };
    let before = transitions.iter().rev().find(|t| t.at <= from);
    let mut state: Option<(bool, String)> = before.map(|t| (t.holds, t.values.clone()));
    m.initially = state.as_ref().is_some_and(|(h, _)| *h);
    if m.initially {
        m.became_true = Some(from);
    }
    let mut false_since: Option<(Timestamp, String)> = match &state {
        Some((false, values)) => Some((from, values.clone())),
        _ => None,
    };
    for t in transitions.iter().filter(|t| t.at > from && t.at <= to) {
        if state.as_ref().is_some_and(|(h, _)| *h == t.holds) {
            continue;
        }
        if t.holds {
            m.became_true.get_or_insert(t.at);
            if let Some((start, values)) = false_since.take() {
                m.false_spans.push(FalseSpan {
                    from: start,
                    to: Some(t.at),
                    values,
                });
            }
        } else {
            false_since = Some((t.at, t.values.clone()));
        }
        state = Some((t.holds, t.values.clone()));
    }
    if let Some((start, values)) = false_since {
        m.false_spans.push(FalseSpan {
            from: start,
            to: None,
            values,
        });
    }
    let ms = |a: Timestamp, b: Timestamp| {
        Duration::try_from(b.duration_since(a))
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    };
    m.false_ms = m
        .false_spans
        .iter()
        .map(|s| ms(s.from, s.to.unwrap_or(to)))
        .sum();
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn ts(s: u32) -> Timestamp {
        format!("2026-01-01T00:00:{s:02}Z").parse().unwrap()
    }

    fn t(at: u32, holds: bool) -> Transition {
        Transition {
            at: ts(at),
            holds,
            values: format!("object.status.readyReplicas = {}", u32::from(holds)),
        }
    }

    #[rstest]
    // Holds throughout.
    #[case(vec![t(0, true)], 0, None, Some(10))]
    // Dips for 4s in the middle.
    #[case(vec![t(0, true), t(12, false), t(16, true)], 4000, Some(12), Some(10))]
    // False at injection, turns true 5s later.
    #[case(vec![t(1, false), t(15, true)], 5000, Some(10), Some(15))]
    // Turns false and never comes back before the window closes at 30s.
    #[case(vec![t(0, true), t(20, false)], 10000, Some(20), Some(10))]
    // Never read before the window: nothing known until the first transition.
    #[case(vec![t(14, true)], 0, None, Some(14))]
    fn measures_time_false_and_time_to_true(
        #[case] transitions: Vec<Transition>,
        #[case] false_ms: u64,
        #[case] first_false: Option<u32>,
        #[case] became_true: Option<u32>,
    ) {
        let m = summarize(&transitions, ts(10), ts(30));
        assert_eq!(m.false_ms, false_ms, "{m:?}");
        assert_eq!(m.false_spans.first().map(|s| s.from), first_false.map(ts));
        assert_eq!(m.became_true, became_true.map(ts));
    }

    #[test]
    fn a_false_span_keeps_the_values_read() {
        let m = summarize(&[t(0, true), t(12, false), t(16, true)], ts(10), ts(30));
        assert_eq!(m.false_spans[0].values, "object.status.readyReplicas = 0");
        assert_eq!(m.false_spans[0].to, Some(ts(16)));
    }
}
