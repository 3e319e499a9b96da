//! Clusters breakfix runs against: kind clusters it creates (and may reuse),
//! or an existing kubeconfig context the user names explicitly.

pub mod kind;
pub mod versions;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::baseline::steady::{Check, SteadyState};
use crate::journal::ClusterRecord;
pub use kind::{KindCluster, KindOptions};

/// Errors getting a cluster. Most are environment problems (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A tool breakfix needs (kind, docker, a node image) is not available.
    #[error("{what} is not available: {detail}")]
    Missing {
        /// What is missing.
        what: String,
        /// Why it is unavailable.
        detail: String,
        /// How to get it.
        help: String,
    },
    /// A command breakfix ran failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it wrote on stderr.
        stderr: String,
    },
    /// A kubeconfig could not be read or has no such context.
    #[error("kubeconfig {path}: {detail}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The API server could not be reached or refused the client.
    #[error("cannot reach the cluster: {}", crate::kobj::explain(.0))]
    Client(#[from] kube::Error),
    /// A cluster of that name exists but breakfix did not create it, so breakfix will not touch it.
    #[error(
        "cluster `{name}` exists but was not created by breakfix; name it with `--context kind-{name}` to use it anyway"
    )]
    NotOurs {
        /// The cluster's name.
        name: String,
    },
    /// No cluster of that name is in breakfix's registry.
    #[error(
        "breakfix did not create a cluster named `{name}` (see `breakfix cluster list`); it deletes only its own"
    )]
    NotRecorded {
        /// The cluster's name.
        name: String,
    },
    /// A cluster of that name exists and reusing it was not asked for.
    #[error(
        "cluster `{name}` already exists; pass --reuse to run on it, or `breakfix cluster down {name}`"
    )]
    Exists {
        /// The cluster's name.
        name: String,
    },
    /// The cluster came up but its nodes or system pods never became ready.
    #[error("cluster not ready: {0}")]
    NotReady(String),
}

impl ClusterError {
    /// How to fix it, when the error is about the environment.
    pub fn help(&self) -> Option<&str> {
        match self {
            Self::Missing { help, .. } => Some(help),
            _ => None,
        }
    }
}

/// A cluster ready for experiments.
#[derive(Clone)]
pub struct ClusterHandle {
    /// A client for the cluster's API server.
    pub client: Client,
    /// The cluster as journals and reports name it.
    pub record: ClusterRecord,
    /// Whether this run created the cluster (and so may delete it).
    pub created: bool,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("record", &self.record)
            .field("created", &self.created)
            .finish()
    }
}

/// A client for `context` in `kubeconfig` (default: `$KUBECONFIG` or `~/.kube/config`).
///
/// # Errors
///
/// [`ClusterError`] when the kubeconfig cannot be read or has no such
/// context, or no client can be built from it.
pub async fn client_for_context(
    kubeconfig: Option<&Path>,
    context: &str,
) -> Result<Client, ClusterError> {
    Ok(Client::try_from(
        config_for_context(kubeconfig, context).await?,
    )?)
}

/// A client for the cluster a journal recorded that never retries a
/// request by itself. kube's clients retry 429, 503 and 504 answers up to
/// 15 times with a growing backoff; an eviction a PodDisruptionBudget
/// refuses is a 429, and a drain must see each refusal (to report the
/// budget and bound its wait), not sit inside one call for minutes.
pub async fn client_without_retry(record: &ClusterRecord) -> Result<Client, ClusterError> {
    let context = record
        .context
        .clone()
        .unwrap_or_else(|| format!("kind-{}", record.name));
    let mut config = config_for_context(record.kubeconfig.as_deref(), &context).await?;
    config.default_retry = false;
    Ok(Client::try_from(config)?)
}

async fn config_for_context(
    kubeconfig: Option<&Path>,
    context: &str,
) -> Result<Config, ClusterError> {
    let kc = match kubeconfig {
        Some(path) => Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?,
        None => Kubeconfig::read().map_err(|e| ClusterError::Kubeconfig {
            path: PathBuf::from("$KUBECONFIG"),
            detail: e.to_string(),
        })?,
    };
    if !kc.contexts.iter().any(|c| c.name == context) {
        let known: Vec<_> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(ClusterError::Kubeconfig {
            path: kubeconfig
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("$KUBECONFIG")),
            detail: format!("no context `{context}` (known: {})", known.join(", ")),
        });
    }
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..KubeConfigOptions::default()
    };
    Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| ClusterError::Kubeconfig {
            path: kubeconfig.map(Path::to_path_buf).unwrap_or_default(),
            detail: e.to_string(),
        })
}

/// A client for the cluster a journal recorded.
///
/// # Errors
///
/// As [`client_for_context`].
pub async fn client_for_record(record: &ClusterRecord) -> Result<Client, ClusterError> {
    let context = record
        .context
        .clone()
        .unwrap_or_else(|| format!("kind-{}", record.name));
    client_for_context(record.kubeconfig.as_deref(), &context).await
}

/// Uses an existing context the user named explicitly.
///
/// # Errors
///
/// As [`client_for_context`], and [`ClusterError`] when the API server does
/// not answer (its version is asked for).
pub async fn existing_context(
    kubeconfig: Option<&Path>,
    context: &str,
) -> Result<ClusterHandle, ClusterError> {
    let client = client_for_context(kubeconfig, context).await?;
    client.apiserver_version().await?;
    Ok(ClusterHandle {
        client,
        record: ClusterRecord {
            provider: "context".into(),
            name: context.into(),
            kubeconfig: kubeconfig.map(Path::to_path_buf),
            context: Some(context.into()),
        },
        created: false,
    })
}

/// Waits until every node is Ready and kube-system's CoreDNS and kube-proxy are up.
///
/// # Errors
///
/// [`ClusterError`] when that does not happen within `timeout` or the
/// watches fail.
pub async fn wait_cluster_ready(client: &Client, timeout: Duration) -> Result<(), ClusterError> {
    let system = |name: &str| (String::from("kube-system"), name.to_string());
    let (ns, coredns) = system("coredns");
    let (_, proxy) = system("kube-proxy");
    let steady = SteadyState {
        checks: vec![
            Check::NodesReady,
            Check::Deployment {
                namespace: ns.clone(),
                name: coredns,
            },
            Check::DaemonSet {
                namespace: ns,
                name: proxy,
            },
        ],
    };
    steady
        .wait_steady(client, timeout)
        .await
        .map(|_| ())
        .map_err(|e| ClusterError::NotReady(e.to_string()))
}
