//! breakfix's files on disk: where its state lives, and how files that
//! only their owner may read are made.
//!
//! Journals hold snapshots of the objects a fault changed (a deleted
//! Secret's data, until it is restored), the cluster registry holds
//! kubeconfigs with cluster-admin keys, and reports can quote object
//! fields. On a shared CI runner or a jump host no other local user may
//! read them: files are created 0600 and folders 0700, whatever the umask.
//! Imports nothing of the crate.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every folder breakfix creates for its state.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every file breakfix writes that may hold object data or credentials.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// breakfix's state folder (journals, the clusters it created and their
/// kubeconfigs): `$BREAKFIX_STATE_DIR`, else `$XDG_STATE_HOME/breakfix`,
/// else `~/.local/state/breakfix`.
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

/// Creates `dir` and any missing parents with mode 0700. Inside the state
/// folder, folders that exist with a wider mode (made by an older breakfix)
/// are narrowed to 0700 too; a folder the user named elsewhere keeps its
/// mode (the files in it are 0600 anyway).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)?;
    let state = state_dir();
    if let Ok(below) = dir.strip_prefix(&state) {
        let mut folder = state.clone();
        narrow(&folder)?;
        for part in below.components() {
            folder.push(part);
            narrow(&folder)?;
        }
    }
    Ok(())
}

fn narrow(dir: &Path) -> io::Result<()> {
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))?;
    }
    Ok(())
}

/// Creates a new file only its owner can read and write, for appending;
/// fails if it exists.
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
}

/// Writes `bytes` to `path` atomically: a 0600 temporary beside it, synced,
/// then renamed over `path`. The result is 0600 whatever `path` was before.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // report.json → report.json.tmp: files that share a stem never share a
    // temporary.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_are_0700_and_files_0600_whatever_was_there() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);

        let created = dir.join("journal.jsonl");
        create_private(&created).unwrap();
        assert_eq!(mode(&created), 0o600);
        assert!(create_private(&created).is_err(), "never reuses a file");

        let replaced = dir.join("report.json");
        std::fs::write(&replaced, "old").unwrap();
        std::fs::set_permissions(&replaced, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&replaced, b"new").unwrap();
        assert_eq!(mode(&replaced), 0o600);
        assert_eq!(std::fs::read_to_string(&replaced).unwrap(), "new");
    }

    #[test]
    fn a_folder_named_outside_the_state_folder_keeps_its_mode() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(root.path()).unwrap();
        assert_eq!(mode(root.path()), 0o755);
    }
}
