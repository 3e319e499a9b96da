#!/usr/bin/env bash
# breakfix's kind cluster, from nothing, with no container registry.
#
#   bash scripts/cluster.sh up      # build what is missing, create (or reuse) the cluster, wait until ready
#   bash scripts/cluster.sh down    # delete the cluster
#   bash scripts/cluster.sh status  # nodes and kube-system readiness; exit 0 only when ready
#
# Environment:
#   BREAKFIX_CLUSTER   cluster name (default breakfix)
#   BREAKFIX_WORKERS   number of worker nodes (default 0: a single control-plane node)
#   BREAKFIX_K8S_VERSION  a version listed in kubernetes.versions (default: versions.env's)
#   BREAKFIX_CACHE     build cache (default ~/.cache/breakfix)
#   BREAKFIX_READY_TIMEOUT  seconds to wait for readiness (default 300)
#
# `up` runs, in order: docker.sh, build-components.sh, base-image.sh,
# build-images.sh, node-image.sh (each skips what is cached), then
# `kind create cluster --name $BREAKFIX_CLUSTER --image breakfix/node:$K8S_VERSION`
# (plus a config listing the workers when BREAKFIX_WORKERS > 0), waits for every
# node Ready and every kube-system (and local-path-storage) pod Running+Ready,
# and loads the workload
# image. Exit codes: 0 ready, 1 a build or the cluster failed, 2 a missing
# prerequisite (one line says what and how to fix).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly NAME="${BREAKFIX_CLUSTER:-breakfix}"
readonly WORKERS="${BREAKFIX_WORKERS:-0}"
readonly NODE_IMAGE="breakfix/node:${K8S_VERSION}"
readonly WORKLOAD_IMAGE="breakfix/workload:0.1.0"
readonly READY_TIMEOUT="${BREAKFIX_READY_TIMEOUT:-300}"
# Free space needed: building everything from nothing, or only creating the
# cluster's node containers from images already built.
readonly MIN_FREE_GIB_COLD=15
readonly MIN_FREE_GIB_WARM=4
readonly KIND="${BREAKFIX_KIND:-$CACHE/bin/kind}"
readonly K8S_BIN="${BREAKFIX_K8S_BIN:-$CACHE/components/k8s-${K8S_VERSION}/bin}"
readonly KUBECONFIG_FILE="$CACHE/kind-${NAME}.kubeconfig"
readonly SCRIPTS="$REPO_ROOT/scripts"

TIMINGS=()
T_START=$(now_s)

# stage NAME CMD...: run one step, record its duration.
stage() {
  local name=$1 t0
  shift
  t0=$(now_s)
  "$@"
  TIMINGS+=("$(printf '%-22s %4ss' "$name" $(( $(now_s) - t0 )))")
}

print_timings() {
  local t
  echo "timings:"
  for t in "${TIMINGS[@]}"; do echo "  $t"; done
  printf '  %-22s %4ss\n' total $(( $(now_s) - T_START ))
}

kubectl_bin() {
  if [[ -x $K8S_BIN/kubectl ]]; then echo "$K8S_BIN/kubectl"; else command -v kubectl || true; fi
}

kc() { "$(kubectl_bin)" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# ---------------------------------------------------------------- preflight
preflight() {
  require_root
  require_runnable_here
  [[ $WORKERS =~ ^[0-9]+$ ]] || die "BREAKFIX_WORKERS must be a number, got '$WORKERS'"
  mkdir -p "$CACHE/logs" || die "cannot create $CACHE"
  local dir free need what
  local docker_root
  docker_root=$(docker info -f '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib)
  if [[ -x $KIND ]] && docker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
    need=$MIN_FREE_GIB_WARM what="creating the cluster from the images already built"
  else
    need=$MIN_FREE_GIB_COLD what="a cold build"
  fi
  for dir in "$CACHE" "$docker_root"; do
    free=$(free_gib "$dir")
    ((free >= need)) \
      || die "only ${free} GiB free on the filesystem of $dir, ${what} needs ${need} GiB; free some space there (e.g. docker system prune) and rerun"
  done
  command -v go >/dev/null || die "go not found in PATH; install Go (>= 1.24) and rerun"
  if ! go_proxy_reachable; then
    if [[ -x $KIND ]] && docker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
      log "warning: Go module proxy unreachable; continuing with cached builds"
    else
      die "Go module proxy $(go env GOPROXY | cut -d, -f1) is unreachable and nothing is cached yet; fix network access to it (or set GOPROXY) and rerun"
    fi
  fi
}

go_proxy_reachable() {
  local proxy
  proxy=$(go env GOPROXY | cut -d, -f1 | cut -d'|' -f1)
  case $proxy in
    off) return 1 ;;
    direct | "") return 0 ;;
  esac
  curl -sf -m 10 -o /dev/null "$proxy/sigs.k8s.io/kind/@v/${KIND_VERSION}.info"
}

