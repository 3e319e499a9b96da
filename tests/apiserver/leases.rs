//! Claims between runs sharing one cluster, against a real API server: a
//! run holds a Lease per claim while its fault is in, a second run on the
//! same target waits for it (and its verdict stays valid), runs on other
//! targets overlap (the control: without the claim the two would overlap
//! too), `--no-wait` refuses naming the holder, a claim left by a run that
//! stopped renewing it is taken over, and `cleanup` releases a killed run's.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use breakfix::lease::{LEASE_DURATION, LEASE_NAMESPACE};
use breakfix::timeline::EntryKind;
use breakfix::{Outcome, Runner, load_experiment};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use kube::runtime::wait::await_condition;
use rstest::rstest;

use crate::runner::experiment_file;
use crate::support;

fn leases(client: &kube::Client) -> Api<Lease> {
    Api::namespaced(client.clone(), LEASE_NAMESPACE)
}

fn notes(trial: &breakfix::runner::TrialReport) -> Vec<String> {
    trial
        .timeline
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Note { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// A Lease as another run on another host would hold it, its renew time
/// `renewed` from now by that host's clock, expiring `duration` after its
/// last write.
async fn held_elsewhere(
    client: &kube::Client,
    name: &str,
    renewed: jiff::SignedDuration,
    duration: Duration,
) {
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: Some(
                [
                    ("breakfix.dev/host".to_string(), "ci-other".to_string()),
                    ("breakfix.dev/pid".to_string(), "777".to_string()),
                    (
                        "breakfix.dev/run-started".to_string(),
                        "2026-12-01T12:00:00Z".to_string(),
                    ),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("run-elsewhere".into()),
            lease_duration_seconds: Some(duration.as_secs() as i32),
            renew_time: Some(MicroTime(jiff::Timestamp::now() + renewed)),
            ..LeaseSpec::default()
        }),
    };
    leases(client)
        .create(&PostParams::default(), &lease)
        .await
        .unwrap();
}

#[rstest]
#[case::on_one_target_the_second_waits(true)]
#[case::on_other_targets_they_overlap(false)]
#[tokio::test]
async fn two_runs_sharing_a_cluster(#[case] same_target: bool) {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns_a = format!("turns-{same_target}-{}", std::process::id() % 100_000);
    let ns_b = if same_target {
        ns_a.clone()
    } else {
        format!("{ns_a}-b")
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let exp_a = load_experiment(&experiment_file(
        dir_a.path(),
        &ns_a,
        "past-quota",
        3,
        "15s",
    ))
    .unwrap();
    let exp_b = load_experiment(&experiment_file(
        dir_b.path(),
        &ns_b,
        "past-quota",
        3,
        "15s",
    ))
    .unwrap();

    let first = Runner::builder(client.clone())
        .journal_dir(dir_a.path().join("journal"))
        .build()
        .unwrap();
    let first_id = first.run_id().to_string();
    let second = Runner::builder(client.clone())
        .journal_dir(dir_b.path().join("journal"))
        .build()
        .unwrap();
    let a = tokio::spawn(async move { first.run(&[exp_a]).await });
    // The first run holds its claim before it applies anything.
    let name = format!("breakfix-ns-{ns_a}");
    let holder = first_id.clone();
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(leases(&client), &name, move |l: Option<&Lease>| {
            l.and_then(|l| l.spec.as_ref()?.holder_identity.clone()) == Some(holder.clone())
        }),
    )
    .await
    .expect("the first run claims its namespace")
    .unwrap();
    let b = second.run(&[exp_b]).await;
    let a = a.await.unwrap();

    let (a, b) = (&a.experiments[0], &b.experiments[0]);
    assert_eq!(a.outcome, Outcome::Passed, "{a:#?}");
    assert_eq!(b.outcome, Outcome::Passed, "{b:#?}");
    let (ta, tb) = (&a.trials[0].marks, &b.trials[0].marks);
    let window = |m: &breakfix::timeline::Marks| (m.injected.unwrap(), m.recovered.unwrap());
    let ((a_in, a_out), (b_in, b_out)) = (window(ta), window(tb));
    let overlap = a_in < b_out && b_in < a_out;
    if same_target {
        assert!(!overlap, "one fault at a time: {ta:?} {tb:?}");
        assert!(b_in > a_out, "the second waited: {ta:?} {tb:?}");
        let waited = notes(&b.trials[0]);
        assert!(
            waited
                .iter()
                .any(|n| n.contains(&format!("claimed by run {first_id}"))),
            "{waited:?}"
        );
    } else {
        assert!(overlap, "other targets run at once: {ta:?} {tb:?}");
    }
    for ns in [&ns_a, &ns_b] {
        let gone = leases(&client)
            .get_opt(&format!("breakfix-ns-{ns}"))
            .await
            .unwrap();
        assert!(gone.is_none(), "released: {gone:?}");
    }
}

/// `run --no-wait` on a target another run holds: exit 2, the holder
/// named with its host and start, nothing applied.
#[tokio::test]
async fn no_wait_refuses_naming_the_holder_and_applies_nothing() {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("nowait-{}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let experiment = experiment_file(dir.path(), &ns, "past-quota", 3, "15s");
    held_elsewhere(
        &client,
        &format!("breakfix-ns-{ns}"),
        jiff::SignedDuration::ZERO,
        LEASE_DURATION,
    )
    .await;
    let kubeconfig = support::kubeconfig(dir.path(), &cp.url, cp.admin_token());
    let out = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .arg("run")
        .arg(&experiment)
        .args(["--context", "testkit", "--no-wait", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("BREAKFIX_JOURNAL_DIR", dir.path().join("journal"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "namespace {ns} is claimed by run run-elsewhere on ci-other (pid 777), started 2026-12-01T12:00:00Z"
        )),
        "{err}"
    );
    let namespace = Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
        .get_opt(&ns)
        .await
        .unwrap();
    assert!(namespace.is_none(), "nothing applied");
}

/// A claim is judged on the cluster's clock, never on the renew time the
/// holder's clock wrote: one the cluster last saw written longer ago than
/// its duration is taken over at once, though its renew time is an hour
/// ahead; one a holder whose clock is an hour behind still renews is
/// waited for, and taken over only a lease duration after its renewals
/// stop (judged by either host's clock, the first looks live forever and
/// the second dead from the start).
#[rstest]
#[case::dead_though_its_renew_time_is_an_hour_ahead(false)]
#[case::renewed_by_a_holder_whose_clock_is_an_hour_behind(true)]
#[tokio::test]
async fn a_claim_is_judged_on_the_clusters_clock(#[case] renewed: bool) {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("skew-{renewed}-{}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let experiment =
        load_experiment(&experiment_file(dir.path(), &ns, "past-quota", 3, "15s")).unwrap();
    let name = format!("breakfix-ns-{ns}");
    let hour = jiff::SignedDuration::from_secs(3600);
    let renewals = Duration::from_secs(9);
    let renewer = if renewed {
        held_elsewhere(&client, &name, -hour, LEASE_DURATION).await;
        let api = leases(&client);
        let name = name.clone();
        Some(tokio::spawn(async move {
            let until = std::time::Instant::now() + renewals;
            while std::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let mut lease = api.get(&name).await.unwrap();
                lease.spec.as_mut().unwrap().renew_time =
                    Some(MicroTime(jiff::Timestamp::now() - hour));
                api.replace(&name, &PostParams::default(), &lease)
                    .await
                    .unwrap();
            }
        }))
    } else {
        // Its own duration is 2 s: by the cluster's clock it is dead in 3.
        held_elsewhere(&client, &name, hour, Duration::from_secs(2)).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        None
    };
    let runner = Runner::builder(client.clone())
        .journal_dir(dir.path().join("journal"))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let report = runner.run(&[experiment]).await;
    let exp = &report.experiments[0];
    assert_eq!(exp.outcome, Outcome::Passed, "{exp:#?}");
    let waited = notes(&exp.trials[0])
        .iter()
        .any(|n| n.contains("claimed by run run-elsewhere on ci-other"));
    assert_eq!(waited, renewed, "{:?}", notes(&exp.trials[0]));
    if let Some(renewer) = renewer {
        renewer.await.unwrap();
        let least = renewals + LEASE_DURATION - Duration::from_secs(4);
        assert!(
            started.elapsed() >= least,
            "taken over {:?} after the start, while renewed",
            started.elapsed()
        );
    }
}

/// A run killed with its fault in leaves its claim; `cleanup` reverts the
/// fault and releases the claim, so the next run need not wait for it.
#[tokio::test]
async fn cleanup_releases_the_claim_of_a_killed_run() {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("killed-{}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    // Detection gives up after 5 minutes: the fault is in when it is killed.
    let experiment = experiment_file(dir.path(), &ns, "within-quota", 1, "5m");
    let kubeconfig = support::kubeconfig(dir.path(), &cp.url, cp.admin_token());
    let journal = dir.path().join("journal");
    let mut child = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .arg("run")
        .arg(&experiment)
        .args(["--context", "testkit", "--keep", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("BREAKFIX_JOURNAL_DIR", &journal)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let injected = line.contains("injected:");
        seen.push(line);
        if injected {
            break;
        }
    }
    let name = format!("breakfix-ns-{ns}");
    let lease = leases(&client).get_opt(&name).await.unwrap();
    assert!(lease.is_some(), "claimed while the fault is in: {seen:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(leases(&client).get_opt(&name).await.unwrap().is_some());

    let out = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .arg("cleanup")
        .env("BREAKFIX_JOURNAL_DIR", &journal)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("released claim {name} -n {LEASE_NAMESPACE}")),
        "{text}"
    );
    assert!(leases(&client).get_opt(&name).await.unwrap().is_none());
}
