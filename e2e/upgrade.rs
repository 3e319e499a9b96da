//! `breakfix upgrade` for real: a kind cluster of its own at v1.34.4 (one
//! control plane, one worker) upgraded in place to v1.35.4, with the
//! `upgrade` baseline's canaries and PodDisruptionBudget running through it
//! and image-typo run before and after. Asserts the versions read from the
//! cluster, the availability measured at each step, the timeline's upgrade
//! steps, the drain the budget held, and that the before/after reports were
//! written and compared.
//!
//! About 5 minutes on this project's 2-core machine, on a cluster of its
//! own, so `just e2e` leaves it out (ignored) and `just e2e-upgrade` runs it
//! after building what it needs (`just upgrade-images v1.34.4 v1.35.4`).
//! The cluster (`$BREAKFIX_UPGRADE_CLUSTER`, default
//! `breakfix-upgrade-e2e`) is deleted afterwards, whatever the outcome.
//! `$BREAKFIX_BIN` runs another breakfix binary than the one cargo built.

use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use serde_json::Value;

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
    let name =
        std::env::var("BREAKFIX_UPGRADE_CLUSTER").unwrap_or_else(|_| "breakfix-upgrade-e2e".into());
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
