//! Reading the kubelet's probe verdicts off its Events.
//!
//! The kubelet reports every failed probe as an `Unhealthy` Event
//! (`Liveness probe failed: HTTP probe failed with statuscode: 404`) and every
//! container it kills for a probe as a `Killing` Event (`Container api failed
//! liveness probe, will be restarted`). The probe type and the cause in those
//! messages are what tell a wrong port from a too-tight timeout from a
//! too-short startup allowance, so they are parsed here, purely, and tested
//! on messages captured from a real kubelet.

use std::fmt;

use crate::vocab::SignalKind;

/// Which probe a kubelet message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeType {
    /// The liveness probe (restarts the container).
    Liveness,
    /// The readiness probe (takes the pod out of its Services).
    Readiness,
    /// The startup probe (holds the other probes back).
    Startup,
}

impl fmt::Display for ProbeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Liveness => "liveness",
            Self::Readiness => "readiness",
            Self::Startup => "startup",
        })
    }
}

/// Why a probe failed, as far as the kubelet's message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeCause {
    /// Nothing listens on the probed port.
    ConnectionRefused,
    /// The app answered later than `timeoutSeconds`.
    Timeout,
    /// The app answered with this non-2xx/3xx status (wrong path, not started…).
    HttpStatus(u16),
    /// Anything else (exec probes, DNS, resets…).
    Other,
}

/// One probe failure read off an `Unhealthy` Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailure {
    /// Which probe failed.
    pub probe: ProbeType,
    /// Why it failed.
    pub cause: ProbeCause,
}

impl ProbeFailure {
    /// The signal this failure is: a readiness failure is
    /// [`SignalKind::ReadinessFailed`] (kept apart from the pod's Unready
    /// state, which every starting pod shows too); a liveness or startup
    /// probe that times out is [`SignalKind::ProbeTimeout`];
    /// any other liveness failure is [`SignalKind::LivenessFailed`]. A startup
    /// probe failing for another reason is expected while the app starts (the
    /// kill that follows when its allowance runs out is the signal), so it is
    /// none.
    pub fn signal(&self) -> Option<SignalKind> {
        match (self.probe, &self.cause) {
            (ProbeType::Readiness, _) => Some(SignalKind::ReadinessFailed),
            (_, ProbeCause::Timeout) => Some(SignalKind::ProbeTimeout),
            (ProbeType::Liveness, _) => Some(SignalKind::LivenessFailed),
            (ProbeType::Startup, _) => None,
        }
    }
}

/// Parses an `Unhealthy` Event message, e.g.
/// `Liveness probe failed: Get "http://10.244.0.7:8081/healthz": dial tcp 10.244.0.7:8081: connect: connection refused`.
pub fn parse_unhealthy(message: &str) -> Option<ProbeFailure> {
    let (head, detail) = message.split_once(':')?;
    let probe = match head.trim() {
        "Liveness probe failed" | "Liveness probe errored" => ProbeType::Liveness,
        "Readiness probe failed" | "Readiness probe errored" => ProbeType::Readiness,
        "Startup probe failed" | "Startup probe errored" => ProbeType::Startup,
        _ => return None,
    };
    Some(ProbeFailure {
        probe,
        cause: cause_of(detail),
    })
}

fn cause_of(detail: &str) -> ProbeCause {
    if detail.contains("connection refused") {
        ProbeCause::ConnectionRefused
    } else if detail.contains("context deadline exceeded")
        || detail.contains("Client.Timeout")
        || detail.contains("i/o timeout")
        || detail.contains("timed out")
    {
        ProbeCause::Timeout
    } else if let Some(code) = detail
        .split_once("statuscode:")
        .and_then(|(_, rest)| rest.trim().get(..3))
        .and_then(|c| c.parse().ok())
    {
        ProbeCause::HttpStatus(code)
    } else {
        ProbeCause::Other
    }
}

/// The signal a `Killing` Event is: a container killed for its liveness or
/// startup probe, or (any other message, e.g. `Stopping container web`) a pod
/// being deleted.
pub fn killing_signal(message: &str) -> SignalKind {
    if message.contains("failed liveness probe") {
        SignalKind::LivenessFailed
    } else if message.contains("failed startup probe") {
        SignalKind::StartupFailed
    } else {
        SignalKind::PodGone
    }
}

