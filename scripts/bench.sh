#!/usr/bin/env bash
# breakfix's benchmarks on the shared kind cluster; results go to
# $BENCH_OUT/results.md (and BENCHMARKS.md explains them). A benchmark, not a
# test: it never fails on a number, but it fails (exit 1) when a round of any
# tool failed to run, and no figure from a failed round reaches the summary.
#
#   bash scripts/bench.sh                       # all parts
#   BENCH_PARTS="latency compare" bash scripts/bench.sh
#
# Parts:
#   latency  harness latency: a signal written into the cluster → breakfix's
#            detector reports it, over BENCH_SAMPLES injections (benches/harness.rs)
#   repeat   `breakfix run --repeat BENCH_REPEAT` of the image-typo experiment;
#            marks.signal vs marks.detected from the JSON report
#   compare  image-typo in breakfix, in Chaos Toolkit (chaostoolkit +
#            chaostoolkit-kubernetes, from PyPI into a venv under the cache)
#            and written directly against kube-rs (benches/bare_image_typo.rs,
#            the floor of breakfix's stack), BENCH_ROUNDS rounds each, each
#            round starting with a different tool: time to verdict, overhead
#            beyond Kubernetes' own timing (from a reference watcher), CPU
#            time and peak memory (/usr/bin/time -v; anonymous vs file-backed
#            from scripts/bench_rss.py; cgroup v1 accounting when available)
#
# Environment: BREAKFIX_CLUSTER (breakfix; used, never created or deleted),
# BENCH_SAMPLES (200), BENCH_REPEAT (20), BENCH_ROUNDS (5),
# BENCH_OUT (target/bench/<time>), BENCH_WAIT_E2E (600: seconds to wait for a
# running e2e test binary to finish before starting; 0 does not wait),
# BENCH_PROFILE (release: the cargo profile breakfix and the bench tools are
# built with; the e2e tier's smoke run uses dev, whose figures mean nothing).
# Exit codes: 0 measured, 1 a part or a round failed to run, 2 a missing
# prerequisite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly NAME="${BREAKFIX_CLUSTER:-breakfix}"
readonly CONTEXT="kind-$NAME"
readonly KUBECONFIG_FILE="${BENCH_KUBECONFIG:-$CACHE/kind-${NAME}.kubeconfig}"
readonly KIND="${BREAKFIX_KIND:-$CACHE/bin/kind}"
readonly PARTS="${BENCH_PARTS:-latency repeat compare}"
readonly SAMPLES="${BENCH_SAMPLES:-200}"
readonly REPEAT="${BENCH_REPEAT:-20}"
readonly ROUNDS="${BENCH_ROUNDS:-5}"
readonly PROFILE="${BENCH_PROFILE:-release}"
readonly OUT="${BENCH_OUT:-$REPO_ROOT/target/bench/$(date -u +%Y%m%dt%H%M%S)}"
readonly NS=breakfix-bench-shop
readonly VENV="$CACHE/bench/ctk-venv"
readonly CGROUP_NAME="breakfix-bench"

kubectl_bin() {
  local k
  for k in "$CACHE/bin/kubectl" "$CACHE/components/k8s-${K8S_VERSION}/bin/kubectl" "$(command -v kubectl || true)"; do
    [[ -n $k && -x $k ]] && { echo "$k"; return; }
  done
  die "no kubectl (expected $CACHE/bin/kubectl; run: just cluster)"
}
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" --context "$CONTEXT" "$@"; }
now_ns() { date +%s%N; }

