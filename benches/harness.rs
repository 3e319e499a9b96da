//! Benchmark tools that need the library and a real cluster (driven by
//! scripts/bench.sh, results in BENCHMARKS.md). Not a timed test: it
//! measures and prints numbers; nothing here passes or fails on speed.
//!
//! ```text
//! cargo bench --bench harness -- latency   --kubeconfig K --context C --samples 200 --out latency.json
//! cargo bench --bench harness -- reference --kubeconfig K --context C --namespace NS --deployment web --out rounds.jsonl
//! ```
//!
//! `latency` measures the harness's own latency: the time from a failure
//! signal existing in the cluster to breakfix's detector (`watch_pod_signals`
//! and `merged`, exactly what a trial runs) reporting it. It writes the signal
//! itself, with a client clock on the same host as the kind cluster, so the
//! signal's moment of existence is bracketed by the write's send and its
//! acknowledgement (sub-millisecond timestamps, unlike the cluster's own
//! second-precision ones). A bare `kube` watcher on the same objects runs
//! beside breakfix's, so the API server's delivery time and breakfix's own
//! processing can be told apart. Two kinds of signal alternate:
//!
//! - an events.k8s.io/v1 Event (`reason: BackOff`, `Back-off pulling image`)
//!   about a pod, which breakfix reads as ImagePullBackOff;
//! - a pod whose container status is patched to `waiting:
//!   ImagePullBackOff` (the pod carries a scheduling gate, so no scheduler
//!   or kubelet ever touches it).
//!
//! `reference` records, from watches of its own, how long Kubernetes itself
//! took in one image-typo round: the Deployment's image patched → a pod in
//! ErrImagePull/ImagePullBackOff (its status or the kubelet's Event) → the
//! image patched back → the Deployment steady again. The bench subtracts these from a tool's wall time to get
//! the tool's overhead beyond Kubernetes' own timing.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use breakfix::baseline::steady::deployment_verdict;
use breakfix::detect::{Scope, merged, watch_pod_signals};
use breakfix::vocab::SignalKind;
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;

/// Bad arguments or a cluster that cannot be reached.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("{0}")]
    Usage(String),
    #[error("cluster: {0}")]
    Cluster(#[from] breakfix::cluster::ClusterError),
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

struct Args {
    command: String,
    kubeconfig: Option<PathBuf>,
    context: String,
    samples: usize,
    namespace: String,
    deployment: String,
    out: Option<PathBuf>,
    rounds: usize,
}

fn parse_args() -> Result<Args, BenchError> {
    // `cargo bench` passes `--bench`; ignore it.
    let mut raw = std::env::args().skip(1).filter(|a| a != "--bench");
    let command = raw
        .next()
        .ok_or_else(|| BenchError::Usage("usage: harness latency|reference [flags]".into()))?;
    let mut args = Args {
        command,
        kubeconfig: None,
        context: "kind-breakfix".into(),
        samples: 200,
        namespace: "breakfix-bench".into(),
        deployment: "web".into(),
        out: None,
        rounds: 1,
    };
    while let Some(flag) = raw.next() {
        let mut value = || {
            raw.next()
                .ok_or_else(|| BenchError::Usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--kubeconfig" => args.kubeconfig = Some(value()?.into()),
            "--context" => args.context = value()?,
            "--samples" => {
                args.samples = value()?
                    .parse()
                    .map_err(|e| BenchError::Usage(format!("--samples: {e}")))?
            }
            "--rounds" => {
                args.rounds = value()?
                    .parse()
                    .map_err(|e| BenchError::Usage(format!("--rounds: {e}")))?
            }
            "--namespace" => args.namespace = value()?,
            "--deployment" => args.deployment = value()?,
            "--out" => args.out = Some(value()?.into()),
            other => return Err(BenchError::Usage(format!("unknown flag {other}"))),
        }
    }
    Ok(args)
}

fn main() {
    let result = parse_args().and_then(|args| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(dispatch(args))
    });
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(2);
    }
}

async fn dispatch(args: Args) -> Result<(), BenchError> {
    let client =
        breakfix::cluster::client_for_context(args.kubeconfig.as_deref(), &args.context).await?;
    match args.command.as_str() {
        "latency" => latency(&client, &args).await,
        "reference" => reference(&client, &args).await,
        other => Err(BenchError::Usage(format!("unknown command {other}"))),
    }
}

