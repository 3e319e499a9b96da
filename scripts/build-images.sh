#!/usr/bin/env bash
# Build breakfix's control-plane images and the API-server test-tier image
# locally with `docker build`, from the binaries of scripts/build-components.sh.
# Nothing is pulled: static binaries go FROM scratch, the rest FROM
# breakfix/debian-base (scripts/base-image.sh).
#
#   control-plane   every image `kubeadm config images list --kubernetes-version
#                   $K8S_VERSION` prints, tagged exactly so (registry.k8s.io/...):
#                   kube-apiserver, kube-controller-manager, kube-scheduler,
#                   kube-proxy (FROM debian-base: needs iptables/conntrack),
#                   etcd, coredns, pause (breakfix's own static pause.c)
#   apiserver-tier  breakfix/apiserver-tier:$K8S_VERSION: etcd + kube-apiserver +
#                   kube-controller-manager, prints `breakfix-apiserver-tier ready`
#
# An image is skipped when its tag exists with label dev.breakfix.inputs equal
# to the hash of its inputs (binaries, Dockerfile dir, tag, base image ID).
# Otherwise it is built under a temporary tag, verified (--version, or a real
# start for the test tier), and only then tagged. BREAKFIX_REBUILD=1 forces
# these images to rebuild (not the binaries or the base image they use).
#
# BREAKFIX_K8S_VERSION=vX.Y.Z builds another version of kubernetes.versions.
#
# Usage: scripts/build-images.sh [control-plane] [apiserver-tier]
#        (default: both for versions.env's K8S_VERSION, control-plane for others)
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly CP_DIR=$REPO_ROOT/images/control-plane
readonly TIER_DIR=$REPO_ROOT/images/apiserver-tier
readonly BASE_IMAGE=breakfix/debian-base:$DEBIAN_SUITE
readonly TIER_IMAGE=breakfix/apiserver-tier:$K8S_VERSION
readonly K8S_BIN=$CACHE/components/k8s-$K8S_VERSION/bin
readonly ETCD_BIN=$CACHE/components/etcd-$ETCD_MODULE_VERSION/bin
readonly COREDNS_BIN=$CACHE/components/coredns-$COREDNS_VERSION/bin
readonly LOG_DIR=$CACHE/logs/build-images

declare -A KUBEADM_IMAGES=() # short name (kube-apiserver, etcd, pause, ...) -> full tag

ensure_prereqs() {
  # shellcheck disable=SC2119 # no arguments to pass on
  require_root
  if ! docker info >/dev/null 2>&1; then
    [[ -f $REPO_ROOT/scripts/docker.sh ]] || die "docker is not running and scripts/docker.sh is missing"
    bash "$REPO_ROOT/scripts/docker.sh" || die "scripts/docker.sh could not start docker"
  fi
  if ! command -v gcc >/dev/null || [[ ! -e /usr/lib/x86_64-linux-gnu/libc.a && ! -e /usr/lib/aarch64-linux-gnu/libc.a ]]; then
    log "installing gcc and libc6-dev (for the static pause binary)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null \
      || die "gcc/libc6-dev missing and apt-get install failed; run: apt-get install gcc libc6-dev"
  fi
  mkdir -p "$LOG_DIR"
}

# BREAKFIX_REBUILD=1 means "rebuild the images", not "rebuild every Go binary
# and the base image": the prerequisite scripts run without it.
ensure_components() {
  env -u BREAKFIX_REBUILD bash "$REPO_ROOT/scripts/build-components.sh" k8s etcd coredns
}

ensure_base() {
  if [[ -f $REPO_ROOT/scripts/base-image.sh ]]; then
    env -u BREAKFIX_REBUILD bash "$REPO_ROOT/scripts/base-image.sh"
  fi
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
    || die "$BASE_IMAGE is missing; build it with scripts/base-image.sh"
}

