//! Claims between runs: a run holds a coordination.k8s.io Lease per
//! [`Claim`] of the experiment it runs, so two runs sharing a cluster (CI
//! jobs on one staging cluster, a game day beside a suite) never break, or
//! apply a baseline over, the same thing at once.
//!
//! The Leases live in `kube-system`, named `breakfix-<claim key>`
//! (`breakfix-ns-shop`, `breakfix-cluster-dns`), holder = the run id, with
//! the host, process id and start of the run in annotations and the run id
//! in the [`RUN_LABEL`] label. A claim is taken before the baseline is
//! applied, renewed every third of [`LEASE_DURATION`] while held and
//! deleted once the trial has recovered. A run that finds a claim held
//! waits for it (watching the Lease, bounded, with one message naming the
//! holder) or, when told not to wait, refuses. A claim left by a run that
//! crashed expires a lease duration after its last write, judged on the
//! cluster's clock alone: the API server stamps each write in the Lease's
//! managedFields, and says what time it is now when asked to create a
//! Lease in dry-run mode. The clocks of the holder's host and of this one
//! play no part, so a skewed clock on either can neither take a claim from
//! a run that still renews it nor keep a dead run's claim alive. A claim
//! this run has seen unchanged for a lease duration is taken over too (for
//! an API server that does not stamp writes). `breakfix cleanup` releases
//! the claims of the runs it cleans up after ([`release_run`]).
//!
//! Claims are taken in the order of their keys, so two runs that want the
//! same two claims never hold one each and wait for the other forever.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::fault::Claim;
use crate::kobj::explain;
use crate::vocab::duration::format_duration;
use crate::vocab::{MANAGED_LABEL, RUN_LABEL};

/// Where the Leases are: a namespace every cluster has.
pub const LEASE_NAMESPACE: &str = "kube-system";

/// How long a claim outlives the last renewal of a run that stopped
/// renewing it (crashed, killed, cut off from the cluster).
pub const LEASE_DURATION: Duration = Duration::from_secs(30);

/// How long a run waits for a claim another run holds, by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(600);

const HOST_ANNOTATION: &str = "breakfix.dev/host";
const PID_ANNOTATION: &str = "breakfix.dev/pid";
const STARTED_ANNOTATION: &str = "breakfix.dev/run-started";
const CLAIM_ANNOTATION: &str = "breakfix.dev/claim";

/// Errors taking, renewing or releasing claims.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another run holds the claim, and this run does not wait.
    #[error(
        "{claim} is claimed by {holder}; run again when it is done, or without --no-wait to wait for it"
    )]
    Held {
        /// The claim, as people read it (`namespace shop`).
        claim: String,
        /// Who holds it.
        holder: HolderInfo,
    },
    /// Another run still held the claim when the wait for it ran out.
    #[error(
        "{claim} was still claimed by {holder} after waiting {}; nothing of this experiment was applied",
        format_duration(*waited)
    )]
    StillHeld {
        /// The claim, as people read it.
        claim: String,
        /// Who holds it.
        holder: HolderInfo,
        /// How long this run waited.
        waited: Duration,
    },
    /// The run was stopped while it waited.
    #[error("stopped while waiting for {claim}")]
    Cancelled {
        /// The claim waited for.
        claim: String,
    },
    /// The API server refused a request about a Lease.
    #[error("lease {name} -n kube-system: {}", explain(source))]
    Api {
        /// The Lease.
        name: String,
        /// What the API server said.
        source: kube::Error,
    },
    /// The watch on a Lease failed.
    #[error(
        "watching lease {name} -n kube-system: {}",
        crate::kobj::explain_wait(source)
    )]
    Watch {
        /// The Lease.
        name: String,
        /// Why the watch failed.
        source: kube::runtime::wait::Error,
    },
}

/// Who holds a claim, as its Lease says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderInfo {
    /// The run id.
    pub run_id: String,
    /// The host that run runs on.
    pub host: Option<String>,
    /// Its process id on that host.
    pub pid: Option<String>,
    /// When that run started.
    pub started: Option<String>,
}