# run_script NAME: run scripts/NAME if present (H1's builders), else fail clearly.
run_script() {
  local s="$SCRIPTS/$1"
  [[ -f $s ]] || die "scripts/$1 is missing (it builds the Kubernetes components/images); pull the latest main"
  bash "$s"
}

# ---------------------------------------------------------------- cluster
cluster_exists() { "$KIND" get clusters 2>/dev/null | grep -qxF "$NAME"; }

node_containers() { docker ps -a --filter "label=io.x-k8s.kind.cluster=$NAME" --format '{{.Names}} {{.State}}'; }

# The kubeconfig holds a cluster-admin key: readable by its owner only.
write_kubeconfig() {
  (umask 077 && "$KIND" get kubeconfig --name "$NAME" >"$KUBECONFIG_FILE.tmp" 2>/dev/null) \
    && chmod 600 "$KUBECONFIG_FILE.tmp" && mv "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
}

# stale_nodes: true when the cluster's node containers exist but do not all
# run (dockerd restarted, the machine rebooted). kind nodes do not survive
# that reliably, and the cluster is breakfix's own, so it is recreated.
stale_nodes() {
  local lines running total
  lines=$(node_containers)
  total=$(grep -c . <<<"$lines" || true)
  running=$(grep -c ' running$' <<<"$lines" || true)
  ((total == 0 || running != total))
}

check_existing() {
  local lines workers
  lines=$(node_containers)
  workers=$(grep -c -- '-worker[0-9]* ' <<<"$lines" || true)
  ((workers == WORKERS)) \
    || die "cluster $NAME has $workers worker(s) but BREAKFIX_WORKERS=$WORKERS; recreate it: bash scripts/cluster.sh down && bash scripts/cluster.sh up"
  local want have
  want=$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE")
  have=$(docker inspect -f '{{.Image}}' "$NAME-control-plane" 2>/dev/null || true)
  [[ $want == "$have" ]] || log "warning: cluster $NAME runs an older $NODE_IMAGE; 'down' then 'up' to use the new one"
}

create_cluster() {
  local -a args=(create cluster --name "$NAME" --image "$NODE_IMAGE" --kubeconfig "$KUBECONFIG_FILE" --wait 0s)
  local cfg=""
  if ((WORKERS > 0)); then
    cfg="$CACHE/kind-${NAME}.config.yaml"
    {
      echo "kind: Cluster"
      echo "apiVersion: kind.x-k8s.io/v1alpha4"
      echo "nodes:"
      echo "- role: control-plane"
      for ((i = 0; i < WORKERS; i++)); do echo "- role: worker"; done
    } >"$cfg"
    args+=(--config "$cfg")
  fi
  log "kind ${args[*]}  (log: $CACHE/logs/kind-create-$NAME.log)"
  if ! "$KIND" "${args[@]}" >"$CACHE/logs/kind-create-$NAME.log" 2>&1; then
    tail -n 15 "$CACHE/logs/kind-create-$NAME.log" >&2
    # kind deletes a failed cluster itself; make sure nothing half-made stays
    "$KIND" delete cluster --name "$NAME" >/dev/null 2>&1 || true
    fail "kind create cluster failed (see $CACHE/logs/kind-create-$NAME.log)"
  fi
  chmod 600 "$KUBECONFIG_FILE"
}

