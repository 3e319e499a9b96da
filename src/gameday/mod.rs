//! Game days: people, not breakfix, find and fix the fault.
//!
//! Each team gets its own copy of a scenario (its own namespace, and a
//! kubeconfig whose RBAC reaches that namespace only). breakfix journals
//! and injects the fault as `run` does, and does *not* revert it. It
//! watches: the signals (its own time to detect), each team's declarations
//! (`detected`, `diagnosed: …`, `fixed`), and every change responders make
//! in their scope (watches + `managedFields`: which field manager changed
//! which field when). A team's round ends when steady state is back by the
//! team's hand and held for `settle`, or at the timebox, or when the
//! facilitator or a stop condition stops it; breakfix then reverts what is
//! still broken from the journal. When every round is over the teams'
//! copies are deleted and a debrief is written.
//!
//! ```text
//! copies ─► RBAC + kubeconfig per team ─► steady ─► journal+inject (no revert)
//!   ─► watch: signals │ declarations │ changes │ hints │ stop conditions
//!   ─► per team: fixed (steady by the team's hand, held) │ timebox │ stop ─► revert what is broken
//!   ─► debrief (Markdown, HTML, JSON) ─► delete the copies, close the journals
//! ```
//!
//! The mode is a library: [`GameDay::builder`] → [`GameDay::handle`] (for
//! the live page and the `declare`/`hint`/`stop` controls) →
//! [`GameDay::run`]. The command line and the page ([`server`]) are thin
//! callers of it.

pub mod changes;
pub mod debrief;
pub mod declare;
pub mod record;
pub mod score;
pub mod server;
mod stop;
pub mod team;
pub mod view;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use kube::Client;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::baseline::{SteadyState, apply_baseline};
use crate::detect::{self, Diagnosis, Observation, diagnose, watch_pod_signals};
use crate::experiment::gameday::{Briefing, DEFAULT_HINT_COST};
use crate::experiment::{FaultPlan, GameDaySpec, LoadedExperiment, Recovery};
use crate::fault::{FaultContext, Injection};
use crate::journal::{ClusterRecord, Journal, JournalError, UndoAction};
use crate::kobj::ObjectRef;
use crate::vocab::{Name, SignalKind};
use changes::{ChangeOp, Seen};
use declare::{Declaration, DeclarationKind};
use record::{Entry, EntryKind, HintRelease, RoundEnd, TeamRecord};

/// Errors setting up a game day; nothing has touched the cluster when one
/// of these comes back from [`GameDayBuilder::build`].
#[derive(Debug, thiserror::Error)]
pub enum GameDayError {
    /// No team was named.
    #[error("no teams; name at least one (e.g. --teams 2, or --team blue)")]
    NoTeams,
    /// Two teams have the same name.
    #[error("team name `{0}` is used twice; every team needs its own name")]
    TeamClash(String),
    /// A team name cannot name a namespace or a URL path.
    #[error("team name `{name}` is not usable: {why}")]
    BadTeamName {
        /// The name.
        name: String,
        /// Why it is not usable.
        why: String,
    },
    /// The timebox is zero.
    #[error("the timebox is zero; give the round some time, e.g. --timebox 20m")]
    ZeroTimebox,
    /// Steady state must hold for `settle` before a fix counts, so it
    /// must be shorter than the round.
    #[error(
        "settle ({settle:?}) is not shorter than the timebox ({timebox:?}); no fix could ever count"
    )]
    SettleTooLong {
        /// The settle time.
        settle: Duration,
        /// The timebox.
        timebox: Duration,
    },
    /// The fault heals by itself; nobody would have anything to fix.
    #[error(
        "experiment `{0}` heals by itself (recovery: selfHeal); a game day needs a fault people must fix"
    )]
    SelfHealing(String),
    /// The fault comes in steps; a game day injects one fault.
    #[error(
        "experiment `{0}` injects its fault in steps (fault.steps); a game day injects one fault: write the scenario with the single fault people must find"
    )]
    Steps(String),
    /// The fault breaks something every team's copy shares.
    #[error(
        "the fault breaks something every team shares ({0}); play it with one team, or give each team its own cluster"
    )]
    SharedFault(String),
    /// Several teams need a copy of the scenario each, and one cannot have one.
    #[error(
        "{teams} teams need a copy of the scenario each, and team `{team}` cannot have one: {why}; play with one team, or give the baseline a namespace of its own"
    )]
    NoCopies {
        /// How many teams play.
        teams: usize,
        /// The team without a copy.
        team: String,
        /// Why the copy cannot be made.
        why: String,
    },
    /// Two teams' copies would land in one namespace.
    #[error("two teams would share namespace `{0}`")]
    NamespaceClash(String),
    /// The journal could not be created or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A team's access (ServiceAccount, kubeconfig) could not be set up.
    #[error("team access: {0}")]
    Access(String),
}

/// Why a control (declare, hint, stop) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No team of that name plays.
    #[error("no team `{team}`; teams are {teams}")]
    UnknownTeam {
        /// The name asked for.
        team: String,
        /// The teams that play.
        teams: String,
    },
    /// The round has not started.
    #[error("the round has not started yet (copies are being prepared)")]
    NotStarted,
    /// The team's round has ended.
    #[error("team {team}'s round is over ({end}); declarations and hints are closed")]
    RoundOver {
        /// The team.
        team: String,
        /// How it ended.
        end: String,
    },
    /// The whole game day has ended.
    #[error("the game day is over")]
    GameOver,
    /// The declaration is malformed.
    #[error(transparent)]
    Declaration(#[from] declare::DeclarationError),
    /// Every hint has been released to the team.
    #[error("team {team} has had every hint ({total})")]
    NoMoreHints {
        /// The team.
        team: String,
        /// How many hints there are.
        total: usize,
    },
}

/// Where the game day is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GamePhase {
    /// Copies being applied, access granted, waiting for steady state.
    Preparing,
    /// The fault is in; teams are playing.
    Playing,
    /// Every round is over; reverting and deleting the copies.
    Reverting,
    /// Done; the debrief is written.
    Over,
}

/// Everything the game day knows, shared with the live page.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GameState {
    /// The game day's run id.
    pub run_id: String,
    /// The experiment's name (sealed while blind).
    pub scenario: String,
    /// The fault's catalogue key (hidden from teams while blind).
    pub fault: String,
    /// The scenario's story.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<String>,
    /// Whether teams play without knowing the fault.
    pub blind: bool,
    /// What teams are told at the start.
    pub briefing: Briefing,
    /// The round's length, in seconds.
    pub timebox_seconds: u64,
    /// How long steady state must hold before a fix counts, in seconds.
    pub settle_seconds: f64,
    /// Where the game day is.
    pub phase: GamePhase,
    /// When the round started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
    /// When the timebox runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// When the game day ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Timestamp>,
    /// Why the game day was stopped, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// What breakfix broke in each team's copy, and its diagnosis.
    pub answers: Vec<Answer>,
    /// Each team's round.
    pub teams: Vec<TeamRecord>,
}

/// The sealed answer for one team's copy.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// The team.
    pub team: String,
    /// What breakfix broke in the team's copy.
    pub injected: String,
    /// breakfix's own diagnosis, when it made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
}

