//! `api-canary`: every `--interval`, list one `--resource` (limit 1, metadata
//! only) in the pod's namespace with the pod's ServiceAccount, and count 2xx
//! vs 403 Forbidden vs anything else. Ready while the last `--ready-after`
//! calls succeeded, so deleting the canary's RoleBinding flips Ready to false
//! and `/status` shows `forbidden` climbing with `last_error` =
//! `403 Forbidden: configmaps is forbidden: User "system:serviceaccount:..."`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use tokio_util::sync::CancellationToken;

use super::{Prepared, fmt_duration};
use crate::cli::ApiCanaryArgs;
use crate::error::Error;
use crate::server::Probes;
use crate::state::{ReadyPolicy, Stats};

/// Where Kubernetes mounts the pod's namespace.
const SA_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Build the api-canary mode.
pub fn prepare(args: ApiCanaryArgs, shutdown: CancellationToken) -> Result<Prepared, Error> {
    let resource = args.resource.trim().to_owned();
    if resource.is_empty() || resource.contains('/') {
        return Err(Error::Config(format!(
            "--resource {resource:?} must be a plural resource name like configmaps"
        )));
    }
    let (group, version) = match args.api_version.split_once('/') {
        Some((g, v)) if !g.is_empty() && !v.is_empty() => (g.to_owned(), v.to_owned()),
        None if !args.api_version.is_empty() => (String::new(), args.api_version.clone()),
        _ => {
            return Err(Error::Config(format!(
                "--api-version {:?} must be v1 or group/version",
                args.api_version
            )));
        }
    };
    let api_resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(&group, &version, ""), &resource);
    let config = serde_json::json!({
        "resource": resource,
        "api_version": args.api_version,
        "namespace": args.namespace,
        "interval": fmt_duration(args.interval),
        "timeout": fmt_duration(args.timeout),
        "ready_after": args.ready_after,
        "ready_max_latency": args.latency.ready_max_latency.map(fmt_duration),
        "ready_latency_percentile": args.latency.ready_latency_percentile,
    });
    let stats = Arc::new(
        Stats::new(
            "api-canary",
            args.common.window,
            ReadyPolicy::LastN {
                n: args.ready_after,
            },
            config,
        )
        .with_latency_gate(args.latency.gate()),
    );
    let canary = Canary {
        api_resource,
        namespace: args.namespace.clone(),
        interval: args.interval,
        timeout: args.timeout,
        stats: stats.clone(),
    };
    Ok(Prepared {
        stats,
        probes: Probes::default(),
        record_requests: false,
        run: Box::pin(canary.run(shutdown)),
    })
}

struct Canary {
    api_resource: ApiResource,
    namespace: Option<String>,
    interval: Duration,
    timeout: Duration,
    stats: Arc<Stats>,
}

/// How one call ended.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{code} {reason}: {message}")]
    Status {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("{0}")]
    Transport(String),
    #[error("timed out after {0}")]
    Timeout(String),
}

impl CallError {
    /// `forbidden` for 403, `other` for anything else (the counters' kinds).
    fn kind(&self) -> &'static str {
        match self {
            CallError::Status { code: 403, .. } => "forbidden",
            _ => "other",
        }
    }

    /// The HTTP status, 0 when there was none.
    fn code(&self) -> u16 {
        match self {
            CallError::Status { code, .. } => *code,
            _ => 0,
        }
    }
}

/// An error with its sources, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let part = src.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        cur = src.source();
    }
    s
}

impl Canary {
    async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let mut api: Option<Api<DynamicObject>> = None;
        let mut ticker = super::ticker(self.interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {}
            }
            let start = Instant::now();
            let attempt = async {
                let api = match &api {
                    Some(a) => a.clone(),
                    None => {
                        let a = self.connect().await?;
                        api = Some(a.clone());
                        a
                    }
                };
                self.call(&api).await
            };
            let result = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = tokio::time::timeout(self.timeout, attempt) => r
                    .unwrap_or_else(|_| Err(CallError::Timeout(fmt_duration(self.timeout)))),
            };
            let latency = start.elapsed();
            match result {
                Ok(()) => {
                    self.stats.gauge("last_status", 200);
                    self.stats.success(latency);
                }
                Err(e) => {
                    self.stats.gauge("last_status", u64::from(e.code()));
                    self.stats.failure(latency, e.kind(), e.to_string());
                }
            }
        }
    }

    /// Build the client (in-cluster ServiceAccount, else kubeconfig) and pick
    /// the namespace: --namespace, else the ServiceAccount's, else the
    /// kubeconfig context's.
    async fn connect(&self) -> Result<Api<DynamicObject>, CallError> {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| CallError::Transport(format!("kube client: {}", chain(&e))))?;
        let namespace = match &self.namespace {
            Some(ns) => ns.clone(),
            None => match std::fs::read_to_string(SA_NAMESPACE_FILE) {
                Ok(ns) if !ns.trim().is_empty() => ns.trim().to_owned(),
                _ => client.default_namespace().to_owned(),
            },
        };
        tracing::info!(
            "listing {} in namespace {namespace}",
            self.api_resource.plural
        );
        Ok(Api::namespaced_with(client, &namespace, &self.api_resource))
    }

    async fn call(&self, api: &Api<DynamicObject>) -> Result<(), CallError> {
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) => Err(CallError::Status {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            }),
            Err(e) => Err(CallError::Transport(chain(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_is_its_own_kind() {
        let e = CallError::Status {
            code: 403,
            reason: "Forbidden".into(),
            message: "configmaps is forbidden".into(),
        };
        assert_eq!(e.kind(), "forbidden");
        assert_eq!(e.code(), 403);
        assert_eq!(e.to_string(), "403 Forbidden: configmaps is forbidden");
        assert_eq!(CallError::Timeout("5s".into()).kind(), "other");
        assert_eq!(CallError::Transport("connection refused".into()).code(), 0);
    }
}
