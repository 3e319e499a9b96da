//! Measuring the SLOs beyond timing over one trial's fault window.
//!
//! A [`MeasureSession`] opens right before injection (canaries read,
//! blast-radius and condition watches listed and armed; for a latency bound
//! relative to a baseline, a first canary read one baseline window earlier),
//! reads the canaries again when a hold begins and ends, and closes once
//! the trial is over (a last canary read, watches stopped); what it saw
//! becomes the trial's [`Measurements`]. Everything is watch-based or a
//! one-off read; nothing polls. Verdicts are the `slo` module's job.

pub mod availability;
pub mod blast_radius;
pub mod condition;
pub mod latency;

use std::collections::BTreeMap;

use jiff::Timestamp;
use kube::Client;

use crate::detect::Scope;
use crate::experiment::slo::{AvailabilitySlo, CanaryRef, LatencyBound, Window};
use crate::experiment::{ExperimentSpec, Impact, SloSpec};
use crate::slo::Measurements;
use crate::slo::measurement::{ImpactMeasurements, LatencyMeasurement};
use availability::{Canary, CanaryRead};
use blast_radius::BlastWatch;
use condition::ConditionWatch;

/// When a canary is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Moment {
    /// One baseline window before injection (relative latency bounds only).
    BaselineStart,
    /// Right before the fault (its first step) goes in.
    Injected,
    /// Detection: the hold begins.
    HoldStart,
    /// The hold ends: the revert begins.
    HoldEnd,
    /// The trial is over (recovered, or given up).
    End,
}

impl Moment {
    /// The reads that open and close `window`.
    fn bounds(window: Window) -> (Self, Self) {
        match window {
            Window::Fault => (Self::Injected, Self::End),
            Window::Hold => (Self::HoldStart, Self::HoldEnd),
        }
    }
}

/// One canary and its reads so far.
struct Tracked {
    canary: Canary,
    reads: BTreeMap<Moment, CanaryRead>,
}

/// The measurements of one trial while the fault is in.
pub struct MeasureSession {
    /// The baseline's namespace, the default for canaries.
    namespace: String,
    canaries: Vec<Tracked>,
    /// Availability bounds: the SLO's, and what the fault must cost.
    availability: Vec<(Role, AvailabilitySlo, Window)>,
    /// Latency bounds: the SLO's, and how slow the fault must make things.
    latency: Vec<(Role, LatencyBound, Window)>,
    blast: Option<BlastWatch>,
    conditions: Vec<ConditionWatch>,
    /// The fault's targets (one per step), left out of the blast radius.
    targets: Vec<Scope>,
    /// Namespaces of other experiments running beside this one, left out
    /// of the blast radius.
    others: Vec<String>,
}

impl MeasureSession {
    /// Opens the session for the SLOs in `slo`, canaries measured over the
    /// fault window unless they say; `namespace` is the baseline's, the
    /// default for canaries and namespaced condition objects.
    pub async fn start(client: &Client, slo: &SloSpec, namespace: &str) -> Self {
        Self::open(client, slo, None, Window::Fault, namespace).await
    }

    /// Opens the session for an experiment: its SLOs and what the fault
    /// must cause (`expect.impact`), over its default window (the hold
    /// window when it holds). With a latency bound relative to the
    /// baseline, this waits one baseline window between the two canary
    /// reads that frame it.
    pub async fn start_for(client: &Client, spec: &ExperimentSpec, namespace: &str) -> Self {
        Self::open(
            client,
            &spec.slo,
            spec.expect.impact.as_ref(),
            spec.default_window(),
            namespace,
        )
        .await
    }