/// The teams' names, checked: at least one, each a DNS label of at most
/// 20 characters (it names the team's namespace and ServiceAccount), none
/// twice. The command line calls it before it gets a cluster, so a clash is
/// refused with nothing made.
pub fn team_names(teams: &[String]) -> Result<Vec<Name>, GameDayError> {
    if teams.is_empty() {
        return Err(GameDayError::NoTeams);
    }
    let mut names: Vec<Name> = Vec::new();
    for t in teams {
        let name = Name::new(t).map_err(|e| GameDayError::BadTeamName {
            name: t.clone(),
            why: e.to_string(),
        })?;
        if t.len() > MAX_TEAM_NAME || t.contains('.') {
            return Err(GameDayError::BadTeamName {
                name: t.clone(),
                why: format!("at most {MAX_TEAM_NAME} characters, letters, digits and dashes"),
            });
        }
        if names.contains(&name) {
            return Err(GameDayError::TeamClash(t.clone()));
        }
        names.push(name);
    }
    Ok(names)
}

/// What a game day hands back: the whole record, from which the debrief is
/// written.
pub type GameDayReport = GameState;

impl GameState {
    /// Exit code for the command line: 0 when every round was played to
    /// its end, 130 when interrupted, 1 when a round could not be played or
    /// something could not be reverted.
    pub fn exit_code(&self) -> i32 {
        let ends: Vec<_> = self.teams.iter().filter_map(|t| t.end.as_ref()).collect();
        let errors = self.teams.iter().any(|t| {
            t.entries
                .iter()
                .any(|e| matches!(e.kind, EntryKind::Error { .. }))
        });
        if ends.iter().any(|e| matches!(e, RoundEnd::Interrupted)) {
            130
        } else if errors || ends.iter().any(|e| matches!(e, RoundEnd::Error { .. })) {
            1
        } else {
            0
        }
    }

    fn team(&self, name: &str) -> Result<usize, ControlError> {
        self.teams
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| ControlError::UnknownTeam {
                team: name.to_string(),
                teams: self
                    .teams
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// A command from the page or the command line to the running game day.
enum Command {
    Declare {
        team: usize,
        text: String,
        reply: oneshot::Sender<Result<Entry, ControlError>>,
    },
    Hint {
        team: usize,
        reply: oneshot::Sender<Result<Entry, ControlError>>,
    },
}

/// A cloneable handle to a game day: its state (for pages and `status`),
/// its updates, and the controls. Valid before, during and after the run.
#[derive(Clone)]
pub struct GameDayHandle {
    state: Arc<Mutex<GameState>>,
    updates: broadcast::Sender<u64>,
    commands: mpsc::UnboundedSender<Command>,
    stop: CancellationToken,
}

impl GameDayHandle {
    /// A copy of the current state.
    pub fn state(&self) -> GameState {
        lock(&self.state).clone()
    }

    /// A receiver that gets a tick on every change of the state.
    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.updates.subscribe()
    }

    /// The team names, in order.
    pub fn teams(&self) -> Vec<String> {
        lock(&self.state)
            .teams
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    fn open_team(&self, team: &str) -> Result<usize, ControlError> {
        let state = lock(&self.state);
        let idx = state.team(team)?;
        match state.phase {
            GamePhase::Preparing => return Err(ControlError::NotStarted),
            GamePhase::Reverting | GamePhase::Over => return Err(ControlError::GameOver),
            GamePhase::Playing => {}
        }
        if let Some(end) = &state.teams[idx].end {
            return Err(ControlError::RoundOver {
                team: team.to_string(),
                end: end.to_string(),
            });
        }
        Ok(idx)
    }

    /// Records a team's declaration (`detected: …`, `diagnosed: …`, `fixed`).
    pub async fn declare(&self, team: &str, text: &str) -> Result<Entry, ControlError> {
        Declaration::parse(text)?;
        let idx = self.open_team(team)?;
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Declare {
                team: idx,
                text: text.to_string(),
                reply,
            })
            .map_err(|_| ControlError::GameOver)?;
        answer.await.map_err(|_| ControlError::GameOver)?
    }

    /// Releases the next hint of a team's ladder.
    pub async fn hint(&self, team: &str) -> Result<Entry, ControlError> {
        let idx = self.open_team(team)?;
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Hint { team: idx, reply })
            .map_err(|_| ControlError::GameOver)?;
        answer.await.map_err(|_| ControlError::GameOver)?
    }

    /// Stops every round: breakfix reverts what is still broken, deletes
    /// the copies and writes the debrief.
    pub fn stop(&self, reason: &str) -> Result<(), ControlError> {
        let mut state = lock(&self.state);
        if matches!(state.phase, GamePhase::Reverting | GamePhase::Over) || self.stop.is_cancelled()
        {
            return Err(ControlError::GameOver);
        }
        state.stopped = Some(reason.to_string());
        drop(state);
        self.stop.cancel();
        let _ = self.updates.send(0);
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The default round length.
pub const DEFAULT_TIMEBOX: Duration = Duration::from_secs(20 * 60);
/// Team names are namespace suffixes; keep them short.
pub const MAX_TEAM_NAME: usize = 20;
/// Names `--teams N` hands out.
pub const TEAM_NAMES: &[&str] = &[
    "blue", "red", "green", "yellow", "purple", "orange", "teal", "pink",
];
/// Rungs of the hint ladder made from breakfix's diagnosis when the
/// scenario has none.
pub const FALLBACK_HINTS: usize = 3;

/// Configures a [`GameDay`]; see [`GameDay::builder`].
#[must_use]
pub struct GameDayBuilder {
    client: Client,
    experiment: LoadedExperiment,
    cluster: Option<ClusterRecord>,
    teams: Vec<String>,
    timebox: Option<Duration>,
    settle: Option<Duration>,
    blind: Option<bool>,
    journal_dir: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    run_id: Option<String>,
    cancel: CancellationToken,
}

impl GameDayBuilder {
    /// Where the cluster is (its kubeconfig is the base of the teams' own).
    pub fn cluster(mut self, record: ClusterRecord) -> Self {
        self.cluster = Some(record);
        self
    }
    /// The teams, by name (DNS labels of at most 20 characters).
    pub fn teams<I: IntoIterator<Item = S>, S: Into<String>>(mut self, teams: I) -> Self {
        self.teams = teams.into_iter().map(Into::into).collect();
        self
    }
    /// The round's length (default: the experiment's, else 20m).
    pub fn timebox(mut self, timebox: Duration) -> Self {
        self.timebox = Some(timebox);
        self
    }
    /// How long steady state must hold after a team's fix.
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = Some(settle);
        self
    }
    /// Whether the fault stays sealed until the debrief (default: the
    /// experiment's `gameday.blind`, true).
    pub fn blind(mut self, blind: bool) -> Self {
        self.blind = Some(blind);
        self
    }
    /// The folder for the journals (default: breakfix's).
    pub fn journal_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.journal_dir = Some(dir.into());
        self
    }
    /// Where kubeconfigs and the debrief go (default `gameday-<run id>`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }
    /// The run id (default: a new one).
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }
    /// A token that interrupts the game day (Ctrl-C): every round ends,
    /// breakfix reverts and deletes the copies.
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Checks the teams and times, makes each team's copy and journal.
    ///
    /// # Errors
    ///
    /// A [`GameDayError`] for bad input (a team name clash, a zero
    /// timebox, a self-healing or shared fault with several teams) or a
    /// journal that cannot be written; nothing has touched the cluster.
    pub fn build(self) -> Result<GameDay, GameDayError> {
        let spec = self
            .experiment
            .experiment
            .spec
            .gameday
            .clone()
            .unwrap_or_default();
        let names = team_names(&self.teams)?;
        let timebox = self
            .timebox
            .or(spec.timebox.map(|d| d.get()))
            .unwrap_or(DEFAULT_TIMEBOX);
        if timebox.is_zero() {
            return Err(GameDayError::ZeroTimebox);
        }
        let settle = self
            .settle
            .or(spec.settle.map(|d| d.get()))
            .unwrap_or_else(|| self.experiment.experiment.spec.settle.get());
        if settle >= timebox {
            return Err(GameDayError::SettleTooLong { settle, timebox });
        }
        let exp_spec = &self.experiment.experiment.spec;
        if exp_spec.recovery == Recovery::SelfHeal {
            return Err(GameDayError::SelfHealing(
                self.experiment.name().to_string(),
            ));
        }
        if matches!(exp_spec.fault, FaultPlan::Steps(_)) {
            return Err(GameDayError::Steps(self.experiment.name().to_string()));
        }
        if names.len() > 1 && exp_spec.fault.is_cluster_scoped() {
            let shared = exp_spec
                .fault
                .claims()
                .iter()
                .filter(|c| matches!(c, crate::fault::Claim::Shared(_)))
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(GameDayError::SharedFault(shared));
        }
        let run_id = self.run_id.unwrap_or_else(crate::runner::new_run_id);
        let mut copies = Vec::new();
        let mut namespaces = HashSet::new();
        for name in &names {
            let copy = team::team_copy(&self.experiment, name, names.len(), &run_id)?;
            let ns = copy.baseline.spec.namespace.to_string();
            if !namespaces.insert(ns.clone()) {
                return Err(GameDayError::NamespaceClash(ns));
            }
            copies.push(copy);
        }

        let cluster = self.cluster.unwrap_or_else(|| ClusterRecord {
            provider: "client".into(),
            name: "unknown".into(),
            kubeconfig: None,
            context: None,
        });
        let journal_dir = self.journal_dir.unwrap_or_else(Journal::default_dir);
        let out_dir = self
            .out_dir
            .unwrap_or_else(|| PathBuf::from(format!("gameday-{run_id}")));
        let mut teams = Vec::new();
        for (name, copy) in names.iter().zip(copies) {
            let journal =
                Journal::create(&journal_dir, &format!("{run_id}-{name}"), cluster.clone())?;
            teams.push(Team::new(name.to_string(), copy, journal, &spec));
        }
        let exp = &self.experiment.experiment;
        let state = GameState {
            run_id: run_id.clone(),
            scenario: exp.metadata.name.to_string(),
            fault: exp.spec.fault.kind().to_string(),
            story: exp.metadata.story.clone(),
            blind: self.blind.unwrap_or(spec.blind),
            briefing: spec.briefing.clone(),
            timebox_seconds: timebox.as_secs(),
            settle_seconds: settle.as_secs_f64(),
            phase: GamePhase::Preparing,
            started: None,
            deadline: None,
            finished: None,
            stopped: None,
            answers: Vec::new(),
            teams: teams
                .iter()
                .map(|t| TeamRecord::new(&t.name, &t.namespace))
                .collect(),
        };
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (updates, _) = broadcast::channel(64);
        let handle = GameDayHandle {
            state: Arc::new(Mutex::new(state)),
            updates,
            commands: commands_tx,
            stop: CancellationToken::new(),
        };
        Ok(GameDay {
            client: self.client,
            cluster,
            run_id,
            spec,
            expected: exp.spec.expected_signals().signals,
            timebox,
            settle,
            out_dir,
            teams,
            handle,
            commands: Some(commands),
            cancel: self.cancel,
        })
    }
}

