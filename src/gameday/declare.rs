//! Declarations: what a team says about its incident (`detected: …`,
//! `diagnosed: …`, `fixed`), and whether a diagnosis names what the fault
//! broke.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::vocab::SignalKind;

/// The three things a team declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DeclarationKind {
    /// "We see something is wrong."
    Detected,
    /// "We know what is wrong": matched against the fault.
    Diagnosed,
    /// "We fixed it": the cluster decides whether it is true.
    Fixed,
}

impl std::fmt::Display for DeclarationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Detected => "detected",
            Self::Diagnosed => "diagnosed",
            Self::Fixed => "fixed",
        })
    }
}

/// A declaration as parsed from `detected: the api canary gets 403`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// Detected, diagnosed or fixed.
    pub kind: DeclarationKind,
    /// What the team wrote after the colon.
    pub text: String,
}

/// Why a declaration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationError {
    /// Nothing was written.
    #[error(
        "empty declaration; write `detected: <what you see>`, `diagnosed: <the cause>` or `fixed`"
    )]
    Empty,
    /// The text does not start with a known kind.
    #[error(
        "`{0}` does not start with `detected:`, `diagnosed:` or `fixed`; e.g. `diagnosed: the web Service's selector matches no pod`"
    )]
    UnknownKind(String),
    /// `diagnosed:` without a cause.
    #[error(
        "`diagnosed` needs the cause after the colon, e.g. `diagnosed: the RoleBinding is gone`"
    )]
    NoDiagnosis,
    /// The text is too long.
    #[error("a declaration is at most {MAX_LEN} characters")]
    TooLong,
}

/// The longest declaration accepted.
pub const MAX_LEN: usize = 2000;

impl Declaration {
    /// Parses `kind[: text]`; the kind is case-insensitive.
    pub fn parse(input: &str) -> Result<Self, DeclarationError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(DeclarationError::Empty);
        }
        if input.chars().count() > MAX_LEN {
            return Err(DeclarationError::TooLong);
        }
        let (head, text) = match input.split_once(':') {
            Some((h, t)) => (h.trim(), t.trim()),
            None => (input, ""),
        };
        let kind = match head.to_ascii_lowercase().as_str() {
            "detected" => DeclarationKind::Detected,
            "diagnosed" => DeclarationKind::Diagnosed,
            "fixed" => DeclarationKind::Fixed,
            _ => return Err(DeclarationError::UnknownKind(shorten(input))),
        };
        if kind == DeclarationKind::Diagnosed && text.is_empty() {
            return Err(DeclarationError::NoDiagnosis);
        }
        Ok(Self {
            kind,
            text: text.to_string(),
        })
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Words that name what a signal is about, as responders would write them.
pub fn signal_words(signal: SignalKind) -> &'static [&'static str] {
    use SignalKind as S;
    match signal {
        S::ErrImagePull | S::ImagePullBackOff | S::InvalidImageName => {
            &["image", "tag", "pull", "registry"]
        }
        S::CrashLoopBackOff | S::Restarted => &["crash", "restart", "exit"],
        S::OOMKilled => &["oom", "memory", "limit"],
        S::Unready | S::ReadinessFailed => &["readiness", "unready", "not ready"],
        S::EndpointsEmpty => &["endpoint", "selector", "label"],
        S::CreateContainerConfigError | S::FailedMount => {
            &["configmap", "secret", "mount", "volume", "missing"]
        }
        S::Unschedulable => &["pending", "schedul", "capacity", "resources"],
        S::Forbidden => &[
            "rbac",
            "rolebinding",
            "role binding",
            "forbidden",
            "403",
            "permission",
        ],
        S::DnsFailures => &["dns", "coredns", "resolv"],
        S::CanaryFailing => &["canary"],
        S::QuotaExceeded => &["quota"],
        S::PodSurge => &["cronjob", "cron job", "jobs", "storm"],
        S::PodGone => &["deleted", "killed", "evicted"],
        S::NodeNotReady => &["node"],
        S::RolloutStalled => &["rollout", "progress"],
        S::LivenessFailed => &["liveness", "probe"],
        S::StartupFailed => &["startup", "probe"],
        S::ProbeTimeout => &["timeout", "probe", "slow"],
        S::LatencyAbove => &["slow", "latency", "cpu", "throttl"],
    }
}

/// Whether `text` names what the fault broke: one of `answer` (the
/// scenario's own words) or of the words of the signals the fault causes.
/// Matching is by lower-case substring; the scenario's words come first
/// because signals like `CanaryFailing` say little about the cause.
pub fn matches(text: &str, answer: &[String], signals: &[SignalKind]) -> bool {
    let text = text.to_lowercase();
    if !answer.is_empty() {
        return answer
            .iter()
            .any(|w| text.contains(w.trim().to_lowercase().as_str()));
    }
    signals
        .iter()
        .flat_map(|s| signal_words(*s).iter())
        .any(|w| text.contains(w))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(
        "detected: api canary gets 403",
        DeclarationKind::Detected,
        "api canary gets 403"
    )]
    #[case(
        "Diagnosed:the RoleBinding is gone",
        DeclarationKind::Diagnosed,
        "the RoleBinding is gone"
    )]
    #[case("fixed", DeclarationKind::Fixed, "")]
    #[case("  FIXED: re-created it ", DeclarationKind::Fixed, "re-created it")]
    #[case("detected", DeclarationKind::Detected, "")]
    fn declarations_parse(#[case] input: &str, #[case] kind: DeclarationKind, #[case] text: &str) {
        assert_eq!(
            Declaration::parse(input),
            Ok(Declaration {
                kind,
                text: text.into()
            })
        );
    }

    #[rstest]
    #[case("", DeclarationError::Empty)]
    #[case("   ", DeclarationError::Empty)]
    #[case("diagnosed:", DeclarationError::NoDiagnosis)]
    #[case("solved: it", DeclarationError::UnknownKind("solved: it".into()))]
    fn bad_declarations_say_what_is_expected(#[case] input: &str, #[case] error: DeclarationError) {
        assert_eq!(Declaration::parse(input), Err(error));
    }

    #[test]
    fn an_overlong_declaration_is_refused() {
        let long = format!("detected: {}", "x".repeat(MAX_LEN));
        assert_eq!(Declaration::parse(&long), Err(DeclarationError::TooLong));
    }

    #[rstest]
    #[case::rbac("the api-canary's RoleBinding was deleted", &[], &[SignalKind::Forbidden], true)]
    #[case::status_code("calls get 403 from the API server", &[], &[SignalKind::Forbidden], true)]
    #[case::wrong_cause("DNS is down", &[], &[SignalKind::Forbidden], false)]
    #[case::scenario_words_win("the service selector is wrong", &["selector"], &[SignalKind::CanaryFailing], true)]
    #[case::scenario_words_are_required("the canary is failing", &["selector"], &[SignalKind::CanaryFailing], false)]
    #[case::case_insensitive("CPU LIMIT far too low", &["cpu"], &[], true)]
    fn diagnoses_are_matched_against_the_fault(
        #[case] text: &str,
        #[case] answer: &[&str],
        #[case] signals: &[SignalKind],
        #[case] matched: bool,
    ) {
        let answer: Vec<String> = answer.iter().map(ToString::to_string).collect();
        assert_eq!(matches(text, &answer, signals), matched);
    }

    #[test]
    fn every_signal_has_words() {
        for s in SignalKind::ALL {
            assert!(!signal_words(*s).is_empty(), "{s}");
        }
    }
}
