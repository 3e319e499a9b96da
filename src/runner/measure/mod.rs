//! Measuring the SLOs beyond timing over one trial's fault window.
//!
//! A [`MeasureSession`] opens right before injection (first canary read,
//! blast-radius and condition watches listed and armed) and closes once the
//! trial is over (second canary read, watches stopped); what it saw becomes
//! the trial's [`Measurements`]. Everything is watch-based or a one-off
//! read; nothing polls. Verdicts are the `slo` module's job.

pub mod availability;
pub mod blast_radius;
pub mod condition;

use jiff::Timestamp;
use kube::Client;

use crate::detect::Scope;
use crate::experiment::SloSpec;
use crate::slo::Measurements;
use availability::{Canary, CanaryRead};
use blast_radius::BlastWatch;
use condition::ConditionWatch;

/// The measurements of one trial while the fault is in.
pub struct MeasureSession {
    canary: Option<(Canary, CanaryRead)>,
    blast: Option<BlastWatch>,
    conditions: Vec<ConditionWatch>,
    /// The fault's target, left out of the blast radius.
    target: Option<Scope>,
}

impl MeasureSession {
    /// Opens the session for `slo`; `namespace` is the baseline's, the
    /// default for canaries and namespaced condition objects.
    pub async fn start(client: &Client, slo: &SloSpec, namespace: &str) -> Self {
        let canary = match &slo.availability {
            Some(a) => {
                let canary = Canary {
                    namespace: a
                        .canary
                        .namespace
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| namespace.to_string()),
                    selector: a.canary.selector.to_string(),
                    port: a.canary.port,
                };
                let first = canary.read(client).await;
                Some((canary, first))
            }
            None => None,
        };
        let blast = match &slo.blast_radius {
            Some(b) => Some(BlastWatch::start(client, b).await),
            None => None,
        };
        let conditions = futures::future::join_all(
            slo.conditions
                .iter()
                .map(|c| ConditionWatch::start(client, c, namespace)),
        )
        .await;
        Self {
            canary,
            blast,
            conditions,
            target: None,
        }
    }

    /// Whether there is anything to measure.
    pub fn is_empty(&self) -> bool {
        self.canary.is_none() && self.blast.is_none() && self.conditions.is_empty()
    }

    /// Records the fault's target once injection has said what it is.
    pub fn set_target(&mut self, scope: &Scope) {
        self.target = Some(scope.clone());
    }

    /// Closes the session. `injected`..`until` is the fault window (`until`
    /// defaults to now); without an injection there is no window and
    /// nothing is reported.
    pub async fn finish(
        self,
        client: &Client,
        injected: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Measurements {
        let availability = match self.canary {
            Some((canary, first)) if injected.is_some() => {
                let second = canary.read(client).await;
                Some(availability::window(&canary.label(), &first, &second))
            }
            _ => None,
        };
        let Some(from) = injected else {
            if let Some(b) = self.blast {
                b.finish(None, Timestamp::now(), Timestamp::now()).await;
            }
            for c in self.conditions {
                c.finish(Timestamp::now(), Timestamp::now()).await;
            }
            return Measurements::default();
        };
        let to = until.unwrap_or_else(Timestamp::now);
        let blast_radius = match self.blast {
            Some(b) => Some(b.finish(self.target.as_ref(), from, to).await),
            None => None,
        };
        let conditions =
            futures::future::join_all(self.conditions.into_iter().map(|c| c.finish(from, to)))
                .await;
        Measurements {
            availability,
            blast_radius,
            conditions,
        }
    }
}
