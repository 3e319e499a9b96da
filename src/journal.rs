//! The undo journal: written before every mutation, so that a crash at any
//! point leaves enough on disk for `breakfix cleanup` to put the cluster back.
//!
//! A journal is an append-only JSON Lines file per run. Each mutation is
//! preceded by an `intent` record carrying its undo action; a `reverted`
//! record marks it undone; `finished` closes the run. Anything with an intent
//! and no `reverted` is still pending. Records are flushed and synced before
//! the mutation they guard is sent.

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
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal {path} line {line}: {source}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("journal {path} has no header; it was not written by breakfix")]
    NoHeader { path: PathBuf },
    #[error("undo failed: {0}")]
    Undo(#[from] ObjectError),
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
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
    Restore { object: Box<DynamicObject> },
    /// Delete an object the run created.
    Delete {
        target: ObjectRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
    },
    /// Start a stopped kind node container again.
    StartNode { container: String },
    /// Delete an object the run created together with everything it owns
    /// (Jobs a CronJob spawned, their Pods), and wait until all of it is gone.
    DeleteTree {
        target: ObjectRef,
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
    Header {
        run_id: String,
        cluster: ClusterRecord,
        at: Timestamp,
        pid: u32,
    },
    Intent {
        seq: u64,
        experiment: String,
        undo: UndoAction,
        at: Timestamp,
    },
    Reverted {
        seq: u64,
        at: Timestamp,
    },
    Finished {
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
    /// The default folder for journals: `$BREAKFIX_STATE_DIR`, else
    /// `$XDG_STATE_HOME/breakfix/journal`, else `~/.local/state/breakfix/journal`.
    pub fn default_dir() -> PathBuf {
        state_dir().join("journal")
    }

    /// Creates `dir/<run_id>.jsonl` and writes the header.
    pub fn create(dir: &Path, run_id: &str, cluster: ClusterRecord) -> Result<Self, JournalError> {
        let io = |source| JournalError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(format!("{run_id}.jsonl"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|source| JournalError::Io {
                path: path.clone(),
                source,
            })?;
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
            },
        )?;
        inner.pending.insert(seq);
        drop(inner);
        self.pending.push((seq, undo));
        Ok(seq)
    }

    /// Marks `seq` undone.
    pub fn mark_reverted(&mut self, seq: u64) -> Result<(), JournalError> {
        let mut inner = self.shared.lock();
        self.shared.write(
            &mut inner,
            &Record::Reverted {
                seq,
                at: Timestamp::now(),
            },
        )?;
        inner.pending.remove(&seq);
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
    pub path: PathBuf,
    pub run_id: String,
    pub cluster: ClusterRecord,
    pub started: Timestamp,
    pub pid: u32,
    pub finished: bool,
    /// Pending undos, newest first.
    pub pending: Vec<PendingUndo>,
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
        let last = lines.len();
        for (idx, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = match serde_json::from_str(line) {
                Ok(r) => r,
                Err(_) if idx + 1 == last => break,
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
                Record::Intent { seq, undo, .. } => intents.push((seq, undo)),
                Record::Reverted { seq, .. } => intents.retain(|(s, _)| *s != seq),
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
        })
    }

    /// Every journal in `dir` with undo work left, newest first: the order to
    /// replay them in, since a later run's snapshot may contain an earlier
    /// run's fault only if the earlier one was never reverted.
    pub fn unfinished_in(dir: &Path) -> Result<Vec<Self>, JournalError> {
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
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
                continue;
            }
            let state = Self::read(&path)?;
            if !state.pending.is_empty() {
                out.push(state);
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.started));
        Ok(out)
    }

    /// Replays the pending undos, appending `reverted` records to the file,
    /// and closes the journal when nothing is left. Returns the errors.
    pub async fn replay(&self, client: &Client) -> Result<Vec<JournalError>, JournalError> {
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })?;
        let mut errors = Vec::new();
        for (seq, undo) in &self.pending {
            match undo.apply(client).await {
                Ok(()) => {
                    let record = Record::Reverted {
                        seq: *seq,
                        at: Timestamp::now(),
                    };
                    append(&mut file, &self.path, &record)?;
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            append(
                &mut file,
                &self.path,
                &Record::Finished {
                    at: Timestamp::now(),
                },
            )?;
        }
        Ok(errors)
    }
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

/// breakfix's state folder (journals, kubeconfigs of clusters it created).
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BREAKFIX_STATE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("breakfix");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/breakfix")
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
    fn finished_journals_with_nothing_pending_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "done", cluster()).unwrap();
        let seq = j.intend("exp", delete("a")).unwrap();
        j.mark_reverted(seq).unwrap();
        j.finish().unwrap();
        let mut open = Journal::create(dir.path(), "open", cluster()).unwrap();
        open.intend("exp", delete("b")).unwrap();
        let unfinished = JournalState::unfinished_in(dir.path()).unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].run_id, "open");
    }
}
