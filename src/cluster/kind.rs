//! The kind provider: drives the `kind` CLI with a generated config.
//!
//! Clusters breakfix creates are recorded under its state folder
//! (`clusters/<name>.json`, with their own kubeconfig beside it, so the
//! user's `~/.kube/config` is never edited). Only recorded clusters are ever
//! reused or deleted by name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::process::Command;

use super::{ClusterError, ClusterHandle, client_for_context, wait_cluster_ready};
use crate::journal::ClusterRecord;
use crate::state::{private_dir, state_dir, write_private};

/// The node image `just images` builds (see versions.env).
pub const DEFAULT_NODE_IMAGE: &str = "breakfix/node:v1.34.4";
/// The workload image baselines run.
pub const WORKLOAD_IMAGE: &str = "breakfix/workload:0.1.0";

/// How to get a kind cluster.
#[derive(Debug, Clone)]
pub struct KindOptions {
    /// The kind cluster's name.
    pub name: String,
    /// The node image to create it from (built here; nothing is pulled).
    pub node_image: String,
    /// Worker nodes besides the control plane.
    pub workers: u32,
    /// Run on the cluster if it already exists (and breakfix created it).
    pub reuse: bool,
    /// Local images to load into the nodes.
    pub load_images: Vec<String>,
    /// How long to wait for the nodes and system pods to become ready.
    pub ready_timeout: Duration,
}

impl Default for KindOptions {
    fn default() -> Self {
        Self {
            name: "breakfix".into(),
            node_image: std::env::var("BREAKFIX_NODE_IMAGE")
                .unwrap_or_else(|_| DEFAULT_NODE_IMAGE.into()),
            workers: 0,
            reuse: false,
            load_images: vec![WORKLOAD_IMAGE.into()],
            ready_timeout: Duration::from_secs(300),
        }
    }
}

/// What breakfix remembers about a kind cluster it created.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindCluster {
    /// The kind cluster's name.
    pub name: String,
    /// The node image it was created from.
    pub node_image: String,
    /// How many worker nodes it has.
    pub workers: u32,
    /// Its kubeconfig, written by breakfix.
    pub kubeconfig: PathBuf,
    /// When breakfix created it.
    pub created_at: jiff::Timestamp,
}

impl KindCluster {
    fn registry_dir() -> PathBuf {
        state_dir().join("clusters")
    }

    fn record_path(name: &str) -> PathBuf {
        Self::registry_dir().join(format!("{name}.json"))
    }

    /// The recorded cluster called `name`, if breakfix created one.
    pub fn recorded(name: &str) -> Option<Self> {
        let text = std::fs::read_to_string(Self::record_path(name)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Every cluster breakfix has recorded.
    pub fn all_recorded() -> Vec<Self> {
        let Ok(entries) = std::fs::read_dir(Self::registry_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<Self> = entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The journal's view of this cluster.
    pub fn record(&self) -> ClusterRecord {
        ClusterRecord {
            provider: "kind".into(),
            name: self.name.clone(),
            kubeconfig: Some(self.kubeconfig.clone()),
            context: Some(format!("kind-{}", self.name)),
        }
    }
}

/// Path to the `kind` binary: `$BREAKFIX_KIND`, `kind` on PATH, or the one
/// `just images` builds into the cache.
pub fn kind_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BREAKFIX_KIND") {
        return PathBuf::from(p);
    }
    if let Some(found) = find_on_path("kind") {
        return found;
    }
    cache_dir().join("bin/kind")
}

/// The build cache (`$BREAKFIX_CACHE`, default `~/.cache/breakfix`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BREAKFIX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".cache/breakfix")
        })
}

fn find_on_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