// ---------------------------------------------------------------- latency

/// One injected signal and when each party saw it.
#[derive(Debug, serde::Serialize)]
struct Sample {
    source: &'static str,
    object: String,
    /// Client clock right before the write that creates the signal.
    sent: Timestamp,
    /// Client clock when the API server acknowledged the write.
    acked: Timestamp,
    /// A bare kube watcher received the object in its signalling state.
    reference: Option<Timestamp>,
    /// breakfix's detector reported the observation (`Observation.seen_at`).
    breakfix: Option<Timestamp>,
    /// The signal kind breakfix reported.
    kind: Option<SignalKind>,
}

fn ms(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64() * 1000.0
}

async fn fresh_namespace(client: &Client, name: &str) -> Result<(), BenchError> {
    let api: Api<Namespace> = Api::all(client.clone());
    if api.get_opt(name).await?.is_some() {
        let _ = api.delete(name, &DeleteParams::default()).await;
        let gone = kube::runtime::wait::await_condition(
            api.clone(),
            name,
            kube::runtime::wait::conditions::is_deleted(""),
        );
        let _ = tokio::time::timeout(Duration::from_secs(120), gone).await;
    }
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "breakfix-bench"}}
    }))
    .map_err(|e| BenchError::Other(e.to_string()))?;
    for _ in 0..120 {
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tokio::time::sleep(Duration::from_secs(1)).await
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(BenchError::Other(format!(
        "namespace {name} never finished terminating"
    )))
}

async fn latency(client: &Client, args: &Args) -> Result<(), BenchError> {
    let ns = args.namespace.as_str();
    fresh_namespace(client, ns).await?;
    let scope = Scope::namespace(ns);

    // breakfix's detector, as a trial runs it.
    let (bf_tx, mut bf_rx) = mpsc::unbounded_channel();
    let detector = merged(vec![
        watch_pod_signals(client, &scope, HashMap::new()).boxed(),
    ]);
    let bf_task = tokio::spawn(async move {
        futures::pin_mut!(detector);
        while let Some(item) = detector.next().await {
            if let Ok(obs) = item {
                let name = obs
                    .object
                    .split_once('/')
                    .map(|(_, n)| n.to_string())
                    .unwrap_or_default();
                let _ = bf_tx.send((name, obs.seen_at, obs.kind));
            }
        }
    });

    // The reference: bare watchers, no classification beyond the minimum.
    let (ref_tx, mut ref_rx) = mpsc::unbounded_channel();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let events: Api<EventV1> = Api::namespaced(client.clone(), ns);
    let pod_tx = ref_tx.clone();
    let ref_pods = tokio::spawn(async move {
        let stream = watcher(pods, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        while let Ok(Some(pod)) = stream.try_next().await {
            let waiting = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.state
                            .as_ref()
                            .and_then(|s| s.waiting.as_ref())
                            .and_then(|w| w.reason.as_deref())
                            == Some("ImagePullBackOff")
                    })
                });
            if waiting {
                let _ = pod_tx.send((pod.name_any(), Timestamp::now()));
            }
        }
    });
    let ref_events = tokio::spawn(async move {
        let stream = watcher(events, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        while let Ok(Some(ev)) = stream.try_next().await {
            let about = ev
                .regarding
                .as_ref()
                .and_then(|r| r.name.clone())
                .unwrap_or_default();
            let _ = ref_tx.send((about, Timestamp::now()));
        }
    });
    // Let every watch finish its initial list before the first signal.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let events: Api<EventV1> = Api::namespaced(client.clone(), ns);
    let mut samples = Vec::with_capacity(args.samples);
    let mut seen_bf: HashMap<String, (Timestamp, SignalKind)> = HashMap::new();
    let mut seen_ref: HashMap<String, Timestamp> = HashMap::new();
    for i in 0..args.samples {
        let source = if i % 2 == 0 { "event" } else { "podStatus" };
        let object = format!("bench-{i:04}");
        if source == "podStatus" {
            // The pod exists first (not a signal); only the status patch is.
            pods.create(&PostParams::default(), &gated_pod(&object))
                .await?;
        }
        let sent = Timestamp::now();
        match source {
            "event" => {
                events
                    .create(&PostParams::default(), &backoff_event(&object, ns, sent))
                    .await?;
            }
            _ => {
                pods.patch_status(
                    &object,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"containerStatuses": [{
                        "name": "app", "image": "breakfix/workload:0.1.00", "imageID": "",
                        "ready": false, "restartCount": 0,
                        "state": {"waiting": {"reason": "ImagePullBackOff",
                            "message": "Back-off pulling image \"breakfix/workload:0.1.00\""}}
                    }]}})),
                )
                .await?;
            }
        }
        let acked = Timestamp::now();
        let deadline = Instant::now() + Duration::from_secs(10);
        while (!seen_bf.contains_key(&object) || !seen_ref.contains_key(&object))
            && Instant::now() < deadline
        {
            tokio::select! {
                Some((name, at, kind)) = bf_rx.recv() => { seen_bf.entry(name).or_insert((at, kind)); }
                Some((name, at)) = ref_rx.recv() => { seen_ref.entry(name).or_insert(at); }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
        let bf = seen_bf.get(&object).copied();
        samples.push(Sample {
            source,
            reference: seen_ref.get(&object).copied(),
            breakfix: bf.map(|(at, _)| at),
            kind: bf.map(|(_, k)| k),
            object,
            sent,
            acked,
        });
        // Space the injections so each is measured on a quiet watch.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bf_task.abort();
    ref_pods.abort();
    ref_events.abort();
    let _ = Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await;

    let summary = summarize(&samples);
    let doc = json!({"samples": samples, "summary": summary});
    let text = serde_json::to_string_pretty(&doc).map_err(|e| BenchError::Other(e.to_string()))?;
    match &args.out {
        Some(path) => std::fs::write(path, text + "\n")?,
        None => println!("{text}"),
    }
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    Ok(())
}

fn gated_pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {
            "schedulingGates": [{"name": "breakfix.dev/bench"}],
            "containers": [{"name": "app", "image": "breakfix/workload:0.1.00"}]
        }
    }))
    .expect("a valid pod")
}