/// One team's live round: its copy, journal and watches.
struct Team {
    name: String,
    namespace: String,
    copy: LoadedExperiment,
    journal: Journal,
    /// Journal entries that set the copy up (deleted at the very end).
    infra: Vec<u64>,
    /// The hint ladder's texts and costs, when the scenario has one.
    ladder: Vec<(String, Option<Duration>, u32)>,
    hint_costs: Vec<u32>,
    diagnosis: Option<Diagnosis>,
    scope: Option<detect::Scope>,
    fault_objects: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
    /// Workloads' steady verdicts as last seen, and as they were when the
    /// team's first change landed.
    workloads: HashMap<String, (bool, BTreeMap<String, String>)>,
    at_first_change: Option<HashMap<String, bool>>,
    collateral: HashSet<String>,
    ready: bool,
}

impl Team {
    fn new(name: String, copy: LoadedExperiment, journal: Journal, spec: &GameDaySpec) -> Self {
        Self {
            namespace: copy.baseline.spec.namespace.to_string(),
            name,
            copy,
            journal,
            infra: Vec::new(),
            ladder: spec
                .hints
                .iter()
                .map(|h| (h.text.clone(), h.after.map(|d| d.get()), h.cost))
                .collect(),
            hint_costs: Vec::new(),
            diagnosis: None,
            scope: None,
            fault_objects: Vec::new(),
            tasks: Vec::new(),
            workloads: HashMap::new(),
            at_first_change: None,
            collateral: HashSet::new(),
            ready: false,
        }
    }

    fn hints_total(&self) -> usize {
        if self.ladder.is_empty() {
            FALLBACK_HINTS
        } else {
            self.ladder.len()
        }
    }

    /// Whether `object` (`deployment/web`) is what the fault targets.
    fn is_target(&self, object: &str, pod_labels: &BTreeMap<String, String>) -> bool {
        if self.fault_objects.iter().any(|o| o == object) {
            return true;
        }
        let Some(scope) = &self.scope else {
            return false;
        };
        if scope
            .deployment
            .as_ref()
            .is_some_and(|d| object == format!("deployment/{d}"))
        {
            return true;
        }
        scope.pod_selector.as_ref().is_some_and(|sel| {
            sel.split(',').all(|term| match term.split_once('=') {
                Some((k, v)) => pod_labels.get(k.trim()).map(String::as_str) == Some(v.trim()),
                None => false,
            })
        })
    }
}

/// Something a team's watches saw.
enum Internal {
    Signal(usize, Observation),
    Seen(usize, Seen),
    /// Steady state held for `settle` after it had been broken, since then.
    Steady(usize, Timestamp),
    Breach(stop::Breach),
}