/// A responder's reading of a probe failure message, for diagnoses.
pub fn explain(message: &str) -> Option<String> {
    let failure = parse_unhealthy(message)?;
    let probe = failure.probe;
    Some(match failure.cause {
        ProbeCause::ConnectionRefused => format!(
            "the {probe} probe gets `connection refused`: nothing listens on the probed port; compare the probe's port with the container's ports"
        ),
        ProbeCause::Timeout => format!(
            "the {probe} probe times out: the app answers slower than the probe's timeoutSeconds; measure the endpoint's latency (under load too) and raise the timeout"
        ),
        ProbeCause::HttpStatus(404) => format!(
            "the {probe} probe gets HTTP 404: the probed path does not exist in the app; compare the probe's path with the app's health endpoints"
        ),
        ProbeCause::HttpStatus(code) => format!(
            "the {probe} probe gets HTTP {code}: the app says it is not healthy (still starting, or a dependency it checks is down)"
        ),
        ProbeCause::Other => format!("the {probe} probe fails: {}", message.trim()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::wrong_port(
        r#"Liveness probe failed: Get "http://10.244.0.7:8081/healthz": dial tcp 10.244.0.7:8081: connect: connection refused"#,
        ProbeType::Liveness,
        ProbeCause::ConnectionRefused,
        Some(SignalKind::LivenessFailed)
    )]
    #[case::wrong_path(
        "Liveness probe failed: HTTP probe failed with statuscode: 404",
        ProbeType::Liveness,
        ProbeCause::HttpStatus(404),
        Some(SignalKind::LivenessFailed)
    )]
    #[case::liveness_timeout(
        r#"Liveness probe failed: Get "http://10.244.0.9:8080/healthz": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"#,
        ProbeType::Liveness,
        ProbeCause::Timeout,
        Some(SignalKind::ProbeTimeout)
    )]
    #[case::readiness_404(
        "Readiness probe failed: HTTP probe failed with statuscode: 404",
        ProbeType::Readiness,
        ProbeCause::HttpStatus(404),
        Some(SignalKind::ReadinessFailed)
    )]
    #[case::readiness_timeout(
        r#"Readiness probe failed: Get "http://10.244.0.9:8080/readyz": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"#,
        ProbeType::Readiness,
        ProbeCause::Timeout,
        Some(SignalKind::ReadinessFailed)
    )]
    #[case::starting_up(
        "Startup probe failed: HTTP probe failed with statuscode: 503",
        ProbeType::Startup,
        ProbeCause::HttpStatus(503),
        None
    )]
    #[case::startup_timeout(
        r#"Startup probe failed: Get "http://10.244.0.9:8080/healthz": context deadline exceeded"#,
        ProbeType::Startup,
        ProbeCause::Timeout,
        Some(SignalKind::ProbeTimeout)
    )]
    fn unhealthy_messages_say_which_probe_and_why(
        #[case] message: &str,
        #[case] probe: ProbeType,
        #[case] cause: ProbeCause,
        #[case] signal: Option<SignalKind>,
    ) {
        let failure = parse_unhealthy(message).expect("a probe failure");
        assert_eq!(failure.probe, probe);
        assert_eq!(failure.cause, cause);
        assert_eq!(failure.signal(), signal);
    }

    #[rstest]
    #[case("Back-off restarting failed container")]
    #[case("Liveness probe failure")]
    #[case("")]
    fn other_messages_are_not_probe_failures(#[case] message: &str) {
        assert_eq!(parse_unhealthy(message), None);
    }

    #[rstest]
    #[case(
        "Container api failed liveness probe, will be restarted",
        SignalKind::LivenessFailed
    )]
    #[case(
        "Container api failed startup probe, will be restarted",
        SignalKind::StartupFailed
    )]
    #[case("Stopping container web", SignalKind::PodGone)]
    fn killing_messages_say_why_the_container_died(
        #[case] message: &str,
        #[case] signal: SignalKind,
    ) {
        assert_eq!(killing_signal(message), signal);
    }

    #[rstest]
    #[case(
        r#"Liveness probe failed: Get "http://10.244.0.7:8081/healthz": dial tcp 10.244.0.7:8081: connect: connection refused"#,
        "nothing listens on the probed port"
    )]
    #[case(
        "Readiness probe failed: HTTP probe failed with statuscode: 404",
        "the probed path does not exist"
    )]
    #[case(
        "Liveness probe failed: Get \"http://x/healthz\": context deadline exceeded",
        "slower than the probe's timeoutSeconds"
    )]
    fn explanations_name_the_mistake(#[case] message: &str, #[case] says: &str) {
        let text = explain(message).expect("an explanation");
        assert!(text.contains(says), "{text}");
    }
}