impl std::fmt::Display for HolderInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run {}", self.run_id)?;
        if let Some(host) = &self.host {
            write!(f, " on {host}")?;
        }
        if let Some(pid) = &self.pid {
            write!(f, " (pid {pid})")?;
        }
        if let Some(started) = &self.started {
            write!(f, ", started {started}")?;
        }
        Ok(())
    }
}

/// The run that takes claims.
#[derive(Debug, Clone)]
pub struct Claimant {
    /// The run id: the Leases' holder.
    pub run_id: String,
    /// This host's name.
    pub host: String,
    /// This process's id.
    pub pid: u32,
    /// When the run started.
    pub started: Timestamp,
}

impl Claimant {
    /// This process, running `run_id`.
    pub fn this_process(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            host: host_name(),
            pid: std::process::id(),
            started: Timestamp::now(),
        }
    }
}

/// The machine's host name (for the holder's annotations).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The Lease's name for a claim.
pub fn lease_name(claim: &Claim) -> String {
    format!("breakfix-{}", claim.key())
}

/// How long to wait for a claim someone else holds: `None` refuses at once.
pub type Wait = Option<Duration>;

/// Claims held by this run; renewed until [`Held::release`].
pub struct Held {
    client: Client,
    run_id: String,
    names: Vec<String>,
    stop: CancellationToken,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl Held {
    /// The Leases held, by name.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Stops renewing and deletes the Leases (those this run still holds).
    /// A Lease that cannot be deleted expires by itself.
    pub async fn release(mut self) {
        self.stop.cancel();
        if let Some(task) = self.renewer.take() {
            let _ = task.await;
        }
        let api: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        for name in &self.names {
            if let Err(e) = delete_if_ours(&api, name, &self.run_id).await {
                tracing::warn!("releasing claim: {e}");
            }
        }
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("run_id", &self.run_id)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Who holds each of `claims` now, other than `run_id` (expired Leases
/// are not held). For a refusal before anything runs.
pub async fn holders(
    client: &Client,
    claims: &[Claim],
    run_id: &str,
) -> Result<Vec<(Claim, HolderInfo)>, LeaseError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let mut out = Vec::new();
    for claim in sorted(claims) {
        let name = lease_name(&claim);
        let lease = api.get_opt(&name).await.map_err(|source| LeaseError::Api {
            name: name.clone(),
            source,
        })?;
        let Some(lease) = lease else { continue };
        let now = cluster_now(&api).await?;
        if let Some(holder) = live_holder(&lease, now)
            && holder.run_id != run_id
        {
            out.push((claim, holder));
        }
    }
    Ok(out)
}

/// Takes a Lease per claim, in key order, waiting up to `wait` for each
/// one another run holds (calling `note` once per claim waited for), and
/// starts renewing them. On any error the claims taken so far are released.
pub async fn acquire(
    client: &Client,
    claimant: &Claimant,
    claims: &[Claim],
    wait: Wait,
    cancel: &CancellationToken,
    mut note: impl FnMut(String),
) -> Result<Held, LeaseError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let stop = CancellationToken::new();
    let mut held = Held {
        client: client.clone(),
        run_id: claimant.run_id.clone(),
        names: Vec::new(),
        stop: stop.clone(),
        renewer: None,
    };
    for claim in sorted(claims) {
        match take(&api, claimant, &claim, wait, cancel, &mut note).await {
            Ok(name) => held.names.push(name),
            Err(e) => {
                held.release().await;
                return Err(e);
            }
        }
    }
    let names = held.names.clone();
    let run_id = claimant.run_id.clone();
    held.renewer = Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(LEASE_DURATION / 3);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            for name in &names {
                if let Err(e) = renew(&api, name, &run_id).await {
                    tracing::warn!("renewing claim: {e}");
                }
            }
        }
    }));
    Ok(held)
}

/// Deletes every Lease `run_id` holds (what `cleanup` does for a run that
/// crashed). Returns the names deleted.
pub async fn release_run(client: &Client, run_id: &str) -> Result<Vec<String>, LeaseError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let listed = api
        .list(&ListParams::default().labels(&format!("{RUN_LABEL}={run_id}")))
        .await
        .map_err(|source| LeaseError::Api {
            name: format!("-l {RUN_LABEL}={run_id}"),
            source,
        })?;
    let mut released = Vec::new();
    for lease in listed {
        let Some(name) = lease.metadata.name.clone() else {
            continue;
        };
        if delete_if_ours(&api, &name, run_id).await? {
            released.push(name);
        }
    }
    Ok(released)
}

