//! Live progress from the run's event stream: an indicatif spinner per
//! experiment on a terminal, plain timestamped lines otherwise (CI logs).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::runner::RunEvent;
use crate::timeline::EntryKind;
use crate::vocab::duration::format_duration;

/// Prints progress until the sender side closes.
pub async fn show(mut events: UnboundedReceiver<RunEvent>) {
    let tty = std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    while let Some(event) = events.recv().await {
        match event {
            RunEvent::ExperimentStarted { experiment, trials } => {
                let line = format!(
                    "▶ {experiment} ({trials} trial{})",
                    if trials == 1 { "" } else { "s" }
                );
                if tty {
                    let pb = ProgressBar::new_spinner();
                    pb.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {prefix:.bold} {wide_msg} [{elapsed}]",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.set_prefix(experiment);
                    pb.enable_steady_tick(Duration::from_millis(120));
                    pb.println(line);
                    bar = Some(pb);
                } else {
                    eprintln!("{line}");
                }
            }
            RunEvent::PhaseStarted { trial, phase, .. } => {
                let msg = format!("trial {trial}: {}", phase.doing());
                match &bar {
                    Some(pb) => pb.set_message(msg),
                    None => eprintln!("  {msg}"),
                }
            }
            RunEvent::Timeline { entry, .. } => {
                let line = match &entry.kind {
                    EntryKind::Injected { summary } => Some(format!("  injected: {summary}")),
                    EntryKind::Signal {
                        observation,
                        expected: true,
                    } => Some(format!(
                        "  signal: {} on {} ({})",
                        observation.kind, observation.object, observation.reason
                    )),
                    EntryKind::Reverted { actions } => {
                        Some(format!("  reverted: {}", actions.join(", ")))
                    }
                    EntryKind::Error { phase, message } => {
                        Some(format!("  {phase:?} failed: {message}"))
                    }
                    _ => None,
                };
                if let Some(line) = line {
                    match &bar {
                        Some(pb) => pb.println(line),
                        None => eprintln!("{line}"),
                    }
                }
            }
            RunEvent::TrialFinished { report, .. } => {
                let m = &report.marks;
                let fmt =
                    |d: Option<Duration>| d.map(format_duration).unwrap_or_else(|| "-".into());
                let line = format!(
                    "  trial {}: detected in {}, recovered in {}",
                    report.trial,
                    fmt(m.time_to_detect()),
                    fmt(m.time_to_recover())
                );
                match &bar {
                    Some(pb) => pb.println(line),
                    None => eprintln!("{line}"),
                }
            }
            RunEvent::ExperimentFinished { report } => {
                let line = format!("■ {}: {:?}", report.name, report.outcome);
                if let Some(pb) = bar.take() {
                    pb.finish_and_clear()
                }
                eprintln!("{line}");
            }
        }
    }
}
