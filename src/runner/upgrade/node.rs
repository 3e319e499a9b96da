//! The nodes of a kind cluster, as Docker sees them, and commands run in
//! them with `docker exec`: how an upgrade reaches kubeadm, the kubelet and
//! containerd inside each node.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// How many lines of a failed command's output an error keeps.
pub const LOG_TAIL: usize = 15;

/// Errors running something against a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// A command could not be started.
    #[error("cannot run `{command}`: {detail}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        detail: String,
    },
    /// A command on a node exited with an error.
    #[error("`{command}` on {node} exited with {status}; last lines:\n{tail}")]
    Failed {
        /// The node.
        node: String,
        /// The command.
        command: String,
        /// Its exit status.
        status: String,
        /// The last lines it printed.
        tail: String,
    },
    /// The cluster has no node containers.
    #[error(
        "no node containers for kind cluster `{cluster}`; is it running? (`docker ps --filter label=io.x-k8s.kind.cluster={cluster}`)"
    )]
    NoNodes {
        /// The cluster.
        cluster: String,
    },
}

impl NodeError {
    /// The last lines of the command's output, when it ran and failed.
    pub fn tail(&self) -> Option<&str> {
        match self {
            Self::Failed { tail, .. } => Some(tail),
            _ => None,
        }
    }
}

/// A kind node: its container, which is also its Kubernetes node name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KindNode {
    /// The node's container name.
    pub name: String,
    /// Whether it runs the control plane.
    pub control_plane: bool,
}

/// The node containers of kind cluster `cluster`: control-plane nodes first
/// (the first of them is where `kubeadm init` ran), then workers, each
/// sorted by name.
pub async fn kind_nodes(cluster: &str) -> Result<Vec<KindNode>, NodeError> {
    let filter = format!("label=io.x-k8s.kind.cluster={cluster}");
    let format = "{{.Names}}\t{{.Label \"io.x-k8s.kind.role\"}}";
    let out = docker(&["ps", "--filter", &filter, "--format", format]).await?;
    let mut nodes: Vec<KindNode> = out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, role)| *role != "external-load-balancer")
        .map(|(name, role)| KindNode {
            name: name.trim().into(),
            control_plane: role.trim() == "control-plane",
        })
        .collect();
    nodes.sort_by(|a, b| {
        b.control_plane
            .cmp(&a.control_plane)
            .then_with(|| a.name.cmp(&b.name))
    });
    if nodes.is_empty() {
        return Err(NodeError::NoNodes {
            cluster: cluster.into(),
        });
    }
    Ok(nodes)
}

/// Runs `args` in `node` and returns its standard output.
pub async fn exec(node: &str, args: &[&str]) -> Result<String, NodeError> {
    let mut full = vec!["exec", node];
    full.extend_from_slice(args);
    run(node, &full, None).await
}

/// Runs a shell script in `node` (`sh -euc SCRIPT`).
pub async fn sh(node: &str, script: &str) -> Result<String, NodeError> {
    exec(node, &["sh", "-euc", script]).await
}

/// Copies a host file into `node` at `dest`.
pub async fn copy_in(node: &str, source: &Path, dest: &str) -> Result<(), NodeError> {
    let from = source.to_string_lossy();
    let to = format!("{node}:{dest}");
    run(node, &["cp", from.as_ref(), &to], None)
        .await
        .map(|_| ())
}