fn sorted(claims: &[Claim]) -> Vec<Claim> {
    let mut by_key: BTreeMap<String, Claim> = BTreeMap::new();
    for claim in claims {
        by_key.entry(claim.key()).or_insert_with(|| claim.clone());
    }
    by_key.into_values().collect()
}

/// What one look at a Lease found.
enum Look {
    Taken,
    /// Someone else holds it: the Lease as seen.
    HeldBy(Box<Lease>, HolderInfo),
    /// Raced with another writer: look again.
    Again,
}

/// Takes one claim, waiting for it as allowed. Returns the Lease's name.
async fn take(
    api: &Api<Lease>,
    claimant: &Claimant,
    claim: &Claim,
    wait: Wait,
    cancel: &CancellationToken,
    note: &mut impl FnMut(String),
) -> Result<String, LeaseError> {
    let name = lease_name(claim);
    let started = Instant::now();
    // The version of the Lease last seen held, and since when it is
    // unchanged by this host's clock.
    let mut seen: Option<(String, Instant)> = None;
    let mut told = false;
    loop {
        let stale = seen
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= LEASE_DURATION);
        let (lease, holder) = match look(api, &name, claimant, claim, stale).await? {
            Look::Taken => return Ok(name),
            Look::Again => continue,
            Look::HeldBy(lease, holder) => (lease, holder),
        };
        let Some(limit) = wait else {
            return Err(LeaseError::Held {
                claim: claim.to_string(),
                holder,
            });
        };
        let waited = started.elapsed();
        if waited >= limit {
            return Err(LeaseError::StillHeld {
                claim: claim.to_string(),
                holder,
                waited,
            });
        }
        if !told {
            told = true;
            note(format!(
                "waiting for {claim}: claimed by {holder} (at most {}; a claim left by a run that stopped expires within {})",
                format_duration(limit),
                format_duration(LEASE_DURATION)
            ));
        }
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        if seen.as_ref().is_none_or(|(v, _)| *v != version) {
            seen = Some((version.clone(), Instant::now()));
        }
        let since = seen.as_ref().map_or_else(Instant::now, |(_, s)| *s);
        let until_stale = LEASE_DURATION.saturating_sub(since.elapsed());
        let until_limit = limit.saturating_sub(waited);
        let changed = await_condition(api.clone(), &name, move |l: Option<&Lease>| {
            l.is_none_or(|l| l.metadata.resource_version.as_deref() != Some(version.as_str()))
        });
        tokio::select! {
            _ = cancel.cancelled() => {
                return Err(LeaseError::Cancelled { claim: claim.to_string() });
            }
            r = tokio::time::timeout(until_stale.min(until_limit) + Duration::from_millis(50), changed) => {
                if let Ok(Err(source)) = r {
                    return Err(LeaseError::Watch { name, source });
                }
            }
        }
    }
}

/// Looks at the Lease once and takes it if it is free, expired, stale
/// (unchanged for a lease duration, as `stale` says) or already ours.
async fn look(
    api: &Api<Lease>,
    name: &str,
    claimant: &Claimant,
    claim: &Claim,
    stale: bool,
) -> Result<Look, LeaseError> {
    let api_error = |source| LeaseError::Api {
        name: name.to_string(),
        source,
    };
    let Some(current) = api.get_opt(name).await.map_err(api_error)? else {
        let lease = new_lease(name, claimant, claim, 0);
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Look::Taken),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Look::Again),
            Err(source) => Err(api_error(source)),
        };
    };
    let now = cluster_now(api).await?;
    let holder = live_holder(&current, now);
    let ours = holder.as_ref().is_some_and(|h| h.run_id == claimant.run_id);
    if let Some(holder) = holder
        && !ours
        && !stale
    {
        return Ok(Look::HeldBy(Box::new(current), holder));
    }
    let transitions = current
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0);
    let mut lease = new_lease(name, claimant, claim, transitions + i32::from(!ours));
    lease.metadata.resource_version = current.metadata.resource_version.clone();
    if !ours
        && let Some(gone) = current
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
    {
        tracing::info!(
            lease = name,
            previous = gone,
            "taking over an expired claim"
        );
    }
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(Look::Taken),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Look::Again),
        Err(source) => Err(api_error(source)),
    }
}

