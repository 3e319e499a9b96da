//! A team's copy of the scenario and its access to it: a namespace of its
//! own, a ServiceAccount bound to the `admin` ClusterRole in that namespace
//! only, and a kubeconfig holding a short-lived token for it. The
//! facilitator keeps the cluster's own kubeconfig.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{DynamicObject, PostParams};
use kube::{Api, Client};

use super::GameDayError;
use crate::baseline::instance::instance_id;
use crate::experiment::LoadedExperiment;
use crate::journal::ClusterRecord;
use crate::kobj::{self, ObjectRef};
use crate::vocab::Name;

/// The ClusterRole a team is bound to inside its namespace: read and change
/// everything there (RoleBindings included), nothing outside it.
pub const TEAM_CLUSTER_ROLE: &str = "admin";

/// The name of the team's ServiceAccount and RoleBinding.
pub fn account_name(team: &str) -> String {
    format!("breakfix-gameday-{team}")
}

/// The team's copy of the scenario: the experiment with its baseline and
/// fault relocated into namespaces of the team's own (a baseline instance:
/// `shop` → `shop-bf-<id>`, every namespaced reference rewritten, the
/// fault's targets included), so teams play side by side on one cluster
/// without seeing each other. The instance id comes from the run and the
/// team, so a copy is never an existing namespace of the user's.
///
/// A baseline that cannot move (objects in a namespace it does not own,
/// cluster-scoped objects every copy would share) is played in place by a
/// single team and refused for several, with the reason.
pub fn team_copy(
    experiment: &LoadedExperiment,
    team: &Name,
    teams: usize,
    run_id: &str,
) -> Result<LoadedExperiment, GameDayError> {
    let id = instance_id(&format!("{run_id}/gameday/{team}"));
    match experiment.instance(&id) {
        Ok(copy) => Ok(copy),
        Err(_) if teams == 1 => Ok(experiment.clone()),
        Err(e) => Err(GameDayError::NoCopies {
            teams,
            team: team.to_string(),
            why: e.to_string(),
        }),
    }
}

/// What a team's copy creates and the game day deletes at the end (and
/// `breakfix cleanup` after a crash): the copy's namespaces and, for an
/// instance, the cluster-scoped objects it renamed.
pub fn copy_objects(copy: &LoadedExperiment) -> Vec<ObjectRef> {
    let namespace = |name: &str| ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: name.to_string(),
    };
    match &copy.baseline.instance {
        Some(relocation) => relocation
            .new_namespaces()
            .map(namespace)
            .chain(relocation.renamed_cluster_objects())
            .collect(),
        None => vec![namespace(copy.baseline.spec.namespace.as_str())],
    }
}

/// Creates the team's ServiceAccount and its RoleBinding to
/// [`TEAM_CLUSTER_ROLE`] in `namespace` (both labelled with the run; they go
/// with the namespace).
pub async fn grant(
    client: &Client,
    namespace: &str,
    team: &str,
    run_id: &str,
) -> Result<(), GameDayError> {
    let name = account_name(team);
    let labels = serde_json::json!({
        crate::vocab::RUN_LABEL: run_id,
        crate::vocab::MANAGED_LABEL: "breakfix",
        "breakfix.dev/team": team,
    });
    let objects = [
        serde_json::json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
        }),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TEAM_CLUSTER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        }),
    ];
    for value in objects {
        let obj: DynamicObject = serde_json::from_value(value)
            .map_err(|e| GameDayError::Access(format!("building the team's RBAC: {e}")))?;
        kobj::apply(client, &obj)
            .await
            .map_err(|e| GameDayError::Access(e.to_string()))?;
    }
    Ok(())
}

/// A token for the team's ServiceAccount from the TokenRequest API, valid
/// for `valid_for` (it dies with the ServiceAccount when the copy goes).
pub async fn token(
    client: &Client,
    namespace: &str,
    team: &str,
    valid_for: Duration,
) -> Result<String, GameDayError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(valid_for.as_secs().max(600) as i64),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    accounts
        .create_token_request(&account_name(team), &PostParams::default(), &request)
        .await
        .map_err(|e| GameDayError::Access(format!("token for team {team}: {e}")))?
        .status
        .map(|s| s.token)
        .ok_or_else(|| GameDayError::Access(format!("no token issued for team {team}")))
}

