//! Both versions of the user's configuration, from git, without touching
//! their checkout.
//!
//! The base (`--base REF`, and the head when `--head REF` is given) is
//! checked out with `git worktree add --detach` into a temporary folder of
//! its own; the user's work tree, index and `HEAD` are never changed, and
//! the worktree is removed (`git worktree remove --force`, then `prune`)
//! when the [`Checkout`] is dropped. Without `--head` the head is the work
//! tree itself, uncommitted changes included.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a version of the configuration could not be had from git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git cannot be run.
    #[error("git is not installed ({0})")]
    NoGit(String),
    /// The path is not in a git repository.
    #[error("{path} is not inside a git repository")]
    NotARepository {
        /// The path.
        path: PathBuf,
    },
    /// The reference names no commit.
    #[error("`{reference}` is not a commit, branch or tag of this repository")]
    UnknownRef {
        /// The reference as given.
        reference: String,
    },
    /// A shallow clone lacks the reference.
    #[error("`{reference}` is not in this shallow clone")]
    ShallowWithoutRef {
        /// The reference as given.
        reference: String,
    },
    /// A path leaves the repository.
    #[error("{path} is outside the repository at {top}")]
    OutsideRepository {
        /// The path.
        path: PathBuf,
        /// The repository's top folder.
        top: PathBuf,
    },
    /// A path does not exist at the revision.
    #[error("{path} does not exist at {reference}")]
    MissingAt {
        /// The path.
        path: PathBuf,
        /// The revision.
        reference: String,
    },
    /// A git command failed.
    #[error("`git {command}` failed: {stderr}")]
    Command {
        /// Its arguments.
        command: String,
        /// What it wrote on stderr.
        stderr: String,
    },
    /// A temporary folder could not be created.
    #[error("creating a temporary folder: {0}")]
    Io(#[from] std::io::Error),
}

impl GitError {
    /// What to do about it, in one line.
    pub fn help(&self) -> Option<String> {
        match self {
            Self::NoGit(_) => Some("install git (`apt-get install git`)".into()),
            Self::NotARepository { .. } => {
                Some("run breakfix diff inside the repository that holds your configuration".into())
            }
            Self::UnknownRef { reference } => Some(format!(
                "fetch it first (`git fetch origin {}`), or name an existing branch, tag or commit",
                reference.trim_start_matches("origin/")
            )),
            Self::ShallowWithoutRef { reference } => Some(format!(
                "fetch the base too: `git fetch --deepen=50 origin` or `git fetch origin {}` (in GitHub Actions: actions/checkout with fetch-depth: 0)",
                reference.trim_start_matches("origin/")
            )),
            Self::OutsideRepository { .. } => {
                Some("name experiments inside the repository being compared".into())
            }
            Self::MissingAt { reference, .. } => Some(format!(
                "diff runs the experiments as they are at both versions; land them on {reference} first, or use `breakfix run` on the head alone"
            )),
            Self::Command { .. } | Self::Io(_) => None,
        }
    }
}

/// A git repository found from a path inside it.
#[derive(Debug, Clone)]
pub struct Repo {
    top: PathBuf,
}

/// One version of the repository on disk: a temporary worktree at a
/// commit, or the user's work tree.
#[derive(Debug)]
pub struct Checkout {
    /// The folder the version is in (the repository's top level).
    pub root: PathBuf,
    /// The commit (full id); for the work tree, the commit `HEAD` is at.
    pub commit: String,
    /// How reports name it: the reference as given, or `work tree`.
    pub label: String,
    /// Whether the work tree had uncommitted changes (only for the work tree).
    pub dirty: bool,
    /// The temporary worktree, removed on drop; `None` for the work tree.
    worktree: Option<Worktree>,
}

impl Checkout {
    /// `path` (inside the user's repository) at this version.
    pub fn path_of(&self, repo: &Repo, path: &Path) -> Result<PathBuf, GitError> {
        let relative = repo.relative(path)?;
        let at = self.root.join(&relative);
        if !at.exists() {
            return Err(GitError::MissingAt {
                path: relative,
                reference: self.label.clone(),
            });
        }
        Ok(at)
    }

    /// Whether this is a temporary worktree (not the user's work tree).
    pub fn is_temporary(&self) -> bool {
        self.worktree.is_some()
    }
}

