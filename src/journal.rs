//! The undo journal: written before every mutation, so that a crash at any
//! point leaves enough on disk for `breakfix cleanup` to put the cluster back.
//!
//! A journal is an append-only JSON Lines file per run. Each mutation is
//! preceded by an `intent` record carrying its undo action; a `reverted`
//! record marks it undone; `finished` closes the run. Anything with an intent
//! and no `reverted` is still pending. Records are flushed and synced before
//! the mutation they guard is sent.
//!
//! The file is created 0600 in a 0700 folder: it holds snapshots of the
//! objects a fault changed. A Secret's data stays in it only while its
//! restore is pending: once restored, the file is rewritten without it.
//! The run holds an exclusive lock on its journal while it lives, so
//! `cleanup` never replays (and so never reverts twice) what a live run
//! will revert itself. Finished journals older than a retention period are
//! removed ([`prune`]); a journal with work left is never removed.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use kube::Client;
use kube::api::DynamicObject;
use serde::{Deserialize, Serialize};

use crate::kobj::{self, ObjectError, ObjectRef};

/// Errors reading, writing or replaying journals.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The journal file could not be read or written.
    #[error("journal {path}: {source}")]
    Io {
        /// The journal file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the journal is not a record breakfix wrote; nothing is reverted from it.
    #[error(
        "journal {path} line {line} is not a record breakfix wrote ({source}); nothing was reverted from this journal: fix or delete that line, then run `breakfix cleanup` again"
    )]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// An undo written twice: replaying it would revert it twice.
    #[error(
        "journal {path} line {line} repeats undo #{seq} of line {first} (was the file edited?); nothing was reverted from this journal, so nothing is reverted twice: delete one of the two lines, then run `breakfix cleanup` again"
    )]
    Repeated {
        /// The journal file.
        path: PathBuf,
        /// The line that repeats it, from 1.
        line: usize,
        /// The undo's sequence number.
        seq: u64,
        /// The line that wrote it first.
        first: usize,
    },
    /// The journal does not start with a header.
    #[error("journal {path} has no header; it was not written by breakfix")]
    NoHeader {
        /// The journal file.
        path: PathBuf,
    },
    /// A live run holds the journal; only it reverts its faults.
    #[error(
        "run {run_id} (pid {pid}) is still running and holds journal {path}; it reverts its own faults (stop it with Ctrl-C or SIGTERM, not `cleanup`)"
    )]
    InUse {
        /// The journal file.
        path: PathBuf,
        /// The run's id.
        run_id: String,
        /// The run's process id.
        pid: u32,
    },
    /// A restored object's data left the journal, but the record saying so is gone.
    #[error(
        "journal {path}: {target} was restored and its data removed from the journal, but the record saying so is gone (was the file edited?); it is not restored again: check it by hand, then delete the journal"
    )]
    Scrubbed {
        /// The journal file.
        path: PathBuf,
        /// The object.
        target: String,
    },
    /// An undo failed in the cluster.
    #[error("undo failed: {0}")]
    Undo(#[from] ObjectError),
    /// An undo's command (on a kind node) failed.
    #[error("undo failed: {0}")]
    Command(String),
}

/// Where the run's cluster is, so `cleanup` can reach it after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRecord {
    /// `kind` or `context`.
    pub provider: String,
    /// kind cluster name or kubeconfig context name.
    pub name: String,
    /// The kubeconfig used, when not the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context used, when named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// How long undoing a [`UndoAction::DeleteTree`] may wait for the owned
/// objects (and their pods' graceful termination) to be gone.
pub const DELETE_TREE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// How to undo one mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum UndoAction {
    /// Write this snapshot back (replace, or recreate if deleted).
    Restore {
        /// The snapshot taken before the fault.
        object: Box<DynamicObject>,
    },
    /// Delete an object the run created.
    Delete {
        /// The object to delete.
        target: ObjectRef,
        /// Its uid, so a later object of the same name is left alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
    },
    /// Start a stopped kind node container again.
    StartNode {
        /// The node's container.
        container: String,
    },
    /// Delete an object the run created together with everything it owns
    /// (Jobs a CronJob spawned, their Pods), and wait until all of it is gone.
    DeleteTree {
        /// The object to delete.
        target: ObjectRef,
        /// Its uid, so a later object of the same name is left alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
    },
}