fn backoff_event(pod: &str, ns: &str, at: Timestamp) -> EventV1 {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{pod}.bench")},
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "reportingController": "breakfix.dev/bench",
        "reportingInstance": "bench",
        "action": "Pulling",
        "reason": "BackOff",
        "type": "Normal",
        "note": "Back-off pulling image \"breakfix/workload:0.1.00\"",
        "regarding": {"kind": "Pod", "namespace": ns, "name": pod, "apiVersion": "v1"}
    }))
    .expect("a valid event")
}

/// Nearest-rank percentiles of a list of milliseconds.
fn stats(mut v: Vec<f64>) -> serde_json::Value {
    if v.is_empty() {
        return json!(null);
    }
    v.sort_by(f64::total_cmp);
    let pick = |p: f64| {
        let rank = (p * v.len() as f64).ceil() as usize;
        (v[rank.clamp(1, v.len()) - 1] * 100.0).round() / 100.0
    };
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    json!({
        "n": v.len(), "min": pick(0.0), "p50": pick(0.5), "p90": pick(0.9),
        "p95": pick(0.95), "p99": pick(0.99), "max": pick(1.0),
        "mean": (mean * 100.0).round() / 100.0,
    })
}

fn summarize(samples: &[Sample]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for source in ["all", "event", "podStatus"] {
        let chosen: Vec<&Sample> = samples
            .iter()
            .filter(|s| source == "all" || s.source == source)
            .collect();
        let bf: Vec<&Sample> = chosen
            .iter()
            .copied()
            .filter(|s| s.breakfix.is_some())
            .collect();
        out.insert(
            source.into(),
            json!({
                "injected": chosen.len(),
                "missed": chosen.len() - bf.len(),
                // Upper bound: the signal existed no earlier than the write was sent.
                "fromSendMs": stats(bf.iter().filter_map(|s| Some(ms(s.sent, s.breakfix?))).collect()),
                // Lower bound: it existed no later than the write was acknowledged.
                "fromAckMs": stats(bf.iter().filter_map(|s| Some(ms(s.acked, s.breakfix?))).collect()),
                "writeRoundTripMs": stats(chosen.iter().map(|s| ms(s.sent, s.acked)).collect()),
                "referenceFromSendMs": stats(chosen.iter().filter_map(|s| Some(ms(s.sent, s.reference?))).collect()),
                // breakfix's own processing beyond the API server's delivery.
                "breakfixMinusReferenceMs": stats(bf.iter().filter_map(|s| Some(ms(s.reference?, s.breakfix?))).collect()),
            }),
        );
    }
    serde_json::Value::Object(out)
}