    async fn open(
        client: &Client,
        slo: &SloSpec,
        impact: Option<&Impact>,
        default_window: Window,
        namespace: &str,
    ) -> Self {
        let with_window_a =
            |role: Role, a: &AvailabilitySlo| (role, a.clone(), a.over.unwrap_or(default_window));
        let with_window_l =
            |role: Role, l: &LatencyBound| (role, l.clone(), l.over.unwrap_or(default_window));
        let mut session = Self {
            namespace: namespace.to_string(),
            canaries: Vec::new(),
            availability: slo
                .availability
                .iter()
                .map(|a| with_window_a(Role::Slo, a))
                .chain(
                    impact
                        .and_then(|i| i.availability.as_ref())
                        .map(|a| with_window_a(Role::Impact, a)),
                )
                .collect(),
            latency: slo
                .latency
                .iter()
                .map(|l| with_window_l(Role::Slo, l))
                .chain(
                    impact
                        .and_then(|i| i.latency.as_ref())
                        .map(|l| with_window_l(Role::Impact, l)),
                )
                .collect(),
            blast: None,
            conditions: Vec::new(),
            targets: Vec::new(),
            others: Vec::new(),
        };
        let refs: Vec<&CanaryRef> = session
            .availability
            .iter()
            .map(|(_, a, _)| &a.canary)
            .chain(session.latency.iter().map(|(_, l, _)| &l.canary))
            .collect();
        let mut canaries: Vec<Canary> = Vec::new();
        for r in refs {
            let c = session.canary_for(r);
            if !canaries.iter().any(|k| same_canary(k, &c)) {
                canaries.push(c);
            }
        }
        session.canaries = canaries
            .into_iter()
            .map(|canary| Tracked {
                canary,
                reads: BTreeMap::new(),
            })
            .collect();
        let baseline = session
            .latency
            .iter()
            .filter_map(|(_, l, _)| l.baseline_needed())
            .max();
        if let Some(wait) = baseline {
            session.read(client, Moment::BaselineStart).await;
            tokio::time::sleep(wait).await;
        }
        session.blast = match &slo.blast_radius {
            Some(b) => Some(BlastWatch::start(client, b).await),
            None => None,
        };
        session.conditions = futures::future::join_all(
            slo.conditions
                .iter()
                .map(|c| ConditionWatch::start(client, c, namespace)),
        )
        .await;
        session.read(client, Moment::Injected).await;
        session
    }

    /// Reads every canary now, as the reads of `moment`.
    pub async fn read(&mut self, client: &Client, moment: Moment) {
        let reads =
            futures::future::join_all(self.canaries.iter().map(|t| t.canary.read(client))).await;
        for (tracked, read) in self.canaries.iter_mut().zip(reads) {
            tracked.reads.insert(moment, read);
        }
    }

    /// Whether there is anything to measure.
    pub fn is_empty(&self) -> bool {
        self.canaries.is_empty() && self.blast.is_none() && self.conditions.is_empty()
    }

    /// Records the fault's target once injection has said what it is.
    pub fn set_target(&mut self, scope: &Scope) {
        self.targets = vec![scope.clone()];
    }

    /// Records one more target: a later step's.
    pub fn add_target(&mut self, scope: &Scope) {
        self.targets.push(scope.clone());
    }

    /// The reads of `canary` that frame `window`, if both were taken.
    fn framed(&self, canary: &Canary, window: Window) -> Option<(&CanaryRead, &CanaryRead)> {
        let (open, close) = Moment::bounds(window);
        let tracked = self
            .canaries
            .iter()
            .find(|t| same_canary(&t.canary, canary))?;
        Some((tracked.reads.get(&open)?, tracked.reads.get(&close)?))
    }