# read_kubeadm_images: fill KUBEADM_IMAGES from kubeadm itself and check that
# kubernetes.versions builds the etcd and CoreDNS versions kubeadm asks for.
read_kubeadm_images() {
  local list img short tag
  list=$("$K8S_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>&1) \
    || fail "kubeadm config images list failed: $list"
  for img in $list; do
    short=${img%:*}; short=${short##*/}
    KUBEADM_IMAGES[$short]=$img
  done
  local need
  for need in kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns pause; do
    [[ -n ${KUBEADM_IMAGES[$need]:-} ]] || fail "kubeadm $K8S_VERSION lists no $need image (got: $list)"
  done
  tag=${KUBEADM_IMAGES[etcd]##*:}
  [[ ${tag%-*} == "${ETCD_MODULE_VERSION#v}" ]] \
    || fail "kubeadm $K8S_VERSION expects etcd ${tag%-*} (${KUBEADM_IMAGES[etcd]}) but kubernetes.versions says $ETCD_MODULE_VERSION; set its etcd column to v${tag%-*}"
  tag=${KUBEADM_IMAGES[coredns]##*:}
  [[ $tag == "$COREDNS_VERSION" ]] \
    || fail "kubeadm $K8S_VERSION expects CoreDNS $tag but kubernetes.versions says $COREDNS_VERSION; set its coredns column to $tag"
}

# file_sha256 FILE: sha256 of FILE's content. For binaries in the component
# cache it is memoised next to them in .FILE.sha256 (recomputed when FILE is
# newer: build-components.sh replaces binaries with mv, so a rebuilt binary
# always has a newer mtime); this keeps a warm run at about a second.
file_sha256() {
  local f=$1 memo
  if [[ $f != "$CACHE/components/"* ]]; then
    sha256sum <"$f" | cut -d' ' -f1
    return
  fi
  memo="$(dirname "$f")/.$(basename "$f").sha256"
  if [[ ! -s $memo || $f -nt $memo ]]; then
    sha256sum <"$f" | cut -d' ' -f1 >"$memo.tmp.$$" && mv -f "$memo.tmp.$$" "$memo"
  fi
  cat "$memo"
}

# content_hash [FILE|DIR]... [-- STRING...]: hash of file contents and names
# (not of where the cache lives), plus extra strings.
content_hash() {
  local -a strings=()
  {
    while (($#)); do
      if [[ $1 == -- ]]; then shift; strings=("$@"); break; fi
      if [[ -d $1 ]]; then
        (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
      else
        printf '%s %s\n' "$(file_sha256 "$1")" "$(basename "$1")"
      fi
      shift
    done
    printf '%s\n' "${strings[@]}"
  } | sha256sum | cut -c1-16
}

# pause_binary VERSION: build breakfix's pause (static C) once per source hash;
# prints its path.
pause_binary() {
  local version=$1 src=$CP_DIR/pause/pause.c key out
  key=$(content_hash "$src" -- "$version" "$(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)")
  out=$CACHE/components/pause-$key/pause
  if [[ ! -x $out ]]; then
    mkdir -p "${out%/*}"
    gcc -static -Os -s -Wall -Wextra -Werror -DPAUSE_VERSION="\"$version\"" -o "$out.tmp.$$" "$src" \
      >"$LOG_DIR/pause.log" 2>&1 || fail "gcc -static pause.c failed (log: $LOG_DIR/pause.log)"
    mv -f "$out.tmp.$$" "$out"
  fi
  echo "$out"
}

# build_image TAG DIR VERIFY -- FILE...: docker build DIR's Dockerfile with
# FILE... (binaries) in the context; VERIFY is a function called with the
# temporary tag before the image gets TAG.
build_image() {
  local tag=$1 dir=$2 verify=$3
  shift 4 # also drops the --
  local base_id="" hash
  if grep -q "^FROM $BASE_IMAGE\$" "$dir/Dockerfile"; then
    base_id=$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")
  fi
  hash=$(content_hash "$dir" "$@" -- "$tag" "$base_id")
  if [[ ${BREAKFIX_REBUILD:-0} != 1 ]] && image_is_current "$tag" "$hash"; then
    log "$tag cached"
    return 0
  fi

  local t0 ctx tmp_tag logf old_id name
  t0=$(now_s)
  name=${tag%:*}; name=${name##*/}
  logf=$LOG_DIR/$name.log
  ctx=$(mktemp -d "$CACHE/image-build.XXXXXX")
  tmp_tag="breakfix-building/$name:$hash-$$"
  # shellcheck disable=SC2064 # expand now: these locals are gone when the trap runs
  trap "rm -rf '$ctx'; docker rmi -f '$tmp_tag' >/dev/null 2>&1 || true" EXIT
  cp -a "$dir/." "$ctx/"
  local f
  for f in "$@"; do ln -f "$f" "$ctx/" 2>/dev/null || cp -a "$f" "$ctx/"; done

  # Legacy builder: it resolves FROM breakfix/debian-base from the local store
  # and never talks to a registry (BuildKit on dockerd 20.10 may try to).
  DOCKER_BUILDKIT=0 docker build --pull=false --label "$BF_INPUTS_LABEL=$hash" \
    --label "org.opencontainers.image.source=breakfix images/${dir#"$REPO_ROOT"/images/}" \
    -t "$tmp_tag" "$ctx" >"$logf" 2>&1 \
    || fail "docker build $tag failed: $(grep -v '^\s*$' "$logf" | tail -n1 | cut -c1-200) (log: $logf)"
  "$verify" "$tmp_tag" || fail "$tag was built but does not work (verify step $verify); not tagged (log: $logf)"

  old_id=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  tag_built_image "$tmp_tag" "$tag"
  # the previous build is now dangling: drop it unless something still uses it
  if [[ -n $old_id && $old_id != "$(docker image inspect --format '{{.Id}}' "$tag")" ]]; then
    docker rmi "$old_id" >/dev/null 2>&1 || true
  fi
  rm -rf "$ctx"
  trap - EXIT
  log "$tag built in $(($(now_s) - t0))s ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'), inputs $hash)"
}

# run_expect IMAGE EXPECT ENTRYPOINT ARGS...: running IMAGE with ARGS prints
# EXPECT. ENTRYPOINT "" keeps the image's own (so it is checked too), else
# it overrides it.
run_expect() {
  local image=$1 expect=$2 entrypoint=$3 out
  shift 3
  local -a ep=()
  [[ -z $entrypoint ]] || ep=(--entrypoint "$entrypoint")
  out=$(docker run --rm --network none "${ep[@]}" "$image" "$@" 2>&1) || {
    log "$image: ${entrypoint:-<entrypoint>} $* failed: ${out:0:300}"
    return 1
  }
  [[ $out == *"$expect"* ]] || { log "$image: ${entrypoint:-<entrypoint>} $* printed '${out:0:300}', expected '$expect'"; return 1; }
}

# Each checks the image's entrypoint, and that the binary is found on PATH
# under the name kubeadm's manifests use.
verify_k8s() {
  run_expect "$1" "Kubernetes $K8S_VERSION" "" --version \
    && run_expect "$1" "Kubernetes $K8S_VERSION" "$VERIFY_BIN" --version
}
verify_kube_proxy() {
  run_expect "$1" "Kubernetes $K8S_VERSION" "" --version \
    && run_expect "$1" "iptables v" iptables --version \
    && run_expect "$1" "conntrack v" conntrack --version
}
verify_etcd() {
  run_expect "$1" "etcd Version: ${ETCD_MODULE_VERSION#v}" "" --version \
    && run_expect "$1" "etcd Version: ${ETCD_MODULE_VERSION#v}" etcd --version \
    && run_expect "$1" "etcdctl version: ${ETCD_MODULE_VERSION#v}" etcdctl version
}
verify_coredns() { run_expect "$1" "CoreDNS-${COREDNS_VERSION#v}" "" -version; }
verify_pause() {
  run_expect "$1" "breakfix-pause" "" -v || return 1
  # as PID 1 it must exit 0, promptly, on SIGTERM
  local cid rc
  cid=$(docker run -d --network none "$1") || return 1
  sleep 0.5
  docker stop -t 5 "$cid" >/dev/null
  rc=$(docker inspect --format '{{.State.ExitCode}}' "$cid")
  docker rm -f "$cid" >/dev/null
  [[ $rc == 0 ]] || { log "$1: pause exited $rc on SIGTERM"; return 1; }
}

# verify_tier IMAGE: start it for real and wait for the ready line.
verify_tier() {
  local cid t0 deadline
  t0=$(now_s)
  deadline=$((t0 + 180))
  cid=$(docker run -d --tmpfs /var/lib/breakfix "$1") || return 1
  while ! docker logs "$cid" 2>/dev/null | grep -q '^breakfix-apiserver-tier ready$'; do
    if [[ $(docker inspect --format '{{.State.Running}}' "$cid") != true ]] || (($(now_s) > deadline)); then
      log "$1 did not become ready; its output:"
      docker logs "$cid" 2>&1 | tail -n 60 >&2
      docker rm -f "$cid" >/dev/null
      return 1
    fi
    sleep 0.2
  done
  docker rm -f "$cid" >/dev/null
  log "$1 verified: ready $(($(now_s) - t0))s after docker run"
}

build_control_plane() {
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    VERIFY_BIN=$b build_image "${KUBEADM_IMAGES[$b]}" "$CP_DIR/$b" verify_k8s -- "$K8S_BIN/$b"
  done
  build_image "${KUBEADM_IMAGES[kube-proxy]}" "$CP_DIR/kube-proxy" verify_kube_proxy -- "$K8S_BIN/kube-proxy"
  build_image "${KUBEADM_IMAGES[etcd]}" "$CP_DIR/etcd" verify_etcd -- "$ETCD_BIN/etcd" "$ETCD_BIN/etcdctl"
  build_image "${KUBEADM_IMAGES[coredns]}" "$CP_DIR/coredns" verify_coredns -- "$COREDNS_BIN/coredns"
  local pause
  pause=$(pause_binary "${KUBEADM_IMAGES[pause]##*:}")
  build_image "${KUBEADM_IMAGES[pause]}" "$CP_DIR/pause" verify_pause -- "$pause"
}

build_apiserver_tier() {
  build_image "$TIER_IMAGE" "$TIER_DIR" verify_tier -- \
    "$ETCD_BIN/etcd" "$K8S_BIN/kube-apiserver" "$K8S_BIN/kube-controller-manager"
}

main() {
  local -a want=("$@")
  # The API-server tier runs the default version only.
  if ((${#want[@]} == 0)); then
    want=(control-plane)
    [[ $K8S_VERSION != "$K8S_DEFAULT_VERSION" ]] || want+=(apiserver-tier)
  fi
  local w
  for w in "${want[@]}"; do
    [[ $w == control-plane || $w == apiserver-tier ]] || die "unknown target '$w' (known: control-plane apiserver-tier)"
  done
  local t0
  t0=$(now_s)
  ensure_prereqs
  # One run at a time per cache (the justfile and node-image.sh flows may overlap).
  # Taken after docker.sh: a dockerd started while fd 8 is open would hold it.
  exec 8>"$CACHE/.build-images.lock"
  flock -n 8 || { log "waiting for another build-images.sh to finish"; flock 8; }
  ensure_components
  ensure_base
  read_kubeadm_images
  for w in "${want[@]}"; do
    case $w in
      control-plane) build_control_plane ;;
      apiserver-tier) build_apiserver_tier ;;
    esac
  done
  log "images ready ($(($(now_s) - t0))s)"
}

main "$@"