// ---------------------------------------------------------------- reference

/// Kubernetes' own timing of one image-typo round, from watches of its own.
#[derive(Debug, Default, serde::Serialize)]
struct Round {
    /// The Deployment's image changed away from the healthy one.
    patched: Option<Timestamp>,
    /// A pod first showed ErrImagePull or ImagePullBackOff (in its status
    /// or in an Event about it, whichever came first).
    signal: Option<Timestamp>,
    /// The image was changed back.
    restored: Option<Timestamp>,
    /// The Deployment was steady again (the baseline's rule).
    steady: Option<Timestamp>,
}

async fn reference(client: &Client, args: &Args) -> Result<(), BenchError> {
    let ns = args.namespace.as_str();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let live = deployments.get(&args.deployment).await?;
    if !deployment_verdict(&live).0 {
        return Err(BenchError::Other(format!(
            "deployment/{} -n {ns} is not steady; apply the baseline first",
            args.deployment
        )));
    }
    let image = |d: &Deployment| {
        d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default()
    };
    let healthy_image = image(&live);
    let selector = live
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();

    enum Update {
        Deployment(Deployment),
        Pod(Pod),
        Event(k8s_openapi::api::core::v1::Event),
    }
    let dcfg = watcher::Config::default().fields(&format!("metadata.name={}", args.deployment));
    let d_stream = watcher(deployments, dcfg)
        .default_backoff()
        .applied_objects()
        .map_ok(Update::Deployment);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let p_stream = watcher(pods, watcher::Config::default().labels(&selector))
        .default_backoff()
        .applied_objects()
        .map_ok(Update::Pod);
    // The kubelet reports a failed pull as an Event (reason Failed/BackOff)
    // as well as in the pod's status; whichever comes first is the signal.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    let e_stream = watcher(events, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .map_ok(Update::Event);
    let updates =
        futures::stream::select_all([d_stream.boxed(), p_stream.boxed(), e_stream.boxed()]);
    futures::pin_mut!(updates);

    let mut out: Box<dyn std::io::Write> = match &args.out {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => Box::new(std::io::stdout()),
    };
    // The reference is listening: the bench may start the tool now.
    eprintln!(
        "reference: watching deployment/{} -n {ns} (healthy image {healthy_image})",
        args.deployment
    );
    let mut round = Round::default();
    let mut done = 0;
    while let Some(update) = updates
        .try_next()
        .await
        .map_err(|e| BenchError::Other(e.to_string()))?
    {
        let now = Timestamp::now();
        match update {
            Update::Deployment(d) => {
                let current = image(&d);
                if round.patched.is_none() && current != healthy_image {
                    round.patched = Some(now);
                } else if round.patched.is_some()
                    && round.restored.is_none()
                    && current == healthy_image
                {
                    round.restored = Some(now);
                }
                if round.restored.is_some() && deployment_verdict(&d).0 {
                    round.steady = Some(now);
                    writeln!(out, "{}", serde_json::to_string(&round).unwrap_or_default())?;
                    out.flush()?;
                    round = Round::default();
                    done += 1;
                    if done >= args.rounds {
                        return Ok(());
                    }
                }
            }
            Update::Pod(p) => {
                let pulling = p
                    .status
                    .iter()
                    .flat_map(|s| s.container_statuses.iter().flatten())
                    .any(|c| {
                        matches!(
                            c.state
                                .as_ref()
                                .and_then(|s| s.waiting.as_ref())
                                .and_then(|w| w.reason.as_deref()),
                            Some("ErrImagePull" | "ImagePullBackOff")
                        )
                    });
                if pulling && round.patched.is_some() && round.signal.is_none() {
                    round.signal = Some(now);
                }
            }
            Update::Event(e) => {
                let message = e.message.as_deref().unwrap_or_default();
                let pulling = matches!(e.reason.as_deref(), Some("Failed" | "BackOff"))
                    && (message.contains("ErrImagePull")
                        || message.contains("Failed to pull image")
                        || message.contains("Back-off pulling image"));
                let about_ours = e
                    .involved_object
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&format!("{}-", args.deployment)));
                if pulling && about_ours && round.patched.is_some() && round.signal.is_none() {
                    round.signal = Some(now);
                }
            }
        }
    }
    Err(BenchError::Other("the watches ended".into()))
}
