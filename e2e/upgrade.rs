//! `breakfix upgrade` for real: a kind cluster of its own at v1.34.4 (one
//! control plane, one worker) upgraded in place to v1.35.4, with the
//! `upgrade` baseline's canaries and PodDisruptionBudget running through it
//! and image-typo run before and after. Asserts the versions read from the
//! cluster, the availability measured at each step, the timeline's upgrade
//! steps, the drain the budget held, and that the before/after reports were
//! written and compared.
//!
//! A second test injects the catalogue fault of
//! `coredns-squeezed-while-nodes-roll` as the nodes start to roll, sees it
//! from the cluster, and interrupts the upgrade with SIGINT during the
//! worker's roll: the fault is reverted, the exit is 130, and the report
//! says which step was reached and which version each node runs.
//!
//! About 7 and 6 minutes on this project's 2-core machine, each on a
//! cluster of its own, so `just e2e` leaves them out (ignored) and `just
//! e2e-upgrade` runs them after building what they need (`just
//! upgrade-images v1.34.4 v1.35.4`). The clusters
//! (`$BREAKFIX_UPGRADE_CLUSTER`, default `breakfix-upgrade-e2e`, and the
//! same with `-sigint`) are deleted afterwards, whatever the outcome.
//! `$BREAKFIX_BIN` runs another breakfix binary than the one cargo built.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

const FROM: &str = "v1.34.4";
const TO: &str = "v1.35.4";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> PathBuf {
    std::env::var_os("BREAKFIX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_breakfix")))
}

/// Deletes the cluster when the test ends, passed or not.
struct DeleteCluster(String);

impl Drop for DeleteCluster {
    fn drop(&mut self) {
        let _ = Command::new(binary())
            .args(["cluster", "down", &self.0])
            .status();
    }
}

fn cluster_name() -> String {
    std::env::var("BREAKFIX_UPGRADE_CLUSTER").unwrap_or_else(|_| "breakfix-upgrade-e2e".into())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "a cluster and 5 minutes of its own; run with `just e2e-upgrade`"]