async fn run(program: &Path, args: &[&str]) -> Result<String, ClusterError> {
    let command = format!("{} {}", program.display(), args.join(" "));
    let out = Command::new(program).args(args).output().await.map_err(|e| {
        let name = program.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        ClusterError::Missing {
            what: name.clone(),
            detail: e.to_string(),
            help: match name.as_str() {
                "docker" => "install and start Docker: `just cluster` does both (as root)".into(),
                _ => "build it with `just images` (it lands in ~/.cache/breakfix/bin), or set BREAKFIX_KIND".into(),
            },
        }
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ClusterError::Command {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Checks docker answers and the node image exists, before anything is created.
pub async fn preflight(opts: &KindOptions) -> Result<(), ClusterError> {
    run(
        Path::new("docker"),
        &["info", "--format", "{{.ServerVersion}}"],
    )
    .await
    .map_err(|e| match e {
        ClusterError::Command { stderr, .. } => ClusterError::Missing {
            what: "the Docker daemon".into(),
            detail: stderr,
            help: "start it with `bash scripts/docker.sh` (as root), or run `just cluster`".into(),
        },
        other => other,
    })?;
    let kind = kind_binary();
    run(&kind, &["version"]).await?;
    run(
        Path::new("docker"),
        &["image", "inspect", "--format", "{{.Id}}", &opts.node_image],
    )
    .await
    .map_err(|_| ClusterError::Missing {
        what: format!("node image {}", opts.node_image),
        detail: "not in the local Docker image store".into(),
        help: "build it with `just images` (nothing is pulled; everything is built here)".into(),
    })?;
    Ok(())
}

/// The kind config for `workers` extra nodes.
pub fn kind_config(workers: u32) -> String {
    let mut config = String::from(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n",
    );
    for _ in 0..workers {
        config.push_str("  - role: worker\n");
    }
    config
}

async fn existing_clusters(kind: &Path) -> Result<Vec<String>, ClusterError> {
    Ok(run(kind, &["get", "clusters"])
        .await?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Creates the cluster (or reuses one breakfix created), loads images and
/// waits until nodes and kube-system are ready.
pub async fn ensure(opts: &KindOptions) -> Result<ClusterHandle, ClusterError> {
    preflight(opts).await?;
    let kind = kind_binary();
    let exists = existing_clusters(&kind).await?.contains(&opts.name);
    let recorded = KindCluster::recorded(&opts.name);
    let (cluster, created) = match (exists, recorded) {
        (true, Some(c)) if opts.reuse => (c, false),
        (true, Some(_)) => {
            return Err(ClusterError::Exists {
                name: opts.name.clone(),
            });
        }
        (true, None) => {
            return Err(ClusterError::NotOurs {
                name: opts.name.clone(),
            });
        }
        (false, _) => (create(&kind, opts).await?, true),
    };
    for image in &opts.load_images {
        run(
            &kind,
            &["load", "docker-image", image, "--name", &opts.name],
        )
        .await?;
    }
    let client =
        client_for_context(Some(&cluster.kubeconfig), &format!("kind-{}", opts.name)).await?;
    wait_cluster_ready(&client, opts.ready_timeout).await?;
    Ok(ClusterHandle {
        client,
        record: cluster.record(),
        created,
    })
}

/// Writes the kind config and the registry record of a cluster about to be
/// created into `dir` (0700; files 0600: the kubeconfig kind writes beside
/// them holds a cluster-admin key). Returns the record and the config's path.
fn record_new_cluster(
    dir: &Path,
    opts: &KindOptions,
) -> Result<(KindCluster, PathBuf), ClusterError> {
    let failed = |p: &Path, e: std::io::Error| ClusterError::Kubeconfig {
        path: p.to_path_buf(),
        detail: e.to_string(),
    };
    private_dir(dir).map_err(|e| failed(dir, e))?;
    let config_path = dir.join(format!("{}.kind.yaml", opts.name));
    let kubeconfig = dir.join(format!("{}.kubeconfig", opts.name));
    write_private(&config_path, kind_config(opts.workers).as_bytes())
        .map_err(|e| failed(&config_path, e))?;
    let cluster = KindCluster {
        name: opts.name.clone(),
        node_image: opts.node_image.clone(),
        workers: opts.workers,
        kubeconfig,
        created_at: jiff::Timestamp::now(),
    };
    let record = dir.join(format!("{}.json", opts.name));
    write_private(
        &record,
        serde_json::to_string_pretty(&cluster)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(|e| failed(&record, e))?;
    Ok((cluster, config_path))
}

async fn create(kind: &Path, opts: &KindOptions) -> Result<KindCluster, ClusterError> {
    // Recorded before creation so a crash mid-create still lets `cluster down` clean up.
    let (cluster, config_path) = record_new_cluster(&KindCluster::registry_dir(), opts)?;
    let kubeconfig = cluster.kubeconfig.clone();
    let config_arg = config_path.to_string_lossy().into_owned();
    let kubeconfig_arg = kubeconfig.to_string_lossy().into_owned();
    let result = run(
        kind,
        &[
            "create",
            "cluster",
            "--name",
            &opts.name,
            "--image",
            &opts.node_image,
            "--config",
            &config_arg,
            "--kubeconfig",
            &kubeconfig_arg,
            "--wait",
            "0s",
        ],
    )
    .await;
    if let Err(e) = result {
        let _ = delete(&opts.name).await;
        return Err(e);
    }
    // kind writes a new kubeconfig 0600 itself; make sure of it whatever
    // kind version wrote it.
    {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(crate::state::PRIVATE_FILE_MODE);
        std::fs::set_permissions(&kubeconfig, private).map_err(|e| ClusterError::Kubeconfig {
            path: kubeconfig.clone(),
            detail: e.to_string(),
        })?;
    }
    Ok(cluster)
}

/// Deletes a cluster breakfix created, and forgets it.
pub async fn delete(name: &str) -> Result<(), ClusterError> {
    let Some(cluster) = KindCluster::recorded(name) else {
        return Err(ClusterError::NotRecorded { name: name.into() });
    };
    let kubeconfig = cluster.kubeconfig.to_string_lossy().into_owned();
    run(
        &kind_binary(),
        &[
            "delete",
            "cluster",
            "--name",
            name,
            "--kubeconfig",
            &kubeconfig,
        ],
    )
    .await?;
    let dir = KindCluster::registry_dir();
    for file in [
        format!("{name}.json"),
        format!("{name}.kind.yaml"),
        format!("{name}.kubeconfig"),
    ] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_and_kind_config_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("clusters");
        let opts = KindOptions {
            name: "private".into(),
            ..KindOptions::default()
        };
        let (cluster, config) = record_new_cluster(&dir, &opts).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&config), 0o600);
        assert_eq!(mode(&dir.join("private.json")), 0o600);
        assert_eq!(cluster.kubeconfig, dir.join("private.kubeconfig"));
    }

    #[test]
    fn kind_config_lists_one_control_plane_and_the_workers() {
        let config = kind_config(2);
        assert_eq!(config.matches("role: worker").count(), 2);
        assert_eq!(config.matches("role: control-plane").count(), 1);
    }
}
