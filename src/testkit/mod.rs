//! Test support: a real Kubernetes control plane (etcd, kube-apiserver,
//! kube-controller-manager; no nodes) in one container, started with
//! testcontainers from the image `just images` builds locally — the envtest
//! pattern. Deployments, ReplicaSets, Jobs, CronJobs, quotas, RBAC, garbage
//! collection and watches all behave for real; pods stay Pending.
//!
//! One control plane per test binary (started on first use), one namespace
//! per test, so tests run in parallel:
//!
//! ```no_run
//! # async fn example() {
//! let ns = breakfix::testkit::namespace("baseline-apply").await;
//! let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(ns.client.clone(), &ns.name);
//! # }
//! ```
//!
//! The container stops when the test binary exits, however it was started
//! (`cargo test`, an IDE, a run killed half-way): a small watchdog process
//! holds a pipe from the test binary and removes the container when the
//! pipe closes, which the kernel does when the test process ends for any
//! reason. No reaper image is needed (none could be pulled here).
//! Containers are also labelled with the owning test process's pid, and
//! each new test binary removes those whose process is gone, for the case
//! where the watchdog itself was killed.

use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::config::AuthInfo;
use kube::{Api, Client, Config};
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

/// The control-plane image (see images/apiserver-tier).
pub const IMAGE: &str = "breakfix/apiserver-tier";
/// Its tag: the Kubernetes version of every breakfix cluster.
pub const TAG: &str = "v1.34.4";
/// Line the image prints once /readyz answers and the controller manager runs.
pub const READY_LINE: &str = "breakfix-apiserver-tier ready";
/// Label on every container the testkit starts.
pub const LABEL: &str = "dev.breakfix.testkit";
const ADMIN_TOKEN: &str = "breakfix-testkit-admin";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// A running control plane.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    /// The API server's URL.
    pub url: String,
    /// Its container's id, for removing it.
    pub container_id: String,
    admin_token: String,
}

/// A namespace of its own for one test, with an admin client.
#[derive(Clone)]
pub struct TestNamespace {
    /// The namespace's name.
    pub name: String,
    /// A client for the API server.
    pub client: Client,
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane for this test binary, started on first call.
///
/// Panics with a one-line explanation when Docker is missing or the
/// control plane does not come up: a test must fail, never pass, if the
/// tier did not run.
pub fn control_plane() -> &'static ControlPlane {
    let started = CONTROL_PLANE.get_or_init(|| {
        // A runtime of its own: the container outlives every test's runtime.
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(start())
        })
        .join()
        .unwrap_or_else(|_| Err("control plane start-up panicked".into()))
    });
    match started {
        Ok(cp) => cp,
        Err(e) => panic!("{e}"),
    }
}

async fn start() -> Result<ControlPlane, String> {
    docker_check().await?;
    reap_orphans().await;
    let pid = std::process::id().to_string();
    let request = GenericImage::new(IMAGE, TAG)
        .with_exposed_port(ContainerPort::Tcp(6443))
        .with_wait_for(WaitFor::message_on_stdout(READY_LINE))
        .with_env_var("BREAKFIX_ADMIN_TOKEN", ADMIN_TOKEN)
        .with_label(LABEL, "1")
        .with_label(format!("{LABEL}.pid"), pid.clone())
        .with_startup_timeout(STARTUP_TIMEOUT);
    let container = match request.start().await {
        Ok(c) => c,
        Err(e) => {
            return Err(format!(
                "the API-server test tier did not start: {e}\n{}",
                last_logs(&pid).await
            ));
        }
    };
    let port = container
        .get_host_port_ipv4(ContainerPort::Tcp(6443))
        .await
        .map_err(|e| format!("no port mapped for the API server: {e}"))?;
    let cp = ControlPlane {
        url: format!("https://127.0.0.1:{port}"),
        container_id: container.id().to_string(),
        admin_token: ADMIN_TOKEN.into(),
    };
    // Kept running for the rest of the process, then removed by the
    // watchdog (see the module docs).
    std::mem::forget(container);
    if let Err(e) = on_exit(&["docker", "rm", "-f", &cp.container_id]) {
        tracing::warn!("no watchdog for the control plane ({e}); the next test binary reaps it");
    }
    Ok(cp)
}

/// Runs `command` once this process has exited, however it exits (even
/// SIGKILL): a watchdog in a process group of its own reads a pipe whose
/// other end only this process holds, and runs the command at end of file.
fn on_exit(command: &[&str]) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"cat >/dev/null; exec "$@" >/dev/null 2>&1"#)
        .arg("breakfix-testkit-watchdog")
        .args(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // Not in the test's process group: Ctrl-C on the test run must not
        // take the watchdog down before it has done its work.
        .process_group(0)
        .spawn()?;
    // Held open for the rest of the process; the kernel closes it at exit.
    // (The descriptor is close-on-exec: no child of the tests inherits it.)
    std::mem::forget(child.stdin.take());
    Ok(())
}