/// Where the API server is and how to trust it, from the facilitator's
/// kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The live page's base URL.
    pub url: String,
    /// Base64 PEM of the cluster's CA, if the kubeconfig names one.
    pub ca_data: Option<String>,
    /// Whether the URL is plain HTTP (said in the instructions).
    pub insecure: bool,
}

/// Reads the API server of `record`'s kubeconfig context.
pub fn server_of(record: &ClusterRecord) -> Result<Server, GameDayError> {
    let (config, path) = match &record.kubeconfig {
        Some(path) => (
            kube::config::Kubeconfig::read_from(path)
                .map_err(|e| GameDayError::Access(format!("reading {}: {e}", path.display())))?,
            path.display().to_string(),
        ),
        // A context named on the command line, from $KUBECONFIG or ~/.kube/config.
        None if record.provider == "context" => (
            kube::config::Kubeconfig::read()
                .map_err(|e| GameDayError::Access(format!("reading the kubeconfig: {e}")))?,
            "the kubeconfig".to_string(),
        ),
        None => {
            return Err(GameDayError::Access(
                "the cluster record names no kubeconfig, so teams cannot be given one".into(),
            ));
        }
    };
    let context_name = record
        .context
        .clone()
        .or_else(|| config.current_context.clone())
        .ok_or_else(|| GameDayError::Access(format!("{path} has no current context")))?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| GameDayError::Access(format!("{path} has no context `{context_name}`")))?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| {
            GameDayError::Access(format!("{} has no cluster `{}`", path, context.cluster))
        })?;
    let url = cluster.server.clone().ok_or_else(|| {
        GameDayError::Access(format!("cluster `{}` has no server URL", context.cluster))
    })?;
    let ca_data = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => Some(data.clone()),
        (None, Some(file)) => {
            let pem = std::fs::read(file)
                .map_err(|e| GameDayError::Access(format!("reading CA {file}: {e}")))?;
            Some(base64_encode(&pem))
        }
        (None, None) => None,
    };
    Ok(Server {
        url,
        ca_data,
        insecure: cluster.insecure_skip_tls_verify.unwrap_or(false),
    })
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The team's kubeconfig: the facilitator's API server, the team's token,
/// its namespace as the default.
pub fn kubeconfig(server: &Server, team: &str, namespace: &str, token: &str) -> String {
    let mut cluster = serde_json::json!({"server": server.url});
    if let Some(ca) = &server.ca_data {
        cluster["certificate-authority-data"] = ca.clone().into();
    }
    if server.insecure {
        cluster["insecure-skip-tls-verify"] = true.into();
    }
    let context = format!("gameday-{team}");
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gameday", "cluster": cluster}],
        "users": [{"name": format!("team-{team}"), "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "gameday", "user": format!("team-{team}"), "namespace": namespace}}],
        "current-context": context,
    });
    serde_yaml::to_string(&config).unwrap_or_default()
}

/// Writes `text` to `path`, readable by its owner only (it holds a token).
pub fn write_private(path: &Path, text: &str) -> Result<PathBuf, GameDayError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| GameDayError::Access(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn a_team_kubeconfig_defaults_to_its_namespace() {
        let server = Server {
            url: "https://127.0.0.1:6443".into(),
            ca_data: Some("Q0E=".into()),
            insecure: false,
        };
        let text = kubeconfig(&server, "blue", "shop-blue", "t0k3n");
        let config: kube::config::Kubeconfig = serde_yaml::from_str(&text).unwrap();
        assert_eq!(config.current_context.as_deref(), Some("gameday-blue"));
        let ctx = config.contexts[0].context.as_ref().unwrap();
        assert_eq!(ctx.namespace.as_deref(), Some("shop-blue"));
        let cluster = config.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
    }

    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = write_private(&dir.path().join("blue/kubeconfig"), "x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