fn new_lease(name: &str, claimant: &Claimant, claim: &Claim, transitions: i32) -> Lease {
    let now = MicroTime(Timestamp::now());
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(LEASE_NAMESPACE.to_string()),
            labels: Some(BTreeMap::from([
                (MANAGED_LABEL.to_string(), "breakfix".to_string()),
                (RUN_LABEL.to_string(), claimant.run_id.clone()),
            ])),
            annotations: Some(BTreeMap::from([
                (HOST_ANNOTATION.to_string(), claimant.host.clone()),
                (PID_ANNOTATION.to_string(), claimant.pid.to_string()),
                (STARTED_ANNOTATION.to_string(), claimant.started.to_string()),
                (CLAIM_ANNOTATION.to_string(), claim.to_string()),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(claimant.run_id.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

/// What time it is on the cluster: the creation time the API server
/// stamps on a Lease it is asked to create in dry-run mode (nothing is
/// stored). Whole seconds, as Kubernetes stamps objects. `None` when the
/// answer carries no time: expiry is then left to the watch on the Lease.
async fn cluster_now(api: &Api<Lease>) -> Result<Option<Timestamp>, LeaseError> {
    let probe = Lease {
        metadata: ObjectMeta {
            generate_name: Some("breakfix-clock-".into()),
            ..ObjectMeta::default()
        },
        ..Lease::default()
    };
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let created = api
        .create(&params, &probe)
        .await
        .map_err(|source| LeaseError::Api {
            name: "breakfix-clock-… (dry run)".into(),
            source,
        })?;
    Ok(created.metadata.creation_timestamp.map(|Time(t)| t))
}

/// When the cluster last saw the Lease written: the newest time the API
/// server stamped in its managedFields, on the cluster's clock.
fn last_written(lease: &Lease) -> Option<Timestamp> {
    lease
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|f| f.time.as_ref().map(|Time(t)| *t))
        .chain(lease.metadata.creation_timestamp.as_ref().map(|Time(t)| *t))
        .max()
}

/// The holder of a Lease, unless it has none or, by the cluster's clock
/// (`cluster_now`), it was last written more than its duration ago. The
/// renew time the holder wrote is its own clock's, and is not trusted.
fn live_holder(lease: &Lease, cluster_now: Option<Timestamp>) -> Option<HolderInfo> {
    let spec = lease.spec.as_ref()?;
    let run_id = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    let duration = spec
        .lease_duration_seconds
        .map_or(LEASE_DURATION, |s| Duration::from_secs(s.max(0) as u64));
    if let (Some(now), Some(written)) = (cluster_now, last_written(lease)) {
        // Stamps are whole seconds: allow one.
        let age = now.duration_since(written);
        if age.as_secs() > 0 && age.unsigned_abs() > duration + Duration::from_secs(1) {
            return None;
        }
    }
    let note = |key: &str| {
        lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key).cloned())
    };
    Some(HolderInfo {
        run_id,
        host: note(HOST_ANNOTATION),
        pid: note(PID_ANNOTATION),
        started: note(STARTED_ANNOTATION),
    })
}

/// Moves the renew time of a Lease this run holds. A Lease another run
/// took over (this run was cut off for longer than a lease duration) is
/// left alone, and said so.
async fn renew(api: &Api<Lease>, name: &str, run_id: &str) -> Result<(), LeaseError> {
    let api_error = |source| LeaseError::Api {
        name: name.to_string(),
        source,
    };
    let Some(mut lease) = api.get_opt(name).await.map_err(api_error)? else {
        tracing::warn!(lease = name, "a claim this run holds is gone");
        return Ok(());
    };
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(run_id) {
        tracing::warn!(
            lease = name,
            holder = spec.holder_identity.as_deref().unwrap_or(""),
            "a claim this run held was taken over"
        );
        return Ok(());
    }
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        // Someone wrote it between the get and now; the next tick sees who.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(api_error(source)),
    }
}

/// Deletes the Lease if `run_id` holds it (whether or not it expired).
/// Returns whether it was deleted.
async fn delete_if_ours(api: &Api<Lease>, name: &str, run_id: &str) -> Result<bool, LeaseError> {
    let api_error = |source| LeaseError::Api {
        name: name.to_string(),
        source,
    };
    let Some(lease) = api.get_opt(name).await.map_err(api_error)? else {
        return Ok(false);
    };
    let holder = lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref());
    if holder != Some(run_id) {
        return Ok(false);
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: lease.metadata.uid.clone(),
            resource_version: lease.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(source) => Err(api_error(source)),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::fault::SharedResource;

    /// The cluster's clock in these tests.
    fn cluster_clock() -> Timestamp {
        "2026-12-01T13:00:00Z".parse().unwrap()
    }

    /// A Lease the cluster last saw written `written_ago` seconds ago, whose
    /// holder's clock put its renew time `renewed_ago` seconds ago.
    fn lease(holder: Option<&str>, written_ago: i64, renewed_ago: i64, duration: i32) -> Lease {
        let ago = |s: i64| cluster_clock() - jiff::SignedDuration::from_secs(s);
        Lease {
            metadata: ObjectMeta {
                annotations: Some(BTreeMap::from([(
                    HOST_ANNOTATION.to_string(),
                    "ci-7".to_string(),
                )])),
                creation_timestamp: Some(Time(ago(written_ago + 600))),
                managed_fields: Some(vec![
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
                        manager: Some("breakfix".into()),
                        time: Some(Time(ago(written_ago))),
                        ..Default::default()
                    },
                ]),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: Some(duration),
                renew_time: Some(MicroTime(ago(renewed_ago))),
                ..LeaseSpec::default()
            }),
        }
    }

    #[rstest]
    #[case::written_just_now(Some("run-a"), 1, 1, 30, true)]
    #[case::written_longer_ago_than_its_duration(Some("run-a"), 45, 45, 30, false)]
    #[case::its_own_short_duration(Some("run-a"), 5, 5, 2, false)]
    #[case::renewed_by_a_holder_whose_clock_is_an_hour_behind(Some("run-a"), 1, 3600, 30, true)]
    #[case::dead_though_its_holders_clock_put_the_renewal_ahead(
        Some("run-a"),
        45,
        -3600,
        30,
        false
    )]
    #[case::no_holder(None, 1, 1, 30, false)]
    #[case::empty_holder(Some(""), 1, 1, 30, false)]
    fn a_lease_is_held_while_the_cluster_sees_it_renewed(
        #[case] holder: Option<&str>,
        #[case] written_ago: i64,
        #[case] renewed_ago: i64,
        #[case] duration: i32,
        #[case] held: bool,
    ) {
        let got = live_holder(
            &lease(holder, written_ago, renewed_ago, duration),
            Some(cluster_clock()),
        );
        assert_eq!(got.is_some(), held, "{got:?}");
        if let Some(h) = got {
            assert_eq!(h.host.as_deref(), Some("ci-7"));
        }
    }

    #[test]
    fn claims_are_taken_in_key_order_once_each() {
        let claims = [
            Claim::Shared(SharedResource::Nodes),
            Claim::Namespace("shop".into()),
            Claim::Shared(SharedResource::ClusterDns),
            Claim::Namespace("shop".into()),
        ];
        let names: Vec<String> = sorted(&claims).iter().map(lease_name).collect();
        assert_eq!(
            names,
            ["breakfix-cluster-dns", "breakfix-nodes", "breakfix-ns-shop"]
        );
    }

    #[test]
    fn the_holder_is_named_with_host_pid_and_start() {
        let holder = HolderInfo {
            run_id: "20261201t1300-1a2b".into(),
            host: Some("ci-7".into()),
            pid: Some("4242".into()),
            started: Some("2026-12-01T13:00:00Z".into()),
        };
        assert_eq!(
            holder.to_string(),
            "run 20261201t1300-1a2b on ci-7 (pid 4242), started 2026-12-01T13:00:00Z"
        );
    }
}