async fn docker_check() -> Result<(), String> {
    let out = tokio::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &format!("{IMAGE}:{TAG}")])
        .output()
        .await
        .map_err(|e| format!("docker is not installed ({e}); run `just cluster` or `bash scripts/docker.sh` as root"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Cannot connect") || stderr.contains("daemon") {
        Err(
            "the Docker daemon is not running; start it with `bash scripts/docker.sh` (as root)"
                .into(),
        )
    } else {
        Err(format!(
            "image {IMAGE}:{TAG} is missing; build it with `just images` (nothing is pulled)"
        ))
    }
}

/// Removes testkit containers whose test process has exited.
async fn reap_orphans() {
    let Ok(out) = tokio::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label={LABEL}"),
            "--format",
            &format!("{{{{.ID}}}} {{{{.Label \"{LABEL}.pid\"}}}}"),
        ])
        .output()
        .await
    else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.split_whitespace();
        let (Some(id), pid) = (parts.next(), parts.next()) else {
            continue;
        };
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = tokio::process::Command::new("docker")
                .args(["rm", "-f", id])
                .output()
                .await;
        }
    }
}

async fn last_logs(pid: &str) -> String {
    let ids = tokio::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={LABEL}.pid={pid}")])
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let Some(id) = ids.lines().next() else {
        return "(no container to show logs of)".into();
    };
    let logs = tokio::process::Command::new("docker")
        .args(["logs", "--tail", "40", id])
        .output()
        .await
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default();
    let _ = tokio::process::Command::new("docker")
        .args(["rm", "-f", id])
        .output()
        .await;
    format!("last log lines of the control plane:\n{logs}")
}

impl ControlPlane {
    /// The admin bearer token (for kubeconfigs handed to the CLI in tests).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A client with cluster-admin rights.
    pub fn admin_client(&self) -> Client {
        self.client_with_token(&self.admin_token)
    }

    /// An admin client that never retries a request by itself (kube's
    /// clients retry 429 answers, which is what a PodDisruptionBudget
    /// refusing an eviction returns).
    pub fn admin_client_without_retry(&self) -> Client {
        let mut config = self.config_with_token(&self.admin_token);
        config.default_retry = false;
        Client::try_from(config)
            .unwrap_or_else(|e| panic!("cannot build a client for {}: {e}", self.url))
    }

    /// A client authenticating with `token`.
    pub fn client_with_token(&self, token: &str) -> Client {
        Client::try_from(self.config_with_token(token))
            .unwrap_or_else(|e| panic!("cannot build a client for {}: {e}", self.url))
    }

    fn config_with_token(&self, token: &str) -> Config {
        let url = self
            .url
            .parse()
            .unwrap_or_else(|e| panic!("bad control-plane url {}: {e}", self.url));
        let mut config = Config::new(url);
        config.accept_invalid_certs = true;
        config.auth_info = AuthInfo {
            token: Some(token.to_string().into()),
            ..AuthInfo::default()
        };
        config.read_timeout = Some(Duration::from_secs(60));
        config
    }

    /// A client acting as ServiceAccount `name` in `namespace` (created if
    /// missing), through a short-lived token from the TokenRequest API.
    pub async fn service_account_client(&self, namespace: &str, name: &str) -> Client {
        let admin = self.admin_client();
        let accounts: Api<ServiceAccount> = Api::namespaced(admin, namespace);
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        match accounts.create(&PostParams::default(), &sa).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("cannot create ServiceAccount {namespace}/{name}: {e}"),
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let token = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name} failed: {e}"))
            .status
            .map(|s| s.token)
            .unwrap_or_default();
        self.client_with_token(&token)
    }
}

/// Creates a fresh namespace `<prefix>-<n>` on this binary's control plane.
pub async fn namespace(prefix: &str) -> TestNamespace {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let cp = control_plane();
    let client = cp.admin_client();
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{prefix}-{}-{n}", std::process::id() % 100_000);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("cannot create namespace {name}: {e}"));
    TestNamespace { name, client }
}

#[cfg(test)]
mod tests {
    /// Set in the child process of the test below: the file its watchdog
    /// creates once the child has exited.
    const CHILD_MARKER: &str = "BREAKFIX_TESTKIT_WATCHDOG_MARKER";

    #[test]
    fn the_watchdog_acts_once_its_process_has_exited() {
        if let Ok(marker) = std::env::var(CHILD_MARKER) {
            // The child: arm the watchdog and exit at once.
            super::on_exit(&["touch", &marker]).unwrap();
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("removed");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "testkit::tests::the_watchdog_acts_once_its_process_has_exited",
            ])
            .env(CHILD_MARKER, &marker)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !marker.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the watchdog did not act within 10s of its process exiting"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