    fn latency_measurement(&self, bound: &LatencyBound, window: Window) -> LatencyMeasurement {
        let canary = &self.canary_for(&bound.canary);
        let measured = match self.framed(canary, window) {
            Some((a, b)) => latency::window(a, b),
            None => crate::slo::measurement::LatencyWindow {
                error: Some(not_framed(window)),
                ..Default::default()
            },
        };
        let baseline = bound.baseline_needed().map(|_| {
            let tracked = self
                .canaries
                .iter()
                .find(|t| same_canary(&t.canary, canary));
            match tracked.and_then(|t| {
                Some((
                    t.reads.get(&Moment::BaselineStart)?,
                    t.reads.get(&Moment::Injected)?,
                ))
            }) {
                Some((a, b)) => latency::window(a, b),
                None => crate::slo::measurement::LatencyWindow {
                    error: Some("the baseline window was not read".into()),
                    ..Default::default()
                },
            }
        });
        LatencyMeasurement {
            canary: canary.label(),
            over: window,
            window: measured,
            baseline,
        }
    }

    /// Namespaces other experiments held during the fault window: the
    /// blast radius does not count them.
    pub fn set_others(&mut self, namespaces: Vec<String>) {
        self.others = namespaces;
    }

    /// Closes the session. `injected`..`until` is the fault window (`until`
    /// defaults to now); without an injection there is no window and
    /// nothing is reported.
    pub async fn finish(
        mut self,
        client: &Client,
        injected: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Measurements {
        let Some(from) = injected else {
            if let Some(b) = self.blast {
                b.finish(&[], &[], Timestamp::now(), Timestamp::now()).await;
            }
            for c in self.conditions {
                c.finish(Timestamp::now(), Timestamp::now()).await;
            }
            return Measurements::default();
        };
        self.read(client, Moment::End).await;
        let availability_of = |role: Role| {
            let (_, a, window) = self.availability.iter().find(|(r, _, _)| *r == role)?;
            let canary = self.canary_for(&a.canary);
            let mut m = match self.framed(&canary, *window) {
                Some((first, second)) => availability::window(&canary.label(), first, second),
                None => crate::slo::measurement::AvailabilityMeasurement {
                    canary: canary.label(),
                    error: Some(not_framed(*window)),
                    ..Default::default()
                },
            };
            m.over = Some(*window);
            Some(m)
        };
        let latency_of = |role: Role| {
            let (_, l, window) = self.latency.iter().find(|(r, _, _)| *r == role)?;
            Some(self.latency_measurement(l, *window))
        };
        let availability = availability_of(Role::Slo);
        let latency = latency_of(Role::Slo);
        let impact = (self.availability.iter().any(|(r, _, _)| *r == Role::Impact)
            || self.latency.iter().any(|(r, _, _)| *r == Role::Impact))
        .then(|| ImpactMeasurements {
            availability: availability_of(Role::Impact),
            latency: latency_of(Role::Impact),
            signals: Vec::new(),
        });
        let to = until.unwrap_or_else(Timestamp::now);
        let blast_radius = match self.blast {
            Some(b) => Some(b.finish(&self.targets, &self.others, from, to).await),
            None => None,
        };
        let conditions =
            futures::future::join_all(self.conditions.into_iter().map(|c| c.finish(from, to)))
                .await;
        Measurements {
            availability,
            latency,
            blast_radius,
            conditions,
            impact,
        }
    }

    /// The canary `r` names (its namespace defaulting to the baseline's).
    fn canary_for(&self, r: &CanaryRef) -> Canary {
        canary_of(r, &self.namespace)
    }
}

/// Whose bound a canary measurement serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// An SLO (`slo.availability`, `slo.latency`).
    Slo,
    /// What the fault must cause (`expect.impact`).
    Impact,
}

/// Why a window has no reads.
fn not_framed(window: Window) -> String {
    match window {
        Window::Hold => "no hold window: the fault was never held (it was not detected)".into(),
        Window::Fault => "no fault window: the fault never went in".into(),
    }
}

fn canary_of(r: &CanaryRef, namespace: &str) -> Canary {
    Canary {
        namespace: r
            .namespace
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| namespace.to_string()),
        selector: r.selector.to_string(),
        port: r.port,
    }
}

fn same_canary(a: &Canary, b: &Canary) -> bool {
    a.namespace == b.namespace && a.selector == b.selector && a.port == b.port
}