/// Imports images from the host's Docker into `node`'s containerd (the
/// `k8s.io` namespace the kubelet uses), as `kind load` does; nothing is
/// pulled.
pub async fn import_images(node: &str, images: &[String]) -> Result<(), NodeError> {
    let mut save_args = vec!["save".to_string()];
    save_args.extend(images.iter().cloned());
    let save_line = format!("docker {}", save_args.join(" "));
    let mut save = Command::new("docker")
        .args(&save_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| NodeError::Spawn {
            command: save_line.clone(),
            detail: e.to_string(),
        })?;
    let stdout = save.stdout.take().ok_or_else(|| NodeError::Spawn {
        command: save_line.clone(),
        detail: "no stdout".into(),
    })?;
    let stdin: Stdio = stdout
        .try_into()
        .map_err(|e: std::io::Error| NodeError::Spawn {
            command: save_line.clone(),
            detail: e.to_string(),
        })?;
    let import = [
        "exec",
        "-i",
        node,
        "ctr",
        "-n",
        "k8s.io",
        "images",
        "import",
        "--all-platforms",
        "--digests",
        "-",
    ];
    let result = run(node, &import, Some(stdin)).await;
    let saved = save
        .wait_with_output()
        .await
        .map_err(|e| NodeError::Spawn {
            command: save_line.clone(),
            detail: e.to_string(),
        })?;
    if !saved.status.success() {
        return Err(NodeError::Failed {
            node: "host".into(),
            command: save_line,
            status: saved.status.to_string(),
            tail: tail(&String::from_utf8_lossy(&saved.stderr), LOG_TAIL),
        });
    }
    result.map(|_| ())
}

/// Writes `content` to `dest` in `node` (through `docker exec -i`).
pub async fn write_file(node: &str, dest: &str, content: &str) -> Result<(), NodeError> {
    let script = format!("mkdir -p \"$(dirname '{dest}')\" && cat > '{dest}'");
    let mut child = Command::new("docker")
        .args(["exec", "-i", node, "sh", "-euc", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| NodeError::Spawn {
            command: format!("docker exec {node} … > {dest}"),
            detail: e.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(content.as_bytes())
            .await
            .map_err(|e| NodeError::Spawn {
                command: format!("write {dest} in {node}"),
                detail: e.to_string(),
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| NodeError::Spawn {
            command: format!("write {dest} in {node}"),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NodeError::Failed {
            node: node.into(),
            command: format!("write {dest}"),
            status: out.status.to_string(),
            tail: tail(&String::from_utf8_lossy(&out.stderr), LOG_TAIL),
        })
    }
}

async fn docker(args: &[&str]) -> Result<String, NodeError> {
    run("host", args, None).await
}

/// Runs `docker ARGS`; on failure the error keeps the last lines of its
/// output (standard error and output together, as a person would read them).
async fn run(node: &str, args: &[&str], stdin: Option<Stdio>) -> Result<String, NodeError> {
    let line = shown(args);
    let out = Command::new("docker")
        .args(args)
        .stdin(stdin.unwrap_or_else(Stdio::null))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .output()
        .await
        .map_err(|e| NodeError::Spawn {
            command: format!("docker {line}"),
            detail: e.to_string(),
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let both = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    Err(NodeError::Failed {
        node: node.into(),
        command: line,
        status: out.status.to_string(),
        tail: tail(&both, LOG_TAIL),
    })
}

/// The command as the user would type it in the node (without `docker exec NODE`).
fn shown(args: &[&str]) -> String {
    match args {
        ["exec", "-i", _, rest @ ..] | ["exec", _, rest @ ..] => match rest {
            ["sh", "-euc", script] => (*script).to_string(),
            _ => rest.join(" "),
        },
        _ => format!("docker {}", args.join(" ")),
    }
}

/// The last `n` non-empty lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[test]
    fn tails_keep_the_last_non_empty_lines() {
        assert_eq!(tail("a\n\nb\nc\n\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[rstest]
    #[case(&["exec", "n1", "kubeadm", "upgrade", "node"], "kubeadm upgrade node")]
    #[case(&["exec", "-i", "n1", "ctr", "images"], "ctr images")]
    #[case(&["exec", "n1", "sh", "-euc", "systemctl restart kubelet"], "systemctl restart kubelet")]
    #[case(&["ps", "-q"], "docker ps -q")]
    fn commands_show_as_typed_in_the_node(#[case] args: &[&str], #[case] want: &str) {
        assert_eq!(shown(args), want);
    }
}