# not_ready_report: lines describing what is not ready yet; empty when all is.
not_ready_report() {
  local nodes pods
  nodes=$(kc get nodes -o json 2>/dev/null) || { echo "API server not answering"; return; }
  jq -r '.items[] | select(([.status.conditions[]? | select(.type=="Ready" and .status=="True")] | length) == 0)
         | "node \(.metadata.name) not Ready"' <<<"$nodes"
  local want
  want=$(node_containers | grep -c . || true)
  local have
  have=$(jq '.items | length' <<<"$nodes")
  ((have == want)) || echo "$have of $want nodes registered"
  # kube-system plus the default storage provisioner's namespace
  pods=$(kc get pods -A -o json 2>/dev/null) || { echo "cannot list pods"; return; }
  pods=$(jq '{items: [.items[] | select(.metadata.namespace == "kube-system" or .metadata.namespace == "local-path-storage")]}' <<<"$pods")
  jq -r '.items[]
         | select(.status.phase != "Running"
                  or ([.status.containerStatuses[]? | select(.ready != true)] | length) > 0
                  or ((.status.containerStatuses // []) | length) == 0)
         | "pod \(.metadata.namespace)/\(.metadata.name) \(.status.phase) \([.status.containerStatuses[]? | (.state.waiting.reason // empty)] | join(","))"' <<<"$pods"
  # the parts every breakfix cluster must have
  local part
  for part in kube-apiserver kube-controller-manager kube-scheduler etcd coredns kube-proxy breakfix-netd local-path-provisioner; do
    jq -e --arg p "$part" '[.items[] | select(.metadata.name | startswith($p))] | length > 0' <<<"$pods" >/dev/null \
      || echo "no $part pod yet"
  done
}

wait_ready() {
  local deadline=$(( $(now_s) + READY_TIMEOUT )) report=""
  while (( $(now_s) < deadline )); do
    report=$(not_ready_report)
    [[ -z $report ]] && return 0
    sleep 2
  done
  echo "$report" | sed 's/^/  /' >&2
  fail "cluster $NAME not ready after ${READY_TIMEOUT}s (inspect: $(kubectl_bin) --kubeconfig $KUBECONFIG_FILE get pods -A; remove: bash scripts/cluster.sh down)"
}

# breakfix's record of the clusters it made (src/cluster/kind.rs reads it):
# only recorded clusters are reused (`breakfix run --reuse`) or deleted by name.
registry_file() {
  local state
  if [[ -n ${BREAKFIX_STATE_DIR:-} ]]; then state=$BREAKFIX_STATE_DIR
  elif [[ -n ${XDG_STATE_HOME:-} ]]; then state=$XDG_STATE_HOME/breakfix
  else state=$HOME/.local/state/breakfix
  fi
  echo "$state/clusters/$NAME.json"
}

register_cluster() {
  local file
  file=$(registry_file)
  mkdir -p -m 700 "$(dirname "$file")"
  chmod 700 "$(dirname "$file")"
  (umask 077 && jq -n --arg name "$NAME" --arg image "$NODE_IMAGE" --argjson workers "$WORKERS" \
        --arg kubeconfig "$KUBECONFIG_FILE" --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        '{name: $name, nodeImage: $image, workers: $workers, kubeconfig: $kubeconfig, createdAt: $at}' >"$file")
  chmod 600 "$file"
}

load_workload() {
  if [[ ! -f $SCRIPTS/workload-image.sh ]]; then
    log "note: scripts/workload-image.sh not present yet; skipping $WORKLOAD_IMAGE"
    return
  fi
  bash "$SCRIPTS/workload-image.sh"
  "$KIND" load docker-image "$WORKLOAD_IMAGE" --name "$NAME" >"$CACHE/logs/kind-load-$NAME.log" 2>&1 \
    || fail "kind load docker-image $WORKLOAD_IMAGE failed (see $CACHE/logs/kind-load-$NAME.log)"
}

# ---------------------------------------------------------------- commands
cmd_up() {
  preflight
  stage docker bash "$SCRIPTS/docker.sh"
  stage components run_script build-components.sh
  [[ -x $KIND ]] || die "kind not found at $KIND after build-components.sh"
  stage base-image bash "$SCRIPTS/base-image.sh"
  stage control-plane-images run_script build-images.sh
  stage node-image bash "$SCRIPTS/node-image.sh"
  if cluster_exists && stale_nodes; then
    log "cluster $NAME has stopped node containers (was dockerd restarted?); recreating it"
    "$KIND" delete cluster --name "$NAME" >/dev/null 2>&1 || true
  fi
  if cluster_exists; then
    check_existing
    write_kubeconfig || fail "cannot get the kubeconfig of cluster $NAME"
    log "cluster $NAME exists; checking readiness"
  else
    stage kind-create create_cluster
  fi
  register_cluster
  stage wait-ready wait_ready
  stage workload-image load_workload
  print_timings
  echo "cluster $NAME ready: $((WORKERS + 1)) node(s), $NODE_IMAGE; kubeconfig: $KUBECONFIG_FILE (context kind-$NAME)"
}

cmd_down() {
  require_root
  if [[ -x $KIND ]] && cluster_exists; then
    "$KIND" delete cluster --name "$NAME"
  else
    # no kind binary or no cluster: remove any leftover node containers by label
    local ids
    ids=$(docker ps -aq --filter "label=io.x-k8s.kind.cluster=$NAME" 2>/dev/null || true)
    # shellcheck disable=SC2086 # one id per word
    [[ -z $ids ]] || docker rm -f -v $ids >/dev/null
    log "cluster $NAME not present"
  fi
  rm -f "$KUBECONFIG_FILE" "$(registry_file)"
}

cmd_status() {
  [[ -x $KIND ]] || { echo "kind not built yet ($KIND)"; return 1; }
  cluster_exists || { echo "cluster $NAME: absent"; return 1; }
  write_kubeconfig || { echo "cluster $NAME: cannot read kubeconfig"; return 1; }
  kc get nodes -o wide || true
  local report
  report=$(not_ready_report)
  if [[ -n $report ]]; then
    echo "cluster $NAME: NOT ready"
    echo "$report" | sed 's/^/  /'
    return 1
  fi
  echo "cluster $NAME: ready (kubeconfig $KUBECONFIG_FILE)"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
