//! Live progress from the run's event stream. On a terminal: one indicatif
//! spinner per live experiment under a MultiProgress, with what happens
//! printed above them, each line naming its experiment. Otherwise (CI
//! logs): plain lines, each prefixed with its experiment's name, so
//! experiments running side by side stay readable when interleaved.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::runner::{Placed, RunEvent};
use crate::timeline::EntryKind;
use crate::vocab::duration::format_duration;

/// One line on stderr; a closed stderr (a terminal gone with SIGHUP) is
/// not an error worth stopping for.
fn line_out(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Prints progress until the sender side closes.
pub async fn show(mut events: UnboundedReceiver<RunEvent>) {
    let tty = std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut lines = Lines::default();
    while let Some(event) = events.recv().await {
        if let RunEvent::Planned { experiments, .. } = &event {
            lines.width = experiments
                .iter()
                .map(|p| p.experiment.chars().count())
                .max()
                .unwrap_or(0);
        }
        if tty {
            match &event {
                RunEvent::ExperimentStarted { experiment, .. } => {
                    let pb = multi.add(ProgressBar::new_spinner());
                    pb.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {prefix:.bold} {wide_msg} [{elapsed}]",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.set_prefix(experiment.clone());
                    pb.enable_steady_tick(Duration::from_millis(120));
                    bars.insert(experiment.clone(), pb);
                }
                RunEvent::PhaseStarted {
                    experiment,
                    trial,
                    phase,
                } => {
                    if let Some(pb) = bars.get(experiment) {
                        pb.set_message(format!("trial {trial}: {}", phase.doing()));
                    }
                }
                RunEvent::ExperimentFinished { report } => {
                    if let Some(pb) = bars.remove(&report.name) {
                        pb.finish_and_clear();
                        multi.remove(&pb);
                    }
                }
                _ => {}
            }
            for line in lines.of(&event, true) {
                let _ = multi.println(line);
            }
        } else {
            for line in lines.of(&event, false) {
                line_out(&line);
            }
        }
    }
}

/// Turns events into lines (pure, so it can be tested).
#[derive(Debug, Default)]
struct Lines {
    /// The longest experiment name, for aligned prefixes.
    width: usize,
}

impl Lines {
    /// The lines an event prints. On a terminal the spinner shows the
    /// phases, so they print nothing; in logs every line carries its
    /// experiment's name.
    fn of(&self, event: &RunEvent, tty: bool) -> Vec<String> {
        let tag = |name: &str| format!("{name:<width$} │", width = self.width);
        match event {
            RunEvent::Planned {
                jobs,
                why,
                experiments,
            } => plan(*jobs, why, experiments),
            RunEvent::ExperimentStarted { experiment, trials } => vec![format!(
                "▶ {experiment} ({trials} trial{})",
                if *trials == 1 { "" } else { "s" }
            )],
            RunEvent::PhaseStarted {
                experiment,
                trial,
                phase,
            } if !tty => vec![format!(
                "{} trial {trial}: {}",
                tag(experiment),
                phase.doing()
            )],
            RunEvent::PhaseStarted { .. } => vec![],
            RunEvent::Timeline {
                experiment, entry, ..
            } => {
                let what = match &entry.kind {
                    EntryKind::Injected { summary } => Some(format!("injected: {summary}")),
                    EntryKind::Signal {
                        observation,
                        expected: true,
                    } => Some(format!(
                        "signal: {} on {} ({})",
                        observation.kind, observation.object, observation.reason
                    )),
                    EntryKind::Reverted { actions } => {
                        Some(format!("reverted: {}", actions.join(", ")))
                    }
                    EntryKind::Error { phase, message } => {
                        Some(format!("{phase:?} failed: {message}"))
                    }
                    EntryKind::StepStarted { step } => Some(format!("▶ {step}")),
                    EntryKind::StepFinished { step, error: None } => {
                        Some(format!("■ {step}: done"))
                    }
                    EntryKind::StepFinished {
                        step,
                        error: Some(e),
                    } => Some(format!("■ {step}: failed: {e}")),
                    EntryKind::Note { message } => Some(message.clone()),
                    _ => None,
                };
                what.map(|w| format!("{} {w}", tag(experiment)))
                    .into_iter()
                    .collect()
            }
            RunEvent::TrialFinished { experiment, report } => {
                let m = &report.marks;
                let fmt =
                    |d: Option<Duration>| d.map(format_duration).unwrap_or_else(|| "-".into());
                vec![format!(
                    "{} trial {}: detected in {}, recovered in {}",
                    tag(experiment),
                    report.trial,
                    fmt(m.time_to_detect()),
                    fmt(m.time_to_recover())
                )]
            }
            RunEvent::Note { message } => vec![message.clone()],
            RunEvent::ExperimentFinished { report } => {
                vec![format!("■ {}: {:?}", report.name, report.outcome)]
            }
        }
    }
}

/// The plan, said before anything runs: how many at once and why, who runs
/// alone and who cannot have a namespace of its own.
fn plan(jobs: u32, why: &str, experiments: &[Placed]) -> Vec<String> {
    let mut out = vec![format!(
        "plan: {} experiment{}, {}: {why}",
        experiments.len(),
        if experiments.len() == 1 { "" } else { "s" },
        if jobs == 1 {
            "one at a time".to_string()
        } else {
            format!("up to {jobs} at once")
        }
    )];
    if jobs > 1 {
        for p in experiments.iter().filter(|p| !p.alone.is_empty()) {
            let what: Vec<&str> = p.alone.iter().map(|r| r.describe()).collect();
            out.push(format!(
                "  alone: {} (it breaks {})",
                p.experiment,
                what.join(", ")
            ));
        }
    }
    for p in experiments {
        if let Some(why) = &p.in_place {
            out.push(format!(
                "  in place, not beside others on its namespace: {} ({why})",
                p.experiment
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::SharedResource;
    use crate::timeline::Phase;

    fn planned() -> RunEvent {
        RunEvent::Planned {
            jobs: 4,
            why: "as asked".into(),
            experiments: vec![
                Placed {
                    experiment: "image-typo".into(),
                    alone: vec![],
                    instances: true,
                    in_place: None,
                },
                Placed {
                    experiment: "coredns-memory-squeeze".into(),
                    alone: vec![SharedResource::ClusterDns],
                    instances: true,
                    in_place: None,
                },
                Placed {
                    experiment: "crd".into(),
                    alone: vec![],
                    instances: false,
                    in_place: Some("CustomResourceDefinition/a is cluster-scoped".into()),
                },
            ],
        }
    }

    #[test]
    fn the_plan_says_how_many_who_runs_alone_and_who_stays_in_place() {
        let lines = Lines::default().of(&planned(), false);
        assert_eq!(
            lines,
            vec![
                "plan: 3 experiments, up to 4 at once: as asked",
                "  alone: coredns-memory-squeeze (it breaks cluster DNS)",
                "  in place, not beside others on its namespace: crd (CustomResourceDefinition/a is cluster-scoped)",
            ]
        );
    }

    #[test]
    fn log_lines_carry_their_experiment_aligned() {
        let lines = Lines { width: 10 };
        let phase = RunEvent::PhaseStarted {
            experiment: "image-typo".into(),
            trial: 1,
            phase: Phase::Inject,
        };
        assert_eq!(
            lines.of(&phase, false),
            vec!["image-typo │ trial 1: injecting fault"]
        );
        let short = RunEvent::PhaseStarted {
            experiment: "pod-kill".into(),
            trial: 2,
            phase: Phase::Recover,
        };
        assert_eq!(
            lines.of(&short, false),
            vec!["pod-kill   │ trial 2: waiting for recovery"]
        );
        // On a terminal the spinner shows phases.
        assert!(lines.of(&phase, true).is_empty());
    }
}