impl UndoAction {
    /// One line for logs and the timeline.
    pub fn describe(&self) -> String {
        match self {
            Self::Restore { object } => match ObjectRef::of(object) {
                Ok(r) => format!("restore {r}"),
                Err(_) => "restore an unnamed object".into(),
            },
            Self::Delete { target, .. } => format!("delete {target}"),
            Self::StartNode { container } => format!("start node container {container}"),
            Self::DeleteTree { target, .. } => format!("delete {target} and what it spawned"),
        }
    }

    /// Whether this undo carries a Secret's data (a snapshot to restore),
    /// which the journal keeps only while the restore is pending.
    pub fn holds_secret_data(&self) -> bool {
        match self {
            Self::Restore { object } => is_secret(object) && secret_fields(object).next().is_some(),
            _ => false,
        }
    }

    /// Carries out the undo against `client`.
    pub async fn apply(&self, client: &Client) -> Result<(), JournalError> {
        match self {
            Self::Restore { object } => {
                kobj::restore(client, object).await?;
            }
            Self::Delete { target, uid } => {
                kobj::delete_if_present(client, target, uid.as_deref()).await?;
            }
            Self::DeleteTree { target, uid } => {
                kobj::delete_tree(client, target, uid.as_deref(), DELETE_TREE_TIMEOUT).await?;
            }
            Self::StartNode { container } => {
                let out = tokio::process::Command::new("docker")
                    .args(["start", container])
                    .output()
                    .await
                    .map_err(|e| JournalError::Command(format!("docker start {container}: {e}")))?;
                if !out.status.success() {
                    return Err(JournalError::Command(format!(
                        "docker start {container}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// One line of a journal file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "camelCase")]
pub enum Record {
    /// The first line: whose journal this is.
    Header {
        /// The run's id.
        run_id: String,
        /// The cluster it runs on.
        cluster: ClusterRecord,
        /// When the run started.
        at: Timestamp,
        /// The run's process id.
        pid: u32,
    },
    /// A change about to be made, with how to undo it.
    Intent {
        /// Its sequence number in the journal.
        seq: u64,
        /// The experiment making it.
        experiment: String,
        /// How to undo it.
        undo: UndoAction,
        /// When it was journaled.
        at: Timestamp,
        /// When the Secret data in `undo` was removed, after the restore.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scrubbed: Option<Timestamp>,
    },
    /// The intent with this sequence number was undone.
    Reverted {
        /// The intent's sequence number.
        seq: u64,
        /// When it was undone.
        at: Timestamp,
    },
    /// The run ended with nothing left to undo.
    Finished {
        /// When it ended.
        at: Timestamp,
    },
}

/// An open journal for one run, or one handle on it.
///
/// Experiments that run side by side each journal through a handle of
/// their own ([`Journal::handle`]): the handles append to one file, each
/// keeps its own pending undos, so a trial reverts exactly what it
/// injected and nothing another experiment did, while `breakfix cleanup`
/// still reads every handle's records from the one file.
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
    /// This handle's undos not yet reverted, oldest first.
    pending: Vec<PendingUndo>,
}

/// What every handle on one journal shares: the file, the sequence and
/// the set of undos still pending across all handles.
#[derive(Debug)]
struct Shared {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    next_seq: u64,
    pending: BTreeSet<u64>,
}

/// A pending undo: its sequence number and action.
pub type PendingUndo = (u64, UndoAction);

impl Journal {
    /// The default folder for journals: `journal` in the state folder
    /// ([`crate::state::state_dir`]), e.g. `~/.local/state/breakfix/journal`.
    pub fn default_dir() -> PathBuf {
        crate::state::state_dir().join("journal")
    }

    /// Creates `dir/<run_id>.jsonl` (mode 0600, in a folder created 0700)
    /// and writes the header.
    pub fn create(dir: &Path, run_id: &str, cluster: ClusterRecord) -> Result<Self, JournalError> {
        let io = |source| JournalError::Io {
            path: dir.to_path_buf(),
            source,
        };
        crate::state::private_dir(dir).map_err(io)?;
        let path = dir.join(format!("{run_id}.jsonl"));
        let file = crate::state::create_private(&path).map_err(|source| JournalError::Io {
            path: path.clone(),
            source,
        })?;
        lock(&file, &path)?;
        let journal = Self {
            shared: Arc::new(Shared {
                path,
                inner: Mutex::new(Inner {
                    file,
                    next_seq: 1,
                    pending: BTreeSet::new(),
                }),
            }),
            pending: Vec::new(),
        };
        journal.write(&Record::Header {
            run_id: run_id.to_string(),
            cluster,
            at: Timestamp::now(),
            pid: std::process::id(),
        })?;
        Ok(journal)
    }

    /// Another handle on the same journal, with no undos of its own yet:
    /// what it journals goes to the same file, and only it reverts them.
    pub fn handle(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            pending: Vec::new(),
        }
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Records how to undo a mutation that is about to happen. Call this
    /// before sending the mutation; the record is on disk when it returns.
    pub fn intend(&mut self, experiment: &str, undo: UndoAction) -> Result<u64, JournalError> {
        let mut inner = self.shared.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        self.shared.write(
            &mut inner,
            &Record::Intent {
                seq,
                experiment: experiment.to_string(),
                undo: undo.clone(),
                at: Timestamp::now(),
                scrubbed: None,
            },
        )?;
        inner.pending.insert(seq);
        drop(inner);
        self.pending.push((seq, undo));
        Ok(seq)
    }

    /// Marks `seq` undone. If it restored a Secret, the Secret's data is
    /// then removed from the file.
    pub fn mark_reverted(&mut self, seq: u64) -> Result<(), JournalError> {
        let secret = self
            .pending
            .iter()
            .any(|(s, u)| *s == seq && u.holds_secret_data());
        let mut inner = self.shared.lock();
        self.shared.write(
            &mut inner,
            &Record::Reverted {
                seq,
                at: Timestamp::now(),
            },
        )?;
        inner.pending.remove(&seq);
        if secret {
            // Under the lock: no other handle appends while the file is
            // rewritten and renamed.
            inner.file = scrub(&self.shared.path)?;
        }
        drop(inner);
        self.pending.retain(|(s, _)| *s != seq);
        Ok(())
    }

    /// This handle's undo actions not yet reverted, newest first (the order
    /// to undo them in).
    pub fn pending(&self) -> Vec<PendingUndo> {
        self.pending.iter().rev().cloned().collect()
    }

    /// How many undos are pending across every handle on this journal.
    pub fn pending_in_run(&self) -> usize {
        self.shared.lock().pending.len()
    }

    /// Undoes every pending action of this handle, newest first, marking
    /// each as it succeeds. Keeps going after a failure and returns every error.
    pub async fn revert_all(&mut self, client: &Client) -> Vec<JournalError> {
        let mut errors = Vec::new();
        for (seq, undo) in self.pending() {
            match undo.apply(client).await {
                Ok(()) => {
                    if let Err(e) = self.mark_reverted(seq) {
                        errors.push(e);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Closes the run: nothing is left to undo.
    pub fn finish(self) -> Result<(), JournalError> {
        self.write(&Record::Finished {
            at: Timestamp::now(),
        })
    }

    fn write(&self, record: &Record) -> Result<(), JournalError> {
        let mut inner = self.shared.lock();
        self.shared.write(&mut inner, record)
    }
}

impl Shared {
    /// The file and counters; a writer that panicked mid-write leaves at
    /// worst a torn last line, which reading tolerates.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, inner: &mut Inner, record: &Record) -> Result<(), JournalError> {
        append(&mut inner.file, &self.path, record)
    }
}

/// A journal read back from disk.
#[derive(Debug, Clone)]
pub struct JournalState {
    /// The journal file.
    pub path: PathBuf,
    /// The run's id.
    pub run_id: String,
    /// The cluster it ran on.
    pub cluster: ClusterRecord,
    /// When it started.
    pub started: Timestamp,
    /// Its process id.
    pub pid: u32,
    /// Whether it finished (closed with nothing pending).
    pub finished: bool,
    /// Pending undos, newest first.
    pub pending: Vec<PendingUndo>,
    /// Pending undos whose Secret data was removed after a restore the
    /// journal no longer records (an edited file): never replayed.
    pub scrubbed: Vec<u64>,
    /// What was odd about the file but did not stop it being read (a last
    /// line cut off by a crash mid-write).
    pub warnings: Vec<String>,
}

/// The outcome of one undo replayed by [`JournalState::replay`].
#[derive(Debug)]
pub struct Replayed {
    /// What the undo does, in one line.
    pub action: String,
    /// What happened when it was replayed.
    pub result: Result<(), JournalError>,
}

/// The journals of a folder that are not finished, and those that could
/// not be read (each with the reason; one bad file does not hide the rest).
#[derive(Debug, Default)]
pub struct JournalScan {
    /// Newest first: the order to replay them in.
    pub unfinished: Vec<JournalState>,
    /// Journals that could not be read, with why.
    pub unreadable: Vec<JournalError>,
}

impl JournalState {
    /// Reads a journal file. A torn last line (crash mid-write) is ignored.
    pub fn read(path: &Path) -> Result<Self, JournalError> {
        let file = File::open(path).map_err(|source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|source| JournalError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let mut header = None;
        let mut finished = false;
        let mut intents: Vec<PendingUndo> = Vec::new();
        // The line each undo was journaled on: one written twice would be
        // reverted twice.
        let mut lines_of: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        let mut scrubbed = Vec::new();
        let mut warnings = Vec::new();
        let last = lines.len();
        for (idx, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = match serde_json::from_str(line) {
                Ok(r) => r,
                // Records are synced before the mutation they guard: a line
                // cut off by a crash guarded nothing that happened.
                Err(_) if idx + 1 == last => {
                    warnings.push(format!(
                        "line {} was cut off mid-write (a crash) and is ignored",
                        idx + 1
                    ));
                    break;
                }
                Err(source) => {
                    return Err(JournalError::Corrupt {
                        path: path.to_path_buf(),
                        line: idx + 1,
                        source,
                    });
                }
            };
            match record {
                Record::Header {
                    run_id,
                    cluster,
                    at,
                    pid,
                } => header = Some((run_id, cluster, at, pid)),
                Record::Intent {
                    seq,
                    undo,
                    scrubbed: when,
                    ..
                } => {
                    if let Some(&first) = lines_of.get(&seq) {
                        return Err(JournalError::Repeated {
                            path: path.to_path_buf(),
                            line: idx + 1,
                            seq,
                            first,
                        });
                    }
                    lines_of.insert(seq, idx + 1);
                    if when.is_some() {
                        scrubbed.push(seq);
                    }
                    intents.push((seq, undo));
                }
                Record::Reverted { seq, .. } => {
                    intents.retain(|(s, _)| *s != seq);
                    scrubbed.retain(|s| *s != seq);
                }
                Record::Finished { .. } => finished = true,
            }
        }
        let (run_id, cluster, started, pid) = header.ok_or_else(|| JournalError::NoHeader {
            path: path.to_path_buf(),
        })?;
        intents.reverse();
        Ok(Self {
            path: path.to_path_buf(),
            run_id,
            cluster,
            started,
            pid,
            finished,
            pending: intents,
            scrubbed,
            warnings,
        })
    }

    /// Whether the run that wrote this journal still runs (it holds the
    /// journal's lock); its faults are its own to revert then.
    pub fn is_live(&self) -> bool {
        match File::open(&self.path) {
            Ok(file) => match file.try_lock() {
                Ok(()) => false,
                Err(std::fs::TryLockError::WouldBlock) => true,
                Err(std::fs::TryLockError::Error(_)) => false,
            },
            Err(_) => false,
        }
    }

    /// Every journal in `dir` that is not finished (undo work left, or a
    /// run that ended before closing it), newest first: the order to replay
    /// them in, since a later run's snapshot may contain an earlier run's
    /// fault only if the earlier one was never reverted. Journals that
    /// cannot be read are listed with the reason.
    pub fn scan(dir: &Path) -> Result<JournalScan, JournalError> {
        let mut scan = JournalScan::default();
        for path in journal_files(dir)? {
            match Self::read(&path) {
                Ok(state) if !state.finished => scan.unfinished.push(state),
                Ok(_) => {}
                Err(e) => scan.unreadable.push(e),
            }
        }
        scan.unfinished
            .sort_by_key(|s| std::cmp::Reverse(s.started));
        Ok(scan)
    }

    /// Replays the pending undos, newest first, appending a `reverted`
    /// record after each one that worked, and closes the journal when
    /// nothing is left. Holds the journal's lock meanwhile, so two
    /// `cleanup`s, or a `cleanup` and the live run, never revert the same
    /// change twice. Returns what each undo did.
    ///
    /// # Errors
    ///
    /// [`JournalError::InUse`] when the run that wrote it is still running;
    /// I/O errors on the file. Nothing was reverted then.
    pub async fn replay(&self, client: &Client) -> Result<Vec<Replayed>, JournalError> {
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::InUse {
                    path: self.path.clone(),
                    run_id: self.run_id.clone(),
                    pid: self.pid,
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(JournalError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        }
        // Read again under the lock: another cleanup may have finished
        // some of it between the scan and now.
        let state = Self::read(&self.path)?;
        let mut done = Vec::new();
        for (seq, undo) in &state.pending {
            let action = undo.describe();
            if state.scrubbed.contains(seq) {
                done.push(Replayed {
                    action,
                    result: Err(JournalError::Scrubbed {
                        path: self.path.clone(),
                        target: undo.describe(),
                    }),
                });
                continue;
            }
            let result = undo.apply(client).await;
            if result.is_ok() {
                let record = Record::Reverted {
                    seq: *seq,
                    at: Timestamp::now(),
                };
                append(&mut file, &self.path, &record)?;
                if undo.holds_secret_data() {
                    file = scrub(&self.path)?;
                }
            }
            done.push(Replayed { action, result });
        }
        if done.iter().all(|r| r.result.is_ok()) {
            append(
                &mut file,
                &self.path,
                &Record::Finished {
                    at: Timestamp::now(),
                },
            )?;
        }
        Ok(done)
    }
}

/// The `*.jsonl` files in `dir` (none if it does not exist).
fn journal_files(dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(JournalError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

/// How long finished journals are kept by default: 30 days.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Removes the journals in `dir` that are finished and were last written
/// more than `older_than` ago. A journal with anything pending, one that
/// cannot be read, and one a live run holds are never removed. Returns the
/// files removed.
pub fn prune(dir: &Path, older_than: std::time::Duration) -> Result<Vec<PathBuf>, JournalError> {
    let now = std::time::SystemTime::now();
    let mut removed = Vec::new();
    for path in journal_files(dir)? {
        let Ok(state) = JournalState::read(&path) else {
            continue;
        };
        if !state.finished || !state.pending.is_empty() || state.is_live() {
            continue;
        }
        let age = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok());
        if age.is_some_and(|a| a > older_than) && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Takes the exclusive lock a run holds on its journal for as long as it lives.
fn lock(file: &File, path: &Path) -> Result<(), JournalError> {
    file.try_lock().map_err(|e| JournalError::Io {
        path: path.to_path_buf(),
        source: match e {
            std::fs::TryLockError::Error(e) => e,
            std::fs::TryLockError::WouldBlock => {
                std::io::Error::other("another process holds this journal")
            }
        },
    })
}

fn is_secret(object: &DynamicObject) -> bool {
    object
        .types
        .as_ref()
        .is_some_and(|t| t.kind == "Secret" && t.api_version == "v1")
}

/// The fields of a Secret that hold its data.
fn secret_fields(object: &DynamicObject) -> impl Iterator<Item = &str> {
    ["data", "stringData"]
        .into_iter()
        .filter(|f| object.data.get(*f).is_some())
}

/// Rewrites the journal at `path` without the data of Secrets whose restore
/// it records as done, marking those intents `scrubbed`. The new file is
/// written beside it (0600), locked, synced and renamed over the old one,
/// so a crash leaves either whole file; returns it, open for appending.
fn scrub(path: &Path) -> Result<File, JournalError> {
    let io = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let records: Vec<Option<Record>> = text.lines().map(|l| serde_json::from_str(l).ok()).collect();
    let reverted: std::collections::HashSet<u64> = records
        .iter()
        .flatten()
        .filter_map(|r| match r {
            Record::Reverted { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    let mut out = String::with_capacity(text.len());
    for (line, record) in text.lines().zip(records) {
        match record {
            Some(Record::Intent {
                seq,
                experiment,
                undo: UndoAction::Restore { mut object },
                at,
                scrubbed: None,
            }) if reverted.contains(&seq) && is_secret(&object) => {
                if let Some(map) = object.data.as_object_mut() {
                    map.remove("data");
                    map.remove("stringData");
                }
                let record = Record::Intent {
                    seq,
                    experiment,
                    undo: UndoAction::Restore { object },
                    at,
                    scrubbed: Some(Timestamp::now()),
                };
                let encoded =
                    serde_json::to_string(&record).map_err(|e| io(std::io::Error::other(e)))?;
                out.push_str(&encoded);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".scrub");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut file = crate::state::create_private(&tmp).map_err(io)?;
    // Locked before it takes the journal's name: no moment where the
    // journal exists unlocked while its run lives.
    lock(&file, &tmp)?;
    file.write_all(out.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(file)
}

fn append(file: &mut File, path: &Path, record: &Record) -> Result<(), JournalError> {
    let io = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut line = serde_json::to_vec(record).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    file.write_all(&line).map_err(io)?;
    file.sync_data().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClusterRecord {
        ClusterRecord {
            provider: "kind".into(),
            name: "breakfix".into(),
            kubeconfig: None,
            context: None,
        }
    }

    fn delete(name: &str) -> UndoAction {
        UndoAction::Delete {
            target: ObjectRef::namespaced("v1", "ConfigMap", "ns", name),
            uid: None,
        }
    }

    #[test]
    fn pending_undos_come_back_newest_first_and_reverted_ones_drop_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "run-1", cluster()).unwrap();
        let a = j.intend("exp", delete("a")).unwrap();
        let _b = j.intend("exp", delete("b")).unwrap();
        let _c = j.intend("exp", delete("c")).unwrap();
        j.mark_reverted(a).unwrap();
        let state = JournalState::read(j.path()).unwrap();
        let names: Vec<_> = state.pending.iter().map(|(_, u)| u.describe()).collect();
        assert_eq!(
            names,
            vec!["delete configmap/c -n ns", "delete configmap/b -n ns"]
        );
        assert!(!state.finished);
        assert_eq!(state.run_id, "run-1");
    }

    #[test]
    fn a_torn_last_line_is_ignored_but_a_torn_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "run-2", cluster()).unwrap();
        j.intend("exp", delete("a")).unwrap();
        let path = j.path().to_path_buf();
        drop(j);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"record\":\"intent\",\"se");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(JournalState::read(&path).unwrap().pending.len(), 1);

        text.push_str("\n{\"record\":\"finished\",\"at\":\"2026-01-01T00:00:00Z\"}\n");
        std::fs::write(&path, &text).unwrap();
        assert!(matches!(
            JournalState::read(&path),
            Err(JournalError::Corrupt { line: 3, .. })
        ));
    }

    /// A journal edited by hand so an undo appears twice would revert it
    /// twice: it is refused whole, naming both lines.
    #[test]
    fn an_undo_written_twice_is_refused_naming_both_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "run-4", cluster()).unwrap();
        j.intend("exp", delete("a")).unwrap();
        let path = j.path().to_path_buf();
        drop(j);
        let text = std::fs::read_to_string(&path).unwrap();
        let intent = text.lines().nth(1).unwrap().to_string();
        assert_eq!(JournalState::read(&path).unwrap().pending.len(), 1);
        std::fs::write(&path, format!("{text}{intent}\n")).unwrap();
        let err = JournalState::read(&path).unwrap_err();
        assert!(
            matches!(
                err,
                JournalError::Repeated {
                    line: 3,
                    first: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("nothing is reverted twice"),
            "{err}"
        );
    }

    #[test]
    fn handles_share_the_file_but_each_reverts_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let root = Journal::create(dir.path(), "run-3", cluster()).unwrap();
        let mut first = root.handle();
        let mut second = root.handle();
        let a = first.intend("first", delete("a")).unwrap();
        let b = second.intend("second", delete("b")).unwrap();
        first.intend("first", delete("c")).unwrap();
        assert_ne!(a, b, "one sequence across handles");
        let names = |j: &Journal| -> Vec<String> {
            j.pending().iter().map(|(_, u)| u.describe()).collect()
        };
        assert_eq!(
            names(&first),
            vec!["delete configmap/c -n ns", "delete configmap/a -n ns"]
        );
        assert_eq!(names(&second), vec!["delete configmap/b -n ns"]);
        assert!(root.pending().is_empty());
        assert_eq!(root.pending_in_run(), 3);

        second.mark_reverted(b).unwrap();
        assert_eq!(root.pending_in_run(), 2);
        assert_eq!(names(&first).len(), 2, "the other handle's undos stay");
        // The file holds every handle's records: cleanup sees what is left.
        let state = JournalState::read(root.path()).unwrap();
        let left: Vec<_> = state.pending.iter().map(|(_, u)| u.describe()).collect();
        assert_eq!(
            left,
            vec!["delete configmap/c -n ns", "delete configmap/a -n ns"]
        );
    }

    #[test]
    fn finished_journals_are_not_listed_and_a_corrupt_one_hides_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "done", cluster()).unwrap();
        let seq = j.intend("exp", delete("a")).unwrap();
        j.mark_reverted(seq).unwrap();
        j.finish().unwrap();
        let mut open = Journal::create(dir.path(), "open", cluster()).unwrap();
        open.intend("exp", delete("b")).unwrap();
        let mut edited = Journal::create(dir.path(), "edited", cluster()).unwrap();
        edited.intend("exp", delete("c")).unwrap();
        edited.intend("exp", delete("d")).unwrap();
        let path = edited.path().to_path_buf();
        drop(edited);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replacen("\"record\":\"intent\"", "\"record\":\"intnet\"", 1),
        )
        .unwrap();

        let scan = JournalState::scan(dir.path()).unwrap();
        let runs: Vec<_> = scan.unfinished.iter().map(|s| s.run_id.as_str()).collect();
        assert_eq!(runs, ["open"]);
        assert_eq!(scan.unreadable.len(), 1);
        let message = scan.unreadable[0].to_string();
        assert!(
            message.contains("edited.jsonl line 2 is not a record"),
            "{message}"
        );
        assert!(message.contains("nothing was reverted"), "{message}");
    }

    #[test]
    fn the_journal_is_0600_in_a_0700_folder() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("journal");
        let j = Journal::create(&dir, "private", cluster()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(j.path()), 0o600);
    }

    fn secret(name: &str) -> UndoAction {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": "shop"},
            "type": "Opaque",
            "data": {"password": "aHVudGVyMg=="},
            "stringData": {"token": "s3cr3t"},
        }))
        .unwrap();
        UndoAction::Restore {
            object: Box::new(object),
        }
    }

    #[test]
    fn a_secrets_data_stays_only_while_its_restore_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "secret", cluster()).unwrap();
        let other = j.intend("exp", delete("cm")).unwrap();
        let seq = j.intend("exp", secret("db")).unwrap();
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert!(text.contains("aHVudGVyMg==") && text.contains("s3cr3t"));

        j.mark_reverted(seq).unwrap();
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert!(!text.contains("aHVudGVyMg=="), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("\"scrubbed\""), "{text}");
        let state = JournalState::read(j.path()).unwrap();
        assert_eq!(state.pending.len(), 1, "the other undo is still pending");
        assert!(state.scrubbed.is_empty());

        // The rewritten file is the one the run goes on writing to, still
        // locked and still private.
        assert!(state.is_live());
        j.mark_reverted(other).unwrap();
        let path = j.path().to_path_buf();
        j.finish().unwrap();
        let state = JournalState::read(&path).unwrap();
        assert!(state.finished && state.pending.is_empty());
        assert!(!state.is_live());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    /// A client for an address nothing listens on: replay must refuse
    /// before it would ever use it.
    fn unreachable_client() -> Client {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        Client::try_from(config).unwrap()
    }

    #[tokio::test]
    async fn a_restore_whose_data_was_scrubbed_is_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "edited", cluster()).unwrap();
        let seq = j.intend("exp", secret("db")).unwrap();
        j.mark_reverted(seq).unwrap();
        let path = j.path().to_path_buf();
        drop(j);
        // Someone deletes the `reverted` line by hand.
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("\"record\":\"reverted\""))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, text).unwrap();

        let state = JournalState::read(&path).unwrap();
        assert_eq!(state.scrubbed, vec![seq]);
        let done = state.replay(&unreachable_client()).await.unwrap();
        assert_eq!(done.len(), 1);
        let message = done[0].result.as_ref().unwrap_err().to_string();
        assert!(message.contains("is not restored again"), "{message}");
        assert!(!JournalState::read(&path).unwrap().finished);
    }

    #[tokio::test]
    async fn a_live_runs_journal_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "live", cluster()).unwrap();
        j.intend("exp", delete("a")).unwrap();
        let state = JournalState::read(j.path()).unwrap();
        assert!(state.is_live());
        let err = state.replay(&unreachable_client()).await.unwrap_err();
        assert!(
            matches!(err, JournalError::InUse { ref run_id, .. } if run_id == "live"),
            "{err}"
        );
        drop(j);
        assert!(!state.is_live());
    }

    #[test]
    fn prune_removes_old_finished_journals_only() {
        let dir = tempfile::tempdir().unwrap();
        let age = |path: &Path, days: u64| {
            let file = File::options().append(true).open(path).unwrap();
            let then =
                std::time::SystemTime::now() - std::time::Duration::from_secs(days * 24 * 3600);
            file.set_modified(then).unwrap();
        };
        let mut old = Journal::create(dir.path(), "old", cluster()).unwrap();
        let seq = old.intend("exp", delete("a")).unwrap();
        old.mark_reverted(seq).unwrap();
        let old_path = old.path().to_path_buf();
        old.finish().unwrap();
        age(&old_path, 40);

        let recent = Journal::create(dir.path(), "recent", cluster()).unwrap();
        let recent_path = recent.path().to_path_buf();
        recent.finish().unwrap();
        age(&recent_path, 2);

        let mut pending = Journal::create(dir.path(), "pending", cluster()).unwrap();
        pending.intend("exp", delete("b")).unwrap();
        let pending_path = pending.path().to_path_buf();
        drop(pending);
        age(&pending_path, 400);

        let torn = dir.path().join("torn.jsonl");
        std::fs::write(&torn, "not json\nat all\n").unwrap();
        age(&torn, 400);

        let removed = prune(dir.path(), DEFAULT_RETENTION).unwrap();
        assert_eq!(removed, vec![old_path.clone()]);
        assert!(!old_path.exists());
        assert!(recent_path.exists() && pending_path.exists() && torn.exists());
    }
}