#[derive(Debug)]
struct Worktree {
    repo_top: PathBuf,
    path: PathBuf,
    /// Holds the parent folder; deleted after the worktree is removed.
    _dir: tempfile::TempDir,
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let removed = git(
            &self.repo_top,
            &[
                "worktree",
                "remove",
                "--force",
                &self.path.to_string_lossy(),
            ],
        );
        if let Err(e) = removed {
            tracing::warn!(
                "removing the temporary worktree {}: {e}",
                self.path.display()
            );
        }
        let _ = git(&self.repo_top, &["worktree", "prune"]);
    }
}

/// Runs `git ARGS` in `dir`; its trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| GitError::NoGit(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(GitError::Command {
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl Repo {
    /// The repository `path` is in.
    pub fn discover(path: &Path) -> Result<Self, GitError> {
        let dir = if path.is_dir() {
            path
        } else {
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
        };
        match git(dir, &["rev-parse", "--show-toplevel"]) {
            Ok(top) => Ok(Self {
                top: PathBuf::from(top),
            }),
            Err(GitError::Command { .. }) => Err(GitError::NotARepository {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(e),
        }
    }

    /// The repository's top-level folder.
    pub fn top(&self) -> &Path {
        &self.top
    }

    /// `path` relative to the repository's top level.
    pub fn relative(&self, path: &Path) -> Result<PathBuf, GitError> {
        let absolute = path
            .canonicalize()
            .map_err(|_| GitError::OutsideRepository {
                path: path.to_path_buf(),
                top: self.top.clone(),
            })?;
        let top = self.top.canonicalize().unwrap_or_else(|_| self.top.clone());
        absolute
            .strip_prefix(&top)
            .map(Path::to_path_buf)
            .map_err(|_| GitError::OutsideRepository {
                path: path.to_path_buf(),
                top: self.top.clone(),
            })
    }

    /// The full commit id `reference` names.
    ///
    /// # Errors
    ///
    /// [`GitError::ShallowWithoutRef`] when the repository is a shallow
    /// clone and the reference is not in it, [`GitError::UnknownRef`]
    /// otherwise.
    pub fn resolve(&self, reference: &str) -> Result<String, GitError> {
        if reference.starts_with('-') {
            return Err(GitError::UnknownRef {
                reference: reference.into(),
            });
        }
        let spec = format!("{reference}^{{commit}}");
        match git(&self.top, &["rev-parse", "--verify", "--quiet", &spec]) {
            Ok(commit) if !commit.is_empty() => Ok(commit),
            Ok(_) | Err(GitError::Command { .. }) => {
                let shallow = git(&self.top, &["rev-parse", "--is-shallow-repository"])
                    .is_ok_and(|s| s == "true");
                if shallow {
                    Err(GitError::ShallowWithoutRef {
                        reference: reference.into(),
                    })
                } else {
                    Err(GitError::UnknownRef {
                        reference: reference.into(),
                    })
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `reference` checked out in a temporary worktree of its own.
    pub fn checkout(&self, reference: &str) -> Result<Checkout, GitError> {
        let commit = self.resolve(reference)?;
        // A diff killed before its drop leaves a registration whose folder the
        // system may since have removed: forget those first.
        let _ = git(&self.top, &["worktree", "prune"]);
        let dir = tempfile::Builder::new().prefix("breakfix-git-").tempdir()?;
        let path = dir.path().join("tree");
        git(
            &self.top,
            &[
                "worktree",
                "add",
                "--detach",
                "--quiet",
                &path.to_string_lossy(),
                &commit,
            ],
        )?;
        Ok(Checkout {
            root: path.clone(),
            commit,
            label: reference.to_string(),
            dirty: false,
            worktree: Some(Worktree {
                repo_top: self.top.clone(),
                path,
                _dir: dir,
            }),
        })
    }

    /// The user's work tree as it is, uncommitted changes included.
    pub fn work_tree(&self) -> Result<Checkout, GitError> {
        let commit =
            git(&self.top, &["rev-parse", "--verify", "--quiet", "HEAD"]).unwrap_or_default();
        let dirty = !git(
            &self.top,
            &["status", "--porcelain", "--untracked-files=normal"],
        )?
        .is_empty();
        Ok(Checkout {
            root: self.top.clone(),
            commit,
            label: "work tree".into(),
            dirty,
            worktree: None,
        })
    }

    /// Files that differ between `base` and `head` (relative to the top
    /// level), untracked files included when the head is the work tree.
    pub fn changed_files(
        &self,
        base: &Checkout,
        head: &Checkout,
    ) -> Result<Vec<PathBuf>, GitError> {
        let mut files: Vec<PathBuf> = if head.is_temporary() {
            git(
                &self.top,
                &["diff", "--name-only", &base.commit, &head.commit],
            )?
        } else {
            git(&self.top, &["diff", "--name-only", &base.commit])?
        }
        .lines()
        .map(PathBuf::from)
        .collect();
        if !head.is_temporary() {
            files.extend(
                git(&self.top, &["ls-files", "--others", "--exclude-standard"])?
                    .lines()
                    .map(PathBuf::from),
            );
        }
        files.sort();
        files.dedup();
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with two commits: `v1` (web.yaml says 1) and the
    /// branch tip (says 2), plus an uncommitted change (says 3).
    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let run = |args: &[&str]| git(p, args).unwrap();
        run(&["init", "--quiet", "--initial-branch=main"]);
        run(&["config", "user.email", "test@example.com"]);
        run(&["config", "user.name", "test"]);
        std::fs::create_dir(p.join("config")).unwrap();
        std::fs::write(p.join("config/web.yaml"), "replicas: 1\n").unwrap();
        run(&["add", "."]);
        run(&["commit", "--quiet", "-m", "one"]);
        run(&["tag", "v1"]);
        std::fs::write(p.join("config/web.yaml"), "replicas: 2\n").unwrap();
        run(&["commit", "--quiet", "-am", "two"]);
        std::fs::write(p.join("config/web.yaml"), "replicas: 3\n").unwrap();
        dir
    }

    #[test]
    fn the_base_comes_from_a_worktree_and_the_users_checkout_is_untouched() {
        let dir = repo();
        let repo = Repo::discover(&dir.path().join("config")).unwrap();
        let status_before = git(repo.top(), &["status", "--porcelain"]).unwrap();
        let base = repo.checkout("v1").unwrap();
        let worktree_path = base.root.clone();
        let file = base
            .path_of(&repo, &dir.path().join("config/web.yaml"))
            .unwrap();
        assert_eq!(std::fs::read_to_string(file).unwrap(), "replicas: 1\n");
        let head = repo.work_tree().unwrap();
        assert!(head.dirty);
        assert_eq!(
            std::fs::read_to_string(head.root.join("config/web.yaml")).unwrap(),
            "replicas: 3\n"
        );
        assert_eq!(
            repo.changed_files(&base, &head).unwrap(),
            [PathBuf::from("config/web.yaml")]
        );
        drop(base);
        assert!(!worktree_path.exists(), "the temporary worktree is removed");
        assert_eq!(
            git(repo.top(), &["worktree", "list", "--porcelain"])
                .unwrap()
                .matches("worktree ")
                .count(),
            1
        );
        assert_eq!(
            git(repo.top(), &["status", "--porcelain"]).unwrap(),
            status_before
        );
    }

    #[test]
    fn an_unknown_ref_is_named_with_what_to_do() {
        let dir = repo();
        let repo = Repo::discover(dir.path()).unwrap();
        let err = repo.checkout("origin/nope").unwrap_err();
        assert!(matches!(err, GitError::UnknownRef { .. }), "{err:?}");
        assert!(err.help().unwrap().contains("git fetch origin nope"));
        assert!(matches!(
            repo.resolve("--output=x").unwrap_err(),
            GitError::UnknownRef { .. }
        ));
    }

    #[test]
    fn a_shallow_clone_without_the_base_says_to_deepen() {
        let dir = repo();
        let clone = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        git(clone.path(), &["clone", "--quiet", "--depth=1", &url, "c"]).unwrap();
        let repo = Repo::discover(&clone.path().join("c")).unwrap();
        let err = repo.checkout("v1").unwrap_err();
        assert!(matches!(err, GitError::ShallowWithoutRef { .. }), "{err:?}");
        assert!(err.help().unwrap().contains("fetch-depth: 0"));
    }

    #[test]
    fn a_folder_outside_any_repository_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Repo::discover(dir.path()).unwrap_err();
        assert!(matches!(err, GitError::NotARepository { .. }), "{err:?}");
    }

    #[test]
    fn experiments_missing_at_the_base_are_named() {
        let dir = repo();
        std::fs::create_dir(dir.path().join("experiments")).unwrap();
        let repo = Repo::discover(dir.path()).unwrap();
        let base = repo.checkout("v1").unwrap();
        let err = base
            .path_of(&repo, &dir.path().join("experiments"))
            .unwrap_err();
        assert!(matches!(err, GitError::MissingAt { .. }), "{err:?}");
    }
}