preflight() {
  require_docker
  [[ -x $KIND ]] || die "no kind at $KIND (run: just cluster)"
  "$KIND" get clusters 2>/dev/null | grep -qx "$NAME" \
    || die "kind cluster '$NAME' does not exist; run: just cluster (the bench never creates or deletes it)"
  [[ -f $KUBECONFIG_FILE ]] || die "no kubeconfig at $KUBECONFIG_FILE (run: bash scripts/cluster.sh up)"
  [[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
  command -v python3 >/dev/null || die "python3 is missing"
  KUBECTL=$(kubectl_bin)
  kc get --raw /readyz >/dev/null || die "cluster '$NAME' does not answer"
  # Other people's e2e tests on the same cluster would skew the numbers.
  local waited=0 limit="${BENCH_WAIT_E2E:-600}"
  while ((limit > 0)) && pgrep -f '/deps/e2e-[0-9a-f]+' >/dev/null; do
    if ((waited == 0)); then log "an e2e test binary is running on this machine; waiting up to ${limit}s for it to finish"; fi
    if ((waited >= limit)); then log "warning: e2e tests still running; benchmarking anyway (expect noise)"; break; fi
    sleep 10; waited=$((waited + 10))
  done
}

# executable NAME CARGO_ARGS...: build with cargo and print the path of the
# executable target NAME (wherever CARGO_TARGET_DIR puts it).
executable() {
  local name=$1; shift
  (cd "$REPO_ROOT" && cargo "$@" --locked --profile "$PROFILE" --message-format=json 2>/dev/null) \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$name"
}

# bench_executable NAME: build benches/NAME.rs and print its path.
bench_executable() { executable "$1" bench --bench "$1" --no-run; }

build() {
  log "building breakfix and the bench tools (profile $PROFILE)"
  (cd "$REPO_ROOT" && cargo build --locked --profile "$PROFILE" --bin breakfix)
  BREAKFIX=$(executable breakfix build --bin breakfix)
  [[ -x $BREAKFIX ]] || fail "could not build breakfix (run: cargo build --profile $PROFILE --bin breakfix)"
  BENCH_BIN=$(bench_executable harness)
  [[ -x $BENCH_BIN ]] || fail "could not build benches/harness.rs (run: cargo bench --bench harness --no-run)"
  BARE_BIN=$(bench_executable bare_image_typo)
  [[ -x $BARE_BIN ]] || fail "could not build benches/bare_image_typo.rs (run: cargo bench --bench bare_image_typo --no-run)"
}

ctk_venv() {
  if [[ ! -x $VENV/bin/chaos ]]; then
    log "installing chaostoolkit and chaostoolkit-kubernetes into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet chaostoolkit chaostoolkit-kubernetes
  fi
  "$VENV/bin/pip" freeze 2>/dev/null | grep -Ei '^(chaostoolkit|chaostoolkit-lib|chaostoolkit-kubernetes|kubernetes)==' >"$OUT/ctk-versions.txt" || true
}

# The baseline applied and fully rolled out: the starting point of every round.
baseline_ready() {
  kc get namespace "$NS" >/dev/null 2>&1 || kc create namespace "$NS" >/dev/null
  kc apply -f "$REPO_ROOT/bench/breakfix/baseline/manifests/" >/dev/null
  kc -n "$NS" rollout status deployment/web --timeout=180s >/dev/null
}

part_latency() {
  log "latency: $SAMPLES injected signals"
  "$BENCH_BIN" latency --kubeconfig "$KUBECONFIG_FILE" --context "$CONTEXT" \
    --samples "$SAMPLES" --namespace breakfix-bench-latency --out "$OUT/latency.json"
}

part_repeat() {
  log "repeat: breakfix run --repeat $REPEAT (image-typo)"
  baseline_ready
  local code=0
  BREAKFIX_JOURNAL_DIR="$OUT/journal" "$BREAKFIX" run "$REPO_ROOT/bench/breakfix/image-typo.yaml" \
    --context "$CONTEXT" --kubeconfig "$KUBECONFIG_FILE" --keep --repeat "$REPEAT" \
    --json "$OUT/repeat.json" --html "$OUT/repeat.html" --markdown "$OUT/repeat.md" \
    >"$OUT/repeat.log" 2>&1 || code=$?
  ((code <= 1)) || fail "breakfix run --repeat exited $code (see $OUT/repeat.log)"
}

# cgroup v1 accounting for one command's whole process tree, when the host allows it.
cgroup_dirs=()
cgroup_enter() {
  cgroup_dirs=()
  local c dir
  for c in memory cpuacct; do
    dir="/sys/fs/cgroup/$c/$CGROUP_NAME/$1"
    if mkdir -p "$dir" 2>/dev/null; then cgroup_dirs+=("$dir"); fi
  done
}
cgroup_read() {
  local mem="" cpu="" d
  for d in "${cgroup_dirs[@]}"; do
    [[ -f $d/memory.max_usage_in_bytes ]] && mem=$(<"$d/memory.max_usage_in_bytes")
    [[ -f $d/cpuacct.usage ]] && cpu=$(<"$d/cpuacct.usage")
    rmdir "$d" 2>/dev/null || true
  done
  echo "${mem:-null} ${cpu:-null}"
}

# measure TAG CMD...: run CMD under /usr/bin/time -v in fresh cgroups, with a
# reference watcher recording Kubernetes' own timing of the round.
measure() {
  local tag=$1; shift
  baseline_ready
  "$BENCH_BIN" reference --kubeconfig "$KUBECONFIG_FILE" --context "$CONTEXT" \
    --namespace "$NS" --deployment web --rounds 1 --out "$OUT/$tag.reference.jsonl" 2>"$OUT/$tag.reference.log" &
  local ref=$!
  sleep 1
  cgroup_enter "$tag"
  local procs=() d
  for d in "${cgroup_dirs[@]}"; do procs+=("$d/cgroup.procs"); done
  local t0 t1 code=0 tool_pid
  t0=$(now_ns)
  # The subshell joins the cgroups, then becomes /usr/bin/time, which runs the
  # tool; bench_rss.py samples the tool's anonymous and file-backed memory.
  (for p in "${procs[@]}"; do echo "$BASHPID" >"$p"; done
   exec /usr/bin/time -v -o "$OUT/$tag.time" "$@") >"$OUT/$tag.log" 2>&1 &
  tool_pid=$!
  python3 "$REPO_ROOT/scripts/bench_rss.py" "$tool_pid" "$OUT/$tag.rss.json" &
  local sampler=$!
  wait "$tool_pid" || code=$?
  t1=$(now_ns)
  wait "$sampler" || true
  local cg
  cg=$(cgroup_read)
  # The reference finishes once the Deployment is steady again.
  local waited=0
  while kill -0 "$ref" 2>/dev/null && ((waited < 120)); do sleep 1; waited=$((waited + 1)); done
  kill "$ref" 2>/dev/null || true
  wait "$ref" 2>/dev/null || true
  printf '{"tag":"%s","exit":%d,"wallNs":%d,"cgroupMemPeakBytes":%s,"cgroupCpuNs":%s}\n' \
    "$tag" "$code" $((t1 - t0)) ${cg% *} ${cg#* } >>"$OUT/compare.jsonl"
  log "  $tag: exit $code, $(( (t1 - t0) / 1000000 )) ms"
}

part_compare() {
  ctk_venv
  log "compare: $ROUNDS rounds of image-typo: breakfix, Chaos Toolkit and bare kube-rs"
  local i order tools=(breakfix ctk bare)
  for ((i = 1; i <= ROUNDS; i++)); do
    # Each round starts with a different tool.
    order=("${tools[@]:$(( (i - 1) % 3 ))}" "${tools[@]:0:$(( (i - 1) % 3 ))}")
    for tool in "${order[@]}"; do
      case $tool in
        breakfix)
          measure "breakfix-$i" env BREAKFIX_JOURNAL_DIR="$OUT/journal" "$BREAKFIX" run \
            "$REPO_ROOT/bench/breakfix/image-typo.yaml" --context "$CONTEXT" --kubeconfig "$KUBECONFIG_FILE" \
            --keep --json "$OUT/breakfix-$i.json" ;;
        ctk)
          measure "ctk-$i" env KUBECONFIG="$KUBECONFIG_FILE" PYTHONPATH="$REPO_ROOT/bench/ctk" \
            "$VENV/bin/chaos" --no-version-check --log-file "$OUT/ctk-$i.chaostoolkit.log" run \
            --rollback-strategy always --journal-path "$OUT/ctk-$i.journal.json" \
            "$REPO_ROOT/bench/ctk/image-typo.json" ;;
        bare)
          measure "bare-$i" "$BARE_BIN" --kubeconfig "$KUBECONFIG_FILE" --context "$CONTEXT" \
            --namespace "$NS" --deployment web --container web --image breakfix/workload:0.1.00 ;;
      esac
    done
  done
}

main() {
  preflight
  mkdir -p "$OUT"
  build
  local part
  for part in $PARTS; do
    case $part in
      latency) part_latency ;;
      repeat) part_repeat ;;
      compare) part_compare ;;
      *) die "unknown part '$part' (latency, repeat, compare)" ;;
    esac
  done
  local status=0
  python3 "$REPO_ROOT/scripts/bench_report.py" "$OUT" >"$OUT/results.md" || status=$?
  cat "$OUT/results.md"
  log "results: $OUT/results.md"
  case $status in
    0) ;;
    3) fail "some rounds failed to run (their figures are left out of the summary; see $OUT/*.log)" ;;
    *) fail "scripts/bench_report.py exited $status" ;;
  esac
}

main "$@"