async fn an_in_place_upgrade_is_measured_step_by_step_and_the_suites_compared() {
    let name = cluster_name();
    let _cleanup = DeleteCluster(name.clone());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("up.json");
    let out = Command::new(binary())
        .current_dir(repo())
        .env("BREAKFIX_JOURNAL_DIR", dir.path().join("journal"))
        .args([
            "upgrade",
            "--from",
            FROM,
            "--to",
            TO,
            "experiments/image-typo.yaml",
            "--plan",
            "experiments/upgrade/shop-through-upgrade.yaml",
            "--workers",
            "1",
            "--cluster-name",
            &name,
            "--keep",
            "--json",
        ])
        .arg(&json)
        .arg("--markdown")
        .arg(dir.path().join("up.md"))
        .arg("--html")
        .arg(dir.path().join("up.html"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    // 0, or 1 when a threshold was missed on this busy machine: both are a
    // finished, measured upgrade; 2 and 130 are not.
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{text}");
    assert!(text.contains(&format!("upgraded {FROM} → {TO}")), "{text}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let upgrade = &report["upgrade"];
    assert_eq!(upgrade["outcome"], "upgraded", "{text}");
    assert_eq!(upgrade["hostCgroups"].as_str().map(str::len), Some(2));

    // The versions as the report read them back from the cluster…
    let versions = &upgrade["versions"];
    assert_eq!(versions["apiServer"], TO);
    let kubelets = versions["kubelets"].as_object().unwrap();
    assert_eq!(kubelets.len(), 2, "{versions}");
    assert!(kubelets.values().all(|v| v == TO), "{versions}");
    // …and as the cluster says them now.
    let record = breakfix::cluster::KindCluster::recorded(&name).expect("the cluster is recorded");
    let client = breakfix::cluster::client_for_record(&record.record())
        .await
        .unwrap();
    assert_eq!(client.apiserver_version().await.unwrap().git_version, TO);
    let nodes: Api<Node> = Api::all(client.clone());
    for n in nodes.list(&Default::default()).await.unwrap() {
        let info = n.status.unwrap().node_info.unwrap();
        assert_eq!(info.kubelet_version, TO);
        let cordoned = n.spec.and_then(|s| s.unschedulable).unwrap_or(false);
        assert!(!cordoned, "a node was left cordoned");
    }

    // The steps, in order, each measured.
    let steps = upgrade["transition"]["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "stage".to_string(),
            "control-plane".into(),
            format!("node {name}-control-plane"),
            format!("node {name}-worker"),
        ]
    );
    for step in &steps[1..] {
        assert!(step["error"].is_null(), "{step}");
        let http = step["availability"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["canary"] == "breakfix.dev/canary=http -n upgrade")
            .unwrap_or_else(|| panic!("no http canary measured in {step}"));
        assert!(http["total"].as_u64().unwrap() > 0, "{http}");
        assert!(step["blastRadius"].is_object(), "{step}");
    }
    let verdicts = upgrade["slos"].as_array().unwrap();
    for step in &names[1..] {
        assert!(
            verdicts.iter().any(|v| v["step"] == *step),
            "no per-phase verdict for {step}: {verdicts:?}"
        );
    }

    // The timeline says what was done where.
    let notes: Vec<String> = upgrade["transition"]["timeline"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect();
    let all = notes.join("\n");
    for expected in [
        format!("kubeadm upgrade apply {TO} --yes"),
        format!("{name}-worker: kubeadm upgrade node"),
        format!("{name}-worker: cordon and drain"),
        format!("{name}-worker: Ready, kubelet {TO}"),
        format!("{name}-control-plane: control-plane static pods Ready again"),
        format!("{name}-worker: uncordoned"),
        "versions read from the cluster".to_string(),
    ] {
        assert!(
            all.contains(&expected),
            "`{expected}` not on the timeline:\n{all}"
        );
    }

    // After the control plane's roll both web pods run on the worker, so
    // draining it evicts one and the budget holds the other until its
    // replacement is Ready: reported with the budget's name and how long.
    let drains = upgrade["drains"].as_array().unwrap();
    assert_eq!(drains.len(), 2);
    let blocks: Vec<Value> = drains
        .iter()
        .flat_map(|d| d["blocked"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(
        blocks
            .iter()
            .any(|b| b["pdb"] == "upgrade/web" && !b["until"].is_null()),
        "no drain held by upgrade/web: {drains:?}"
    );
    assert!(
        strings(&drains[1]["evicted"])
            .iter()
            .any(|p| p.starts_with("upgrade/web-"))
    );

    // Before and after, written and compared.
    for side in ["before", "after"] {
        let path = dir.path().join(format!("up.{side}.json"));
        let run: breakfix::runner::RunReport =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(run.experiments.len(), 1, "{side}");
        assert_eq!(run.experiments[0].name, "image-typo");
    }
    let compared = report["comparison"]["experiments"].as_array().unwrap();
    assert_eq!(compared[0]["name"], "image-typo");
    let md = std::fs::read_to_string(dir.path().join("up.md")).unwrap();
    assert!(md.contains("Before → after"), "{md}");
    assert!(
        std::fs::read_to_string(dir.path().join("up.html"))
            .unwrap()
            .contains("control-plane")
    );
}

/// The memory limit of CoreDNS's container, in the Deployment or a pod.
fn coredns_limit(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Option<String> {
    spec?
        .containers
        .iter()
        .find(|c| c.name == "coredns")?
        .resources
        .as_ref()?
        .limits
        .as_ref()?
        .get("memory")
        .map(|q| q.0.clone())
}

/// The output of a running breakfix, line by line, both streams.
struct Output {
    lines: mpsc::UnboundedReceiver<String>,
    text: String,
}

impl Output {
    fn of(child: &mut tokio::process::Child) -> Self {
        let (tx, lines) = mpsc::unbounded_channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        tokio::spawn(async move {
            let mut l = BufReader::new(out).lines();
            while let Ok(Some(line)) = l.next_line().await {
                let _ = tx.send(line);
            }
        });
        tokio::spawn(async move {
            let mut l = BufReader::new(err).lines();
            while let Ok(Some(line)) = l.next_line().await {
                let _ = tx2.send(line);
            }
        });
        Self {
            lines,
            text: String::new(),
        }
    }

    /// Reads until a line contains `needle` (panics after `within`).
    async fn until(&mut self, needle: &str, within: Duration) {
        let found = tokio::time::timeout(within, async {
            while let Some(line) = self.lines.recv().await {
                println!("{line}");
                self.text.push_str(&line);
                self.text.push('\n');
                if line.contains(needle) {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(found, Ok(true)),
            "`{needle}` never came:\n{}",
            self.text
        );
    }

    /// Reads the rest, until the process closes its output.
    async fn rest(&mut self) {
        while let Some(line) = self.lines.recv().await {
            println!("{line}");
            self.text.push_str(&line);
            self.text.push('\n');
        }
    }
}

#[tokio::test]
#[ignore = "a cluster and 6 minutes of its own; run with `just e2e-upgrade`"]
async fn a_fault_in_while_nodes_roll_is_reverted_on_ctrl_c_and_the_state_reported() {
    let name = format!("{}-sigint", cluster_name());
    let _cleanup = DeleteCluster(name.clone());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("up.json");
    let journal = dir.path().join("journal");
    let mut child = tokio::process::Command::new(binary())
        .current_dir(repo())
        .env("BREAKFIX_JOURNAL_DIR", &journal)
        .args([
            "upgrade",
            "--from",
            FROM,
            "--to",
            TO,
            "--plan",
            "experiments/upgrade/coredns-squeezed-while-nodes-roll.yaml",
            "--workers",
            "1",
            "--cluster-name",
            &name,
            "--json",
        ])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = Output::of(&mut child);
    let minutes = |m: u64| Duration::from_secs(60 * m);

    // The fault goes in as the nodes start to roll, after the control plane.
    out.until("fault injected:", minutes(15)).await;
    assert!(
        out.text.contains(&format!("API server reports {TO}")),
        "{}",
        out.text
    );
    let record = breakfix::cluster::KindCluster::recorded(&name).expect("the cluster is recorded");
    let client = breakfix::cluster::client_for_record(&record.record())
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kube-system");
    let squeezed = |d: &Deployment| coredns_limit(d.spec.as_ref()?.template.spec.as_ref());
    let during = deployments.get("coredns").await.unwrap();
    assert_eq!(squeezed(&during).as_deref(), Some("24Mi"));

    // Seen from the cluster: once the control-plane node has rolled (its
    // drain evicted CoreDNS), CoreDNS pods run with the squeezed limit.
    out.until(&format!("{name}-control-plane: uncordoned"), minutes(5))
        .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let coredns = pods
        .list(&kube::api::ListParams::default().labels("k8s-app=kube-dns"))
        .await
        .unwrap();
    assert!(
        coredns
            .items
            .iter()
            .any(|p| coredns_limit(p.spec.as_ref()).as_deref() == Some("24Mi")),
        "no CoreDNS pod runs squeezed"
    );

    // Ctrl-C while the worker drains.
    out.until(&format!("{name}-worker: cordon and drain"), minutes(5))
        .await;
    let pid = child.id().unwrap().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(minutes(5), child.wait())
        .await
        .expect("breakfix stops within 5 minutes of SIGINT")
        .unwrap();
    out.rest().await;
    let text = &out.text;
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("SIGINT: stopping"), "{text}");
    assert!(
        text.contains(&format!("upgrade {FROM} → {TO} interrupted")),
        "{text}"
    );
    assert!(
        text.contains(&format!("interrupted at node {name}-worker")),
        "{text}"
    );
    assert!(
        text.contains("cluster: left for inspection, not upgraded"),
        "{text}"
    );

    // The report: the step reached, the fault in and out, the versions.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let upgrade = &report["upgrade"];
    assert_eq!(upgrade["outcome"], "interrupted", "{text}");
    assert_eq!(upgrade["failure"]["step"], format!("node {name}-worker"));
    let fault = &upgrade["fault"];
    assert_eq!(fault["fault"], "memorySqueeze");
    assert_eq!(fault["during"], "nodes");
    assert!(fault["error"].is_null(), "{fault}");
    let at = |k: &str| {
        fault[k]
            .as_str()
            .unwrap_or_else(|| panic!("no {k} in {fault}"))
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert!(at("injected") < at("reverted"), "{fault}");
    let versions = &upgrade["versions"];
    assert_eq!(versions["apiServer"], TO);
    assert_eq!(versions["kubelets"][format!("{name}-control-plane")], TO);
    assert_eq!(versions["kubelets"][format!("{name}-worker")], FROM);
    assert!(
        strings(&versions["cordoned"]).contains(&format!("{name}-worker")),
        "{versions}"
    );
    let notes: Vec<String> = upgrade["transition"]["timeline"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect();
    let index = |needle: &str| {
        notes
            .iter()
            .position(|n| n.contains(needle))
            .unwrap_or_else(|| panic!("`{needle}` not on the timeline:\n{}", notes.join("\n")))
    };
    assert!(index(&format!("API server reports {TO}")) < index("fault injected:"));
    assert!(index("fault injected:") < index(&format!("{name}-control-plane: cordon and drain")));
    assert!(index(&format!("{name}-worker: cordon and drain")) < index("fault reverted"));

    // The cluster: CoreDNS has its limit back, the worker runs the old
    // kubelet; nothing is left for `breakfix cleanup`.
    let after = deployments.get("coredns").await.unwrap();
    assert_eq!(squeezed(&after).as_deref(), Some("170Mi"));
    let nodes: Api<Node> = Api::all(client.clone());
    let worker = nodes.get(&format!("{name}-worker")).await.unwrap();
    assert_eq!(
        worker.status.unwrap().node_info.unwrap().kubelet_version,
        FROM
    );
    let cleanup = Command::new(binary())
        .env("BREAKFIX_JOURNAL_DIR", &journal)
        .arg("cleanup")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&cleanup.stdout);
    assert!(cleanup.status.success(), "{said}");
    assert!(said.contains("nothing to clean up"), "{said}");
}
