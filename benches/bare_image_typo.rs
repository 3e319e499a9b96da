//! The image-typo experiment written directly against kube-rs, with nothing
//! else: the memory floor of breakfix's stack, for scripts/bench.sh.
//!
//! ```text
//! cargo bench --bench bare_image_typo -- --kubeconfig K --context C \
//!     --namespace NS --deployment web --container web --image breakfix/workload:0.1.00
//! ```
//!
//! It waits for the Deployment to be steady, sets the container's image to
//! the bad one, waits (watching pods) for ErrImagePull or ImagePullBackOff,
//! sets the image back and waits (watching the Deployment) until it is steady
//! again. Same client, TLS stack, async runtime and release profile as
//! breakfix, but no experiment files, command line, journal, reports or
//! progress output. No tool built on this stack can use less memory for the
//! same experiment, so the bench runs it next to breakfix and Chaos Toolkit
//! to show how much of breakfix's memory is the stack itself.

use std::path::PathBuf;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Config};
use serde_json::json;

/// How long each wait may take before the run gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

struct Args {
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    namespace: String,
    deployment: String,
    container: String,
    image: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        kubeconfig: None,
        context: None,
        namespace: "default".into(),
        deployment: "web".into(),
        container: "web".into(),
        image: String::new(),
    };
    // `cargo bench` passes `--bench`; ignore it.
    let mut raw = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(flag) = raw.next() {
        let value = raw.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--kubeconfig" => args.kubeconfig = Some(value.into()),
            "--context" => args.context = Some(value),
            "--namespace" => args.namespace = value,
            "--deployment" => args.deployment = value,
            "--container" => args.container = value,
            "--image" => args.image = value,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.image.is_empty() {
        return Err("--image (the bad image to set) is required".into());
    }
    Ok(args)
}

fn main() {
    let result = parse_args().and_then(|args| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(run(args))
    });
    match result {
        Ok(()) => println!("bare image typo: detected and recovered"),
        Err(e) => {
            eprintln!("bare image typo: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let client = client(&args).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &args.namespace);
    let pods: Api<Pod> = Api::namespaced(client, &args.namespace);
    let good = current_image(
        &deployments.get(&args.deployment).await.map_err(api)?,
        &args,
    )?;

    within("the Deployment to be steady", steady(&deployments, &args)).await?;
    set_image(&deployments, &args, &args.image).await?;
    let detected = within(
        "ErrImagePull or ImagePullBackOff",
        image_pull_failure(&pods),
    )
    .await;
    let restored = set_image(&deployments, &args, &good).await;
    detected?;
    restored?;
    within("the Deployment to recover", steady(&deployments, &args)).await
}

async fn client(args: &Args) -> Result<Client, String> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None => Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| e.to_string())?;
    Client::try_from(config).map_err(api)
}

fn api(e: kube::Error) -> String {
    format!("API: {e}")
}

async fn within<T>(what: &str, wait: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(PHASE_TIMEOUT, wait)
        .await
        .map_err(|_| format!("gave up waiting for {what} after {PHASE_TIMEOUT:?}"))?
}

fn current_image(deployment: &Deployment, args: &Args) -> Result<String, String> {
    deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref())
        .and_then(|pod| pod.containers.iter().find(|c| c.name == args.container))
        .and_then(|c| c.image.clone())
        .ok_or_else(|| format!("no container {} with an image", args.container))
}

async fn set_image(deployments: &Api<Deployment>, args: &Args, image: &str) -> Result<(), String> {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": args.container, "image": image}
    ]}}}});
    deployments
        .patch(
            &args.deployment,
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
        .map(drop)
        .map_err(api)
}

async fn image_pull_failure(pods: &Api<Pod>) -> Result<(), String> {
    let mut stream = watcher(pods.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    while let Some(pod) = stream.try_next().await.map_err(|e| e.to_string())? {
        let failing = pod
            .status
            .iter()
            .flat_map(|status| status.container_statuses.iter().flatten())
            .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
            .any(|reason| reason == "ErrImagePull" || reason == "ImagePullBackOff");
        if failing {
            return Ok(());
        }
    }
    Err("the pod watch ended".into())
}

async fn steady(deployments: &Api<Deployment>, args: &Args) -> Result<(), String> {
    let config = watcher::Config::default().fields(&format!("metadata.name={}", args.deployment));
    let mut stream = watcher(deployments.clone(), config)
        .applied_objects()
        .boxed();
    while let Some(deployment) = stream.try_next().await.map_err(|e| e.to_string())? {
        let want = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        let status = deployment.status.unwrap_or_default();
        let rolled_out = status.observed_generation >= deployment.metadata.generation
            && status.updated_replicas == Some(want)
            && status.available_replicas == Some(want)
            && status.replicas == Some(want);
        if rolled_out {
            return Ok(());
        }
    }
    Err("the Deployment watch ended".into())
}