/// A game day on one cluster; build with [`GameDay::builder`].
pub struct GameDay {
    client: Client,
    cluster: ClusterRecord,
    run_id: String,
    spec: GameDaySpec,
    expected: Vec<SignalKind>,
    timebox: Duration,
    settle: Duration,
    out_dir: PathBuf,
    teams: Vec<Team>,
    handle: GameDayHandle,
    commands: Option<mpsc::UnboundedReceiver<Command>>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for GameDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GameDay")
            .field("run_id", &self.run_id)
            .field(
                "teams",
                &self.teams.iter().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .field("timebox", &self.timebox)
            .finish_non_exhaustive()
    }
}

impl GameDay {
    /// Starts configuring a game day of `experiment` on `client`'s cluster.
    pub fn builder(client: Client, experiment: LoadedExperiment) -> GameDayBuilder {
        GameDayBuilder {
            client,
            experiment,
            cluster: None,
            teams: Vec::new(),
            timebox: None,
            settle: None,
            blind: None,
            journal_dir: None,
            out_dir: None,
            run_id: None,
            cancel: CancellationToken::new(),
        }
    }

    /// The handle the live page and the controls use.
    pub fn handle(&self) -> GameDayHandle {
        self.handle.clone()
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Where kubeconfigs and the debrief go.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The journal files, one per team (`cleanup` replays them after a crash).
    pub fn journal_paths(&self) -> Vec<PathBuf> {
        self.teams
            .iter()
            .map(|t| t.journal.path().to_path_buf())
            .collect()
    }

    /// Plays the game day to its end and returns the record. Whatever
    /// happens (timebox, stop, Ctrl-C, a panic inside) every fault still in
    /// is reverted from the journals and the copies are deleted.
    pub async fn run(self) -> GameDayReport {
        let handle = self.handle.clone();
        let client = self.client.clone();
        let paths = self.journal_paths();
        let task = tokio::spawn(async move {
            let mut game = self;
            game.play().await;
        });
        if let Err(crashed) = task.await {
            tracing::error!("the game day crashed ({crashed}); reverting from the journals");
            for path in paths {
                if let Ok(state) = crate::journal::JournalState::read(&path)
                    && let Err(e) = state.replay(&client).await
                {
                    tracing::error!("{e}");
                }
            }
            let mut s = lock(&handle.state);
            for t in &mut s.teams {
                if t.end.is_none() {
                    t.end = Some(RoundEnd::Error {
                        message: format!("the game day crashed ({crashed}); reverted"),
                    });
                }
            }
            s.phase = GamePhase::Over;
            s.finished = Some(Timestamp::now());
        }
        let _ = handle.updates.send(u64::MAX);
        handle.state()
    }

    fn update(&self, f: impl FnOnce(&mut GameState)) {
        {
            let mut s = lock(&self.handle.state);
            f(&mut s);
        }
        let _ = self.handle.updates.send(0);
    }

    fn record(&self, team: usize, at: Timestamp, kind: EntryKind) -> Entry {
        let mut entry = None;
        self.update(|s| entry = Some(s.teams[team].push(at, kind)));
        entry.unwrap_or_else(|| Entry {
            at,
            kind: EntryKind::Note {
                message: String::new(),
            },
        })
    }

    fn interrupted(&self) -> bool {
        self.cancel.is_cancelled() || self.handle.stop.is_cancelled()
    }

    async fn play(&mut self) {
        self.prepare().await;
        let playable: Vec<usize> = (0..self.teams.len())
            .filter(|i| self.teams[*i].ready)
            .collect();
        let (tx, mut internal) = mpsc::unbounded_channel();
        let mut outside = None;
        if !playable.is_empty() && !self.interrupted() {
            if self.spec.stop_when.outside_scope {
                let (btx, mut brx) = mpsc::unbounded_channel();
                let excluded = self.teams.iter().map(|t| t.namespace.clone()).collect();
                let watch = stop::watch_outside(&self.client, excluded, btx).await;
                let fwd = tx.clone();
                let forward = tokio::spawn(async move {
                    while let Some(b) = brx.recv().await {
                        if fwd.send(Internal::Breach(b)).is_err() {
                            return;
                        }
                    }
                });
                outside = Some((watch, forward));
            }
            for idx in playable {
                self.inject(idx, &tx).await;
            }
            let started = self
                .teams
                .iter()
                .enumerate()
                .filter_map(|(i, _)| lock(&self.handle.state).teams[i].marks.injected)
                .min();
            let deadline = started
                .map(|s| s + jiff::SignedDuration::try_from(self.timebox).unwrap_or_default());
            self.update(|s| {
                s.phase = GamePhase::Playing;
                s.started = started;
                s.deadline = deadline;
            });
            self.play_rounds(&mut internal).await;
        }
        drop(tx);
        if let Some((watch, forward)) = outside {
            watch.abort();
            forward.abort();
        }
        // Anything not ended yet (set-up failed or interrupted before the start).
        let why = self.stop_reason();
        for idx in 0..self.teams.len() {
            if lock(&self.handle.state).teams[idx].end.is_none() {
                let end = if self.cancel.is_cancelled() {
                    RoundEnd::Interrupted
                } else {
                    RoundEnd::Stopped {
                        reason: why.clone(),
                    }
                };
                self.end_round(idx, end).await;
            }
        }
        self.update(|s| s.phase = GamePhase::Reverting);
        self.await_recovery().await;
        self.reveal();
        self.delete_copies().await;
        self.update(|s| {
            s.phase = GamePhase::Over;
            s.finished = Some(Timestamp::now());
        });
    }

    fn stop_reason(&self) -> String {
        lock(&self.handle.state)
            .stopped
            .clone()
            .unwrap_or_else(|| "stopped before the round began".into())
    }

    /// Applies every team's copy, grants access and waits for steady state.
    async fn prepare(&mut self) {
        let server = team::server_of(&self.cluster);
        for idx in 0..self.teams.len() {
            if self.interrupted() {
                return;
            }
            let result = self.prepare_team(idx, server.as_ref().ok()).await;
            if let Err(message) = result {
                self.record(
                    idx,
                    Timestamp::now(),
                    EntryKind::Error {
                        message: message.clone(),
                    },
                );
                self.update(|s| {
                    s.teams[idx].end = Some(RoundEnd::Error { message });
                    s.teams[idx].marks.ended = Some(Timestamp::now());
                });
            }
        }
        if let Err(e) = &server {
            for idx in 0..self.teams.len() {
                self.record(
                    idx,
                    Timestamp::now(),
                    EntryKind::Note {
                        message: format!("no kubeconfig for the team: {e}"),
                    },
                );
            }
        }
        let timeout = self.teams.first().map_or(Duration::from_secs(300), |t| {
            t.copy
                .baseline
                .spec
                .steady_state
                .timeout
                .get()
                .min(t.copy.experiment.spec.timeouts.steady_state.get())
        });
        let waits = self
            .teams
            .iter()
            .enumerate()
            .filter(|(i, _)| lock(&self.handle.state).teams[*i].end.is_none())
            .map(|(i, t)| {
                let steady = SteadyState::for_baseline(&t.copy.baseline);
                let client = self.client.clone();
                async move { (i, steady.wait_steady(&client, timeout).await) }
            })
            .collect::<Vec<_>>();
        let stop = self.handle.stop.clone();
        let cancel = self.cancel.clone();
        let results = tokio::select! {
            r = futures::future::join_all(waits) => r,
            _ = stop.cancelled() => return,
            _ = cancel.cancelled() => return,
        };
        for (idx, result) in results {
            match result {
                Ok(at) => {
                    self.teams[idx].ready = true;
                    let namespace = self.teams[idx].namespace.clone();
                    self.record(idx, at, EntryKind::Ready { namespace });
                }
                Err(e) => {
                    let message = format!("the team's copy never reached steady state: {e}");
                    self.record(
                        idx,
                        Timestamp::now(),
                        EntryKind::Error {
                            message: message.clone(),
                        },
                    );
                    self.update(|s| {
                        s.teams[idx].end = Some(RoundEnd::Error { message });
                        s.teams[idx].marks.ended = Some(Timestamp::now());
                    });
                }
            }
        }
    }

    async fn prepare_team(
        &mut self,
        idx: usize,
        server: Option<&team::Server>,
    ) -> Result<(), String> {
        let run_id = self.run_id.clone();
        let client = self.client.clone();
        let key = self.journal_key(idx);
        let t = &mut self.teams[idx];
        // The copy is journaled before it exists: a crash leaves it to
        // `breakfix cleanup`.
        for target in team::copy_objects(&t.copy) {
            let seq = t
                .journal
                .intend(&key, UndoAction::Delete { target, uid: None })
                .map_err(|e| e.to_string())?;
            t.infra.push(seq);
        }
        apply_baseline(&client, &t.copy.baseline, &run_id)
            .await
            .map_err(|e| match e.api_message() {
                Some(api) => format!("{e} — the API server said: {api}"),
                None => e.to_string(),
            })?;
        team::grant(&client, &t.namespace, &t.name, &run_id)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(server) = server {
            let valid = self.timebox + Duration::from_secs(3600);
            let token = team::token(&client, &t.namespace, &t.name, valid)
                .await
                .map_err(|e| e.to_string())?;
            let text = team::kubeconfig(server, &t.name, &t.namespace, &token);
            let path = team::write_private(&self.out_dir.join(&t.name).join("kubeconfig"), &text)
                .map_err(|e| e.to_string())?;
            let shown = path.display().to_string();
            self.update(|s| s.teams[idx].kubeconfig = Some(shown));
        }
        let total = self.teams[idx].hints_total();
        self.update(|s| s.teams[idx].hints_total = total);
        Ok(())
    }

    fn journal_key(&self, idx: usize) -> String {
        format!("gameday/{}", self.teams[idx].name)
    }

    /// Injects the fault into a team's copy and starts its watches.
    async fn inject(&mut self, idx: usize, tx: &mpsc::UnboundedSender<Internal>) {
        let key = self.journal_key(idx);
        let run_id = self.run_id.clone();
        let client = self.client.clone();
        let injection: Result<Injection, String> = {
            let t = &mut self.teams[idx];
            let mut ctx = FaultContext {
                client: client.clone(),
                journal: &mut t.journal,
                experiment: key,
                run_id,
            };
            match &t.copy.experiment.spec.fault {
                FaultPlan::Single(fault) => fault.inject(&mut ctx).await.map_err(|e| e.to_string()),
                FaultPlan::Steps(_) => Err("a game day injects one fault, not steps".to_string()),
            }
        };
        let injection = match injection {
            Ok(i) => i,
            Err(message) => {
                let message = format!("injection failed: {message}");
                self.record(
                    idx,
                    Timestamp::now(),
                    EntryKind::Error {
                        message: message.clone(),
                    },
                );
                self.end_round(idx, RoundEnd::Error { message }).await;
                return;
            }
        };
        let at = Timestamp::now();
        self.record(
            idx,
            at,
            EntryKind::Injected {
                summary: injection.summary.clone(),
            },
        );
        self.update(|s| {
            s.teams[idx].marks.injected = Some(at);
            s.answers.push(Answer {
                team: s.teams[idx].name.clone(),
                injected: injection.summary.clone(),
                diagnosis: None,
            });
        });
        let t = &mut self.teams[idx];
        let infra = t.infra.clone();
        t.fault_objects = t
            .journal
            .pending()
            .iter()
            .filter(|(seq, _)| !infra.contains(seq))
            .filter_map(|(_, undo)| match undo {
                UndoAction::Restore { object } => ObjectRef::of(object).ok(),
                UndoAction::Delete { target, .. } | UndoAction::DeleteTree { target, .. } => {
                    Some(target.clone())
                }
                UndoAction::StartNode { .. } => None,
            })
            .map(|r| format!("{}/{}", r.kind.to_lowercase(), r.name))
            .collect();
        t.scope = Some(injection.scope.clone());

        // Signals: the standard pod/event watch plus the fault's own sources.
        let restarts = detect::restart_baseline(&client, &injection.scope)
            .await
            .unwrap_or_default();
        let mut sources = vec![watch_pod_signals(&client, &injection.scope, restarts).boxed()];
        sources.extend(injection.extra);
        let mut signals = detect::merged(sources);
        let stx = tx.clone();
        t.tasks.push(tokio::spawn(async move {
            while let Some(item) = signals.next().await {
                match item {
                    Ok(obs) => {
                        if stx.send(Internal::Signal(idx, obs)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        if stx
                            .send(Internal::Seen(idx, Seen::Error(e.to_string())))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        }));

        // Responders' changes in the team's namespace.
        let (ctx_tx, mut ctx_rx) = mpsc::unbounded_channel();
        for kind in changes::watched_kinds() {
            t.tasks.push(tokio::spawn(changes::watch_kind(
                client.clone(),
                t.namespace.clone(),
                kind,
                t.fault_objects.clone(),
                ctx_tx.clone(),
            )));
        }
        let ftx = tx.clone();
        t.tasks.push(tokio::spawn(async move {
            while let Some(seen) = ctx_rx.recv().await {
                if ftx.send(Internal::Seen(idx, seen)).is_err() {
                    return;
                }
            }
        }));

        // Steady state: broken by the fault, then back and held for settle.
        let steady = SteadyState::for_baseline(&t.copy.baseline);
        let settle = self.settle;
        let rtx = tx.clone();
        let rclient = client.clone();
        t.tasks.push(tokio::spawn(async move {
            let mut verdicts = steady.watch(&rclient);
            let mut broken = false;
            let mut since: Option<(Timestamp, tokio::time::Instant)> = None;
            loop {
                let wake = since.map(|(_, at)| at + settle);
                tokio::select! {
                    v = verdicts.next() => match v {
                        Some(Ok((true, _))) => {
                            if broken && since.is_none() {
                                since = Some((Timestamp::now(), tokio::time::Instant::now()));
                            }
                        }
                        Some(Ok((false, _))) => { broken = true; since = None; }
                        Some(Err(_)) => {}
                        None => return,
                    },
                    _ = async { match wake { Some(w) => tokio::time::sleep_until(w).await, None => futures::future::pending().await } } => {
                        if let Some((at, _)) = since.take() {
                            broken = false;
                            if rtx.send(Internal::Steady(idx, at)).is_err() { return; }
                        }
                    }
                }
            }
        }));
    }

    async fn play_rounds(&mut self, internal: &mut mpsc::UnboundedReceiver<Internal>) {
        let Some(mut commands) = self.commands.take() else {
            return;
        };
        let deadline = tokio::time::Instant::now() + self.timebox;
        let stop = self.handle.stop.clone();
        let cancel = self.cancel.clone();
        loop {
            if lock(&self.handle.state)
                .teams
                .iter()
                .all(TeamRecord::is_over)
            {
                break;
            }
            let wake = self.next_auto_hint().map_or(deadline, |h| h.min(deadline));
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    self.end_all(RoundEnd::Interrupted).await;
                    break;
                }
                _ = stop.cancelled() => {
                    let reason = self.stop_reason();
                    self.end_all(RoundEnd::Stopped { reason }).await;
                    break;
                }
                Some(cmd) = commands.recv() => self.command(cmd),
                Some(msg) = internal.recv() => self.internal(msg).await,
                _ = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= deadline {
                        for idx in 0..self.teams.len() {
                            if lock(&self.handle.state).teams[idx].end.is_none() {
                                self.record(idx, Timestamp::now(), EntryKind::Timebox);
                                self.end_round(idx, RoundEnd::Timebox).await;
                            }
                        }
                    } else {
                        self.release_due_hints();
                    }
                }
            }
        }
        // Refuse what is still queued.
        commands.close();
        while let Ok(cmd) = commands.try_recv() {
            match cmd {
                Command::Declare { reply, .. } | Command::Hint { reply, .. } => {
                    let _ = reply.send(Err(ControlError::GameOver));
                }
            }
        }
    }

    async fn end_all(&mut self, end: RoundEnd) {
        for idx in 0..self.teams.len() {
            if lock(&self.handle.state).teams[idx].end.is_none() {
                if let RoundEnd::Stopped { reason } = &end {
                    self.record(
                        idx,
                        Timestamp::now(),
                        EntryKind::Stopped {
                            reason: reason.clone(),
                        },
                    );
                } else if end == RoundEnd::Interrupted {
                    self.record(
                        idx,
                        Timestamp::now(),
                        EntryKind::Stopped {
                            reason: "interrupted".into(),
                        },
                    );
                }
                self.end_round(idx, end.clone()).await;
            }
        }
    }

    /// When the next hint with a delay is due, if any.
    fn next_auto_hint(&self) -> Option<tokio::time::Instant> {
        let state = lock(&self.handle.state);
        self.teams
            .iter()
            .enumerate()
            .filter(|(i, _)| state.teams[*i].end.is_none())
            .filter_map(|(i, t)| {
                let next = t.ladder.get(t.hint_costs.len())?;
                let after = next.1?;
                let injected = state.teams[i].marks.injected?;
                let since = Duration::try_from(Timestamp::now().duration_since(injected))
                    .unwrap_or_default();
                Some(tokio::time::Instant::now() + after.saturating_sub(since))
            })
            .min()
    }

    fn release_due_hints(&mut self) {
        for idx in 0..self.teams.len() {
            loop {
                let due = {
                    let state = lock(&self.handle.state);
                    let t = &self.teams[idx];
                    state.teams[idx].end.is_none()
                        && t.ladder
                            .get(t.hint_costs.len())
                            .is_some_and(|(_, after, _)| {
                                after.is_some_and(|a| {
                                    state.teams[idx].marks.injected.is_some_and(|inj| {
                                        Duration::try_from(Timestamp::now().duration_since(inj))
                                            .unwrap_or_default()
                                            >= a
                                    })
                                })
                            })
                };
                if !due {
                    break;
                }
                if self.release_hint(idx, HintRelease::Timer).is_err() {
                    break;
                }
            }
        }
    }

    fn release_hint(&mut self, idx: usize, release: HintRelease) -> Result<Entry, ControlError> {
        let t = &self.teams[idx];
        let number = t.hint_costs.len() + 1;
        let total = t.hints_total();
        if number > total {
            return Err(ControlError::NoMoreHints {
                team: t.name.clone(),
                total,
            });
        }
        let (text, cost) = match t.ladder.get(number - 1) {
            Some((text, _, cost)) => (text.clone(), *cost),
            None => (
                fallback_hint(number, t.diagnosis.as_ref(), &t.namespace),
                DEFAULT_HINT_COST,
            ),
        };
        self.teams[idx].hint_costs.push(cost);
        let entry = self.record(
            idx,
            Timestamp::now(),
            EntryKind::Hint {
                number,
                text,
                cost,
                release,
            },
        );
        self.update(|s| s.teams[idx].hints_used = number);
        self.rescore(idx);
        Ok(entry)
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Declare { team, text, reply } => {
                let _ = reply.send(self.declare(team, &text));
            }
            Command::Hint { team, reply } => {
                let result = match self.open(team) {
                    Ok(()) => self.release_hint(team, HintRelease::Requested),
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
            }
        }
    }

    fn open(&self, idx: usize) -> Result<(), ControlError> {
        let state = lock(&self.handle.state);
        match &state.teams[idx].end {
            Some(end) => Err(ControlError::RoundOver {
                team: state.teams[idx].name.clone(),
                end: end.to_string(),
            }),
            None => Ok(()),
        }
    }

    fn declare(&mut self, idx: usize, text: &str) -> Result<Entry, ControlError> {
        self.open(idx)?;
        let d = Declaration::parse(text)?;
        let now = Timestamp::now();
        let matched = (d.kind == DeclarationKind::Diagnosed)
            .then(|| declare::matches(&d.text, &self.spec.answer, &self.expected));
        let entry = self.record(
            idx,
            now,
            EntryKind::Declared {
                declaration: d.kind,
                text: d.text.clone(),
                matched,
            },
        );
        self.update(|s| {
            let m = &mut s.teams[idx].marks;
            m.team_detected.get_or_insert(now);
            match d.kind {
                DeclarationKind::Diagnosed if matched == Some(true) => {
                    m.team_diagnosed.get_or_insert(now);
                }
                DeclarationKind::Fixed => {
                    m.team_declared_fixed.get_or_insert(now);
                }
                _ => {}
            }
        });
        self.rescore(idx);
        Ok(entry)
    }

    async fn internal(&mut self, msg: Internal) {
        match msg {
            Internal::Signal(idx, obs) => {
                if self.open(idx).is_err() {
                    return;
                }
                let expected = self.expected.contains(&obs.kind);
                self.record(
                    idx,
                    obs.seen_at,
                    EntryKind::Signal {
                        observation: obs.clone(),
                        expected,
                    },
                );
                let first = expected
                    && lock(&self.handle.state).teams[idx]
                        .marks
                        .harness_detected
                        .is_none();
                if first {
                    let namespace = self.teams[idx].namespace.clone();
                    let diagnosis = diagnose(&obs, &namespace);
                    self.teams[idx].diagnosis = Some(diagnosis.clone());
                    self.record(
                        idx,
                        obs.seen_at,
                        EntryKind::HarnessDetected {
                            signal: obs.kind,
                            object: obs.object.clone(),
                        },
                    );
                    let team = self.teams[idx].name.clone();
                    self.update(|s| {
                        let m = &mut s.teams[idx].marks;
                        m.harness_detected = Some(obs.seen_at);
                        m.signal = obs.since;
                        if let Some(a) = s.answers.iter_mut().find(|a| a.team == team) {
                            a.diagnosis = Some(diagnosis);
                        }
                    });
                }
                if self.spec.stop_when.signals.contains(&obs.kind) {
                    let reason = format!(
                        "stop condition: {} seen on {} in team {}'s copy",
                        obs.kind, obs.object, self.teams[idx].name
                    );
                    self.update(|s| s.stopped = Some(reason));
                    self.handle.stop.cancel();
                }
            }
            Internal::Seen(idx, seen) => {
                if self.open(idx).is_err() {
                    return;
                }
                self.seen(idx, seen);
            }
            Internal::Steady(idx, since) => {
                if self.open(idx).is_err() {
                    return;
                }
                let by_team = lock(&self.handle.state).teams[idx]
                    .marks
                    .first_change
                    .is_some();
                if by_team {
                    self.record(idx, since, EntryKind::Fixed);
                    self.update(|s| s.teams[idx].marks.fixed = Some(since));
                    self.end_round(idx, RoundEnd::Fixed).await;
                } else {
                    self.record(idx, since, EntryKind::SteadyWithoutTeam);
                }
            }
            Internal::Breach(b) => {
                let reason = format!(
                    "stop condition: {} outside the teams' copies left steady state ({})",
                    b.object, b.why
                );
                self.update(|s| s.stopped = Some(reason));
                self.handle.stop.cancel();
            }
        }
    }

    fn seen(&mut self, idx: usize, seen: Seen) {
        match seen {
            Seen::Change(at, change) => {
                let first = {
                    let s = lock(&self.handle.state);
                    s.teams[idx].marks.first_change.is_none()
                };
                if first {
                    let t = &mut self.teams[idx];
                    t.at_first_change = Some(
                        t.workloads
                            .iter()
                            .map(|(k, (steady, _))| (k.clone(), *steady))
                            .collect(),
                    );
                }
                if change.op == ChangeOp::Delete && !change.fault_object {
                    self.teams[idx]
                        .collateral
                        .insert(format!("deleted {}", change.object));
                }
                self.record(idx, at, EntryKind::Change { change });
                self.update(|s| {
                    s.teams[idx].marks.first_change.get_or_insert(at);
                });
                self.rescore(idx);
            }
            Seen::Workload {
                object,
                steady,
                pod_labels,
            } => {
                let t = &mut self.teams[idx];
                let was = t
                    .at_first_change
                    .as_ref()
                    .and_then(|m| m.get(&object).copied());
                if was == Some(true) && !steady && !t.is_target(&object, &pod_labels) {
                    t.collateral.insert(format!("{object} left steady state"));
                }
                t.workloads.insert(object, (steady, pod_labels));
                self.rescore(idx);
            }
            // Watches restart by themselves with back-off (an API server
            // closing long watches is routine): logged, not the team's story.
            Seen::Error(message) => tracing::debug!(team = %self.teams[idx].name, "{message}"),
        }
    }

    fn rescore(&self, idx: usize) {
        let t = &self.teams[idx];
        let costs = t.hint_costs.clone();
        let collateral = t.collateral.len();
        let timebox = self.timebox;
        self.update(|s| {
            let team = &mut s.teams[idx];
            team.score = score::score(score::ScoreInput {
                marks: &team.marks,
                timebox,
                hint_costs: &costs,
                collateral,
            });
        });
    }

    /// Ends a team's round: stops its watches and, unless the team fixed it,
    /// reverts the fault from the journal.
    async fn end_round(&mut self, idx: usize, end: RoundEnd) {
        for task in self.teams[idx].tasks.drain(..) {
            task.abort();
        }
        let now = Timestamp::now();
        let fixed = end == RoundEnd::Fixed;
        self.update(|s| {
            s.teams[idx].end = Some(end);
            s.teams[idx].marks.ended = Some(now);
        });
        let client = self.client.clone();
        let t = &mut self.teams[idx];
        let pending: Vec<_> = t
            .journal
            .pending()
            .into_iter()
            .filter(|(seq, _)| !t.infra.contains(seq))
            .collect();
        let mut actions = Vec::new();
        let mut kept = Vec::new();
        let mut errors = Vec::new();
        for (seq, undo) in pending {
            // A fix by the team stands: breakfix does not write its snapshot
            // over it. What breakfix created is removed all the same.
            if fixed && matches!(undo, UndoAction::Restore { .. }) {
                kept.push(undo.describe());
                if let Err(e) = t.journal.mark_reverted(seq) {
                    errors.push(e.to_string());
                }
                continue;
            }
            match undo.apply(&client).await {
                Ok(()) => {
                    actions.push(undo.describe());
                    if let Err(e) = t.journal.mark_reverted(seq) {
                        errors.push(e.to_string());
                    }
                }
                Err(e) => errors.push(format!("{}: {e}", undo.describe())),
            }
        }
        let at = Timestamp::now();
        if !kept.is_empty() {
            self.record(
                idx,
                at,
                EntryKind::Note {
                    message: format!(
                        "the team's fix stands; breakfix did not write back: {}",
                        kept.join("; ")
                    ),
                },
            );
        }
        if !actions.is_empty() && !fixed {
            self.record(idx, at, EntryKind::Reverted { actions });
            self.update(|s| s.teams[idx].marks.reverted = Some(at));
        }
        for message in errors {
            self.record(idx, at, EntryKind::Error { message });
        }
        self.rescore(idx);
    }

    /// Waits (bounded) for the reverted copies to be steady again, so the
    /// debrief can say how long the harness's revert took to heal.
    async fn await_recovery(&mut self) {
        if self.cancel.is_cancelled() {
            return;
        }
        let waits: Vec<_> = self
            .teams
            .iter()
            .enumerate()
            .filter(|(i, _)| lock(&self.handle.state).teams[*i].marks.reverted.is_some())
            .map(|(i, t)| {
                let steady = SteadyState::for_baseline(&t.copy.baseline);
                let client = self.client.clone();
                let settle = self.settle;
                let timeout = t.copy.experiment.spec.recover_timeout();
                async move { (i, steady.wait_stable(&client, settle, timeout).await) }
            })
            .collect();
        let cancel = self.cancel.clone();
        let results = tokio::select! {
            r = futures::future::join_all(waits) => r,
            _ = cancel.cancelled() => return,
        };
        for (idx, result) in results {
            match result {
                Ok(at) => {
                    self.record(idx, at, EntryKind::Recovered);
                    self.update(|s| s.teams[idx].marks.recovered = Some(at));
                }
                Err(e) => {
                    self.record(
                        idx,
                        Timestamp::now(),
                        EntryKind::Note {
                            message: format!("not steady again after the revert: {e}"),
                        },
                    );
                }
            }
        }
    }

    /// The debrief reveals the fault: the state is no longer blind.
    fn reveal(&self) {
        self.update(|s| s.blind = false);
    }

    /// Deletes every team's copy (what the journal set up) and closes the
    /// journals that have nothing left to undo.
    async fn delete_copies(&mut self) {
        let client = self.client.clone();
        for idx in 0..self.teams.len() {
            let t = &mut self.teams[idx];
            let mut errors = Vec::new();
            for (seq, undo) in t.journal.pending() {
                match undo.apply(&client).await {
                    Ok(()) => {
                        if let Err(e) = t.journal.mark_reverted(seq) {
                            errors.push(e.to_string());
                        }
                    }
                    Err(e) => errors.push(format!("{}: {e}", undo.describe())),
                }
            }
            let done = t.journal.pending().is_empty();
            for message in errors {
                self.record(idx, Timestamp::now(), EntryKind::Error { message });
            }
            if done {
                self.record(
                    idx,
                    Timestamp::now(),
                    EntryKind::Note {
                        message: format!("copy deleted (namespace {})", self.teams[idx].namespace),
                    },
                );
            }
        }
        // Journals are closed by moving them out; one with work left stays
        // open for `breakfix cleanup`.
        for t in std::mem::take(&mut self.teams) {
            if t.journal.pending().is_empty()
                && let Err(e) = t.journal.finish()
            {
                tracing::warn!("{e}");
            }
        }
    }
}

/// A rung of the hint ladder made from breakfix's diagnosis (or, before
/// breakfix has seen anything, from where to look).
pub fn fallback_hint(number: usize, diagnosis: Option<&Diagnosis>, namespace: &str) -> String {
    match (number, diagnosis) {
        (1, Some(d)) => match d.next_steps.first() {
            Some(step) => format!("Look here: {step}"),
            None => {
                format!("Start from what the cluster says: kubectl get pods,events -n {namespace}")
            }
        },
        (2, Some(d)) => match d.evidence.first() {
            Some(e) => format!("The cluster says: {e}"),
            None => d.summary.clone(),
        },
        (_, Some(d)) => d.summary.clone(),
        (1, None) => {
            format!("Start from what the cluster says: kubectl get pods,events -n {namespace}")
        }
        (2, None) => format!(
            "Compare what runs with what was asked for: kubectl describe deployments -n {namespace}"
        ),
        (_, None) => format!(
            "Read the latest events in order: kubectl get events -n {namespace} --sort-by=.lastTimestamp"
        ),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn builder(file: &str) -> GameDayBuilder {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments")
            .join(file);
        let exp = crate::experiment::load_experiment(&path).unwrap_or_else(|e| panic!("{e:?}"));
        let url = "http://127.0.0.1:9".parse().unwrap();
        let client = Client::try_from(kube::Config::new(url)).unwrap();
        GameDay::builder(client, exp)
    }

    #[rstest]
    #[case::no_teams(&[], None, "no teams")]
    #[case::clash(&["blue", "blue"], None, "used twice")]
    #[case::bad_name(&["Blue Team"], None, "not usable")]
    #[case::long_name(&["a-very-long-team-name-indeed"], None, "at most 20")]
    #[case::zero_timebox(&["blue"], Some(Duration::ZERO), "timebox is zero")]
    #[case::settle_beyond(&["blue"], Some(Duration::from_secs(2)), "no fix could ever count")]
    #[tokio::test]
    async fn bad_input_is_refused_before_anything_happens(
        #[case] teams: &[&str],
        #[case] timebox: Option<Duration>,
        #[case] message: &str,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut b = builder("rbac-rolebinding-delete.yaml")
            .teams(teams.iter().copied())
            .journal_dir(dir.path());
        if let Some(t) = timebox {
            b = b.timebox(t);
        }
        let err = b.build().expect_err("refused").to_string();
        assert!(err.contains(message), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no journal written"
        );
    }

    #[tokio::test]
    async fn a_fault_every_team_shares_is_refused_for_several_teams() {
        let err = builder("coredns-memory-squeeze.yaml")
            .teams(["blue", "red"])
            .build()
            .expect_err("refused")
            .to_string();
        assert!(err.contains("cluster DNS"), "{err}");
    }

    #[tokio::test]
    async fn each_team_plays_a_copy_in_namespaces_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let game = builder("gameday/pos-down.yaml")
            .teams(["blue", "red"])
            .run_id("20261201t120000-abcd")
            .journal_dir(dir.path().join("first"))
            .build()
            .expect("two teams");
        let namespaces: Vec<&str> = game.teams.iter().map(|t| t.namespace.as_str()).collect();
        assert_eq!(namespaces.len(), 2);
        assert_ne!(namespaces[0], namespaces[1]);
        for t in &game.teams {
            assert!(t.namespace.starts_with("shop-bf-"), "{}", t.namespace);
            let fault = serde_json::to_value(&t.copy.experiment.spec.fault).unwrap();
            assert_eq!(
                fault["selectorMismatch"]["target"]["namespace"], t.namespace,
                "the fault follows the copy: {fault}"
            );
            assert_eq!(
                team::copy_objects(&t.copy)
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>(),
                [t.namespace.as_str()],
                "the copy's namespace is what the game day deletes"
            );
        }
        let again = builder("gameday/pos-down.yaml")
            .teams(["blue", "red"])
            .run_id("20261201t120000-abcd")
            .journal_dir(dir.path().join("again"))
            .build()
            .unwrap();
        assert_eq!(
            again.teams[0].namespace, game.teams[0].namespace,
            "a run and a team name one copy (cleanup finds it)"
        );
    }

    #[tokio::test]
    async fn the_cpu_squeeze_follows_each_teams_copy_of_the_payments() {
        let dir = tempfile::tempdir().unwrap();
        let game = builder("gameday/payments-slow.yaml")
            .teams(["blue", "red"])
            .journal_dir(dir.path())
            .build()
            .expect("two teams");
        for t in &game.teams {
            assert!(t.namespace.starts_with("payment-bf-"), "{}", t.namespace);
            let fault = serde_json::to_value(&t.copy.experiment.spec.fault).unwrap();
            assert_eq!(
                fault["patch"]["target"]["namespace"], t.namespace,
                "the squeeze follows the copy: {fault}"
            );
        }
        assert_ne!(game.teams[0].namespace, game.teams[1].namespace);
    }

    #[tokio::test]
    async fn a_self_healing_fault_is_no_game() {
        let err = builder("pod-kill.yaml")
            .teams(["blue"])
            .build()
            .expect_err("refused")
            .to_string();
        assert!(err.contains("heals by itself"), "{err}");
    }

    #[test]
    fn fallback_hints_climb_from_where_to_look_to_the_cause() {
        let d = Diagnosis {
            summary: "the RoleBinding is missing".into(),
            evidence: vec!["403 Forbidden on pod/api-canary".into()],
            next_steps: vec!["kubectl describe pod api-canary -n canaries".into()],
        };
        assert!(fallback_hint(1, Some(&d), "canaries").contains("kubectl describe pod"));
        assert!(fallback_hint(2, Some(&d), "canaries").contains("403"));
        assert_eq!(fallback_hint(3, Some(&d), "canaries"), d.summary);
        assert!(fallback_hint(1, None, "canaries").contains("-n canaries"));
    }
}
