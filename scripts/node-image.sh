#!/usr/bin/env bash
# Build the kind node image breakfix/node:$K8S_VERSION with no registry
# (BREAKFIX_K8S_VERSION=vX.Y.Z: another version listed in kubernetes.versions;
# the node-base, netd and local-path-provisioner stages are shared by all):
#
#   1. breakfix/node-base:$DEBIAN_SUITE  debootstrap rootfs (systemd, Debian's
#      containerd/runc/CNI plugins, iptables, ...) + kind $KIND_VERSION's
#      node files (images/base/files from kind's Go module) + images/node/files
#      (containerd config, breakfix-runc, the kubelet drop-in folder
#      /etc/kubernetes/kubelet.conf.d with failCgroupV1: false) -> docker import.
#   2. breakfix/netd:$NETD_TAG            the CNI daemon (images/netd), FROM debian-base.
#   3. breakfix/local-path-provisioner:$LPP_VERSION  from its Go module, FROM debian-base.
#   4. breakfix/node:$K8S_VERSION        node-base + kubeadm/kubelet/kubectl in
#      /usr/bin, /kind/version, /kind/manifests/default-{cni,storage}.yaml, and
#      every image preloaded into containerd's k8s.io namespace: the ones
#      `kubeadm config images list` names (pause = sandbox_image), netd,
#      local-path-provisioner and its helper (debian-base).
#
# Every stage is cached by an inputs label and built under a temporary tag.
# Needs: scripts/docker.sh, scripts/base-image.sh, scripts/build-components.sh
# and scripts/build-images.sh done (cluster.sh runs them in order).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly NODE_IMAGE="breakfix/node:${K8S_VERSION}"
readonly NODE_BASE_IMAGE="breakfix/node-base:${DEBIAN_SUITE}"
readonly BASE_IMAGE="breakfix/debian-base:${DEBIAN_SUITE}"
readonly NETD_TAG=0.1.0
readonly NETD_IMAGE="breakfix/netd:${NETD_TAG}"
readonly LPP_VERSION=v0.0.30
readonly LPP_IMAGE="breakfix/local-path-provisioner:${LPP_VERSION}"
readonly HELPER_IMAGE="$BASE_IMAGE"
readonly MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
readonly K8S_BIN="${BREAKFIX_K8S_BIN:-$CACHE/components/k8s-${K8S_VERSION}/bin}"
readonly NODE_DIR="$REPO_ROOT/images/node"
readonly LOGS="$CACHE/logs"

KIND_DIR=""
CLEANUP=()
cleanup() {
  local c
  for c in "${CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

rebuild() { [[ ${BREAKFIX_REBUILD:-0} == 1 ]]; }

# kind's module source: its images/base/files are the node-image files.
find_kind_module() {
  KIND_DIR=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kind@${KIND_VERSION}" 2>/dev/null | jq -r '.Dir // empty') || true
  [[ -n $KIND_DIR && -d $KIND_DIR/images/base/files ]] \
    || die "cannot get sigs.k8s.io/kind@${KIND_VERSION} from the Go module proxy ($(go env GOPROXY)); check network access to it"
}

packages() { grep -vE '^\s*(#|$)' "$NODE_DIR/base/packages" | paste -sd, -; }

# ---------------------------------------------------------------- node-base
# debootstrap_rootfs DIR: the plain debootstrap result, cached as a tarball
# keyed by the package list (so changing breakfix's node files does not
# re-run debootstrap).
debootstrap_rootfs() {
  local rootfs=$1 key tarball
  key=$(inputs_hash "$NODE_DIR/base/packages" -- "$DEBIAN_SUITE" "$MIRROR")
  tarball="$CACHE/rootfs/node-$DEBIAN_SUITE-$key.tar"
  mkdir -p "$rootfs" "$CACHE/rootfs" "$CACHE/debootstrap/debs"
  if [[ -f $tarball ]] && ! rebuild; then
    log "node rootfs from cache ($tarball)"
    tar --numeric-owner -xpf "$tarball" -C "$rootfs"
    return
  fi
  log "debootstrap node rootfs ($(packages | tr , ' ')) -- log: $LOGS/node-base.debootstrap.log"
  debootstrap --variant=minbase --include="$(packages)" --cache-dir="$CACHE/debootstrap/debs" \
    "$DEBIAN_SUITE" "$rootfs" "$MIRROR" >"$LOGS/node-base.debootstrap.log" 2>&1 \
    || fail "debootstrap of the node rootfs failed (see $LOGS/node-base.debootstrap.log)"
  rm -f "$CACHE/rootfs/node-$DEBIAN_SUITE-"*.tar
  tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
}

build_node_base() {
  local hash
  hash=$(inputs_hash "$NODE_DIR/base" "$NODE_DIR/files" "$KIND_DIR/images/base/files" -- "$DEBIAN_SUITE" "$KIND_VERSION" "node-base-v1")
  if ! rebuild && image_is_current "$NODE_BASE_IMAGE" "$hash"; then
    log "$NODE_BASE_IMAGE is current"
    return
  fi
  local t0 work rootfs tmp_tag f
  t0=$(now_s)
  work=$(mktemp -d "$CACHE/node-base-build.XXXXXX")
  rootfs="$work/rootfs"
  tmp_tag="breakfix/node-base:building-$$"
  CLEANUP+=("rm -rf '$work'" "docker rmi -f '$tmp_tag'")

  debootstrap_rootfs "$rootfs"

  # kind's node files, as kind's images/base/Dockerfile copies them
  local kf="$KIND_DIR/images/base/files"
  install -d -m 0755 "$rootfs/kind" "$rootfs/kind/bin" "$rootfs/LICENSES" \
    "$rootfs/etc/containerd" "$rootfs/etc/default" "$rootfs/etc/sysctl.d" \
    "$rootfs/etc/systemd/system/kubelet.service.d"
  install -m 0755 "$kf"/usr/local/bin/* "$rootfs/usr/local/bin/"
  for f in "$kf"/kind/*; do [[ -f $f ]] && install -m 0644 "$f" "$rootfs/kind/"; done
  install -m 0755 "$kf"/kind/bin/* "$rootfs/kind/bin/"
  install -m 0644 "$kf"/LICENSES/* "$rootfs/LICENSES/"
  for f in "$kf"/etc/*; do [[ -f $f ]] && install -m 0644 "$f" "$rootfs/etc/"; done
  install -m 0644 "$kf"/etc/containerd/* "$rootfs/etc/containerd/"
  install -m 0644 "$kf"/etc/default/* "$rootfs/etc/default/"
  install -m 0644 "$kf"/etc/sysctl.d/* "$rootfs/etc/sysctl.d/"
  for f in "$kf"/etc/systemd/system/*; do [[ -f $f ]] && install -m 0644 "$f" "$rootfs/etc/systemd/system/"; done
  install -m 0644 "$kf"/etc/systemd/system/kubelet.service.d/* "$rootfs/etc/systemd/system/kubelet.service.d/"
  # Debian ships containerd in /usr/bin, kind's unit expects /usr/local/bin
  sed -i 's#/usr/local/bin/containerd#/usr/bin/containerd#' "$rootfs/etc/systemd/system/containerd.service"
  # breakfix's own files (containerd config, runc wrapper, sysctls)
  (cd "$NODE_DIR/files" && find . -type f) | while read -r f; do
    install -D -m "$(stat -c %a "$NODE_DIR/files/$f")" "$NODE_DIR/files/$f" "$rootfs/${f#./}"
  done

  install -m 0755 "$NODE_DIR/base/setup.sh" "$rootfs/tmp/breakfix-setup.sh"
  chroot "$rootfs" /tmp/breakfix-setup.sh >"$LOGS/node-base.setup.log" 2>&1 \
    || fail "node rootfs setup failed (see $LOGS/node-base.setup.log)"
  rm -f "$rootfs/tmp/breakfix-setup.sh"

  tar --numeric-owner -C "$rootfs" -c . | docker import - "$tmp_tag-raw" >/dev/null \
    || fail "docker import of the node rootfs failed"
  CLEANUP+=("docker rmi -f '$tmp_tag-raw'")
  # image config as kind's base image has it (docker import cannot set STOPSIGNAL)
  printf '%s\n' "FROM $tmp_tag-raw" \
    'ENV container=docker' \
    'STOPSIGNAL SIGRTMIN+3' \
    'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    | docker build -q --label "$BF_INPUTS_LABEL=$hash" -t "$tmp_tag" - >/dev/null 2>"$LOGS/build.node-base.log" \
    || fail "docker build of the node-base config failed (see $LOGS/build.node-base.log)"
  docker rmi "$tmp_tag-raw" >/dev/null
  docker run --rm --entrypoint /bin/sh "$tmp_tag" -euc '
    containerd --version >/dev/null; runc --version >/dev/null; ctr --version >/dev/null
    test -x /usr/local/bin/entrypoint && test -x /usr/local/bin/breakfix-runc
    test -L /sbin/init && test -s /etc/containerd/cri-base.json
    grep -q "^failCgroupV1: false$" /etc/kubernetes/kubelet.conf.d/50-breakfix-cgroupv1.conf
    grep -q -- "--config-dir=/etc/kubernetes/kubelet.conf.d" /etc/default/kubelet
    systemctl is-enabled kubelet containerd undo-mount-hacks >/dev/null' \
    || fail "verification of the node rootfs failed"
  tag_built_image "$tmp_tag" "$NODE_BASE_IMAGE"
  rm -rf "$work"
  log "built $NODE_BASE_IMAGE ($(( $(now_s) - t0 ))s)"
}

# ---------------------------------------------------------------- small images
# build_small_image IMAGE HASH CONTEXT_DIR: docker build with the inputs label.
build_small_image() {
  local image=$1 hash=$2 ctx=$3 tmp_tag="${1%%:*}:building-$$"
  CLEANUP+=("docker rmi -f '$tmp_tag'")
  docker build -q --label "$BF_INPUTS_LABEL=$hash" -t "$tmp_tag" "$ctx" >/dev/null 2>"$LOGS/build.$(basename "${image%%:*}").log" \
    || fail "docker build of $image failed (see $LOGS/build.$(basename "${image%%:*}").log)"
  tag_built_image "$tmp_tag" "$image"
}

build_netd() {
  local hash
  hash=$(inputs_hash "$REPO_ROOT/images/netd" -- "$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")" "$(go env GOVERSION)")
  if ! rebuild && image_is_current "$NETD_IMAGE" "$hash"; then
    log "$NETD_IMAGE is current"
    return
  fi
  local ctx
  ctx=$(mktemp -d)
  CLEANUP+=("rm -rf '$ctx'")
  (cd "$REPO_ROOT/images/netd" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$ctx/netd" .) \
    || fail "go build of images/netd failed"
  printf 'FROM %s\nCOPY netd /usr/local/bin/netd\nENTRYPOINT ["/usr/local/bin/netd"]\n' "$BASE_IMAGE" >"$ctx/Dockerfile"
  build_small_image "$NETD_IMAGE" "$hash" "$ctx"
  log "built $NETD_IMAGE"
}

build_local_path_provisioner() {
  local hash
  hash=$(inputs_hash -- "lpp-recipe-v1" "$LPP_VERSION" "$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")" "$(go env GOVERSION)")
  if ! rebuild && image_is_current "$LPP_IMAGE" "$hash"; then
    log "$LPP_IMAGE is current"
    return
  fi
  local ctx
  ctx=$(mktemp -d)
  CLEANUP+=("rm -rf '$ctx'")
  log "go install github.com/rancher/local-path-provisioner@$LPP_VERSION (log: $LOGS/local-path-provisioner.go.log)"
  (cd /tmp && CGO_ENABLED=0 GOBIN="$ctx" go install -trimpath -ldflags '-s -w' \
    "github.com/rancher/local-path-provisioner@$LPP_VERSION") >"$LOGS/local-path-provisioner.go.log" 2>&1 \
    || fail "building local-path-provisioner $LPP_VERSION failed (see $LOGS/local-path-provisioner.go.log)"
  printf 'FROM %s\nCOPY local-path-provisioner /usr/local/bin/local-path-provisioner\nENTRYPOINT ["/usr/local/bin/local-path-provisioner"]\n' \
    "$BASE_IMAGE" >"$ctx/Dockerfile"
  build_small_image "$LPP_IMAGE" "$hash" "$ctx"
  log "built $LPP_IMAGE"
}

# ---------------------------------------------------------------- node
check_components() {
  local b
  for b in kubeadm kubelet kubectl; do
    [[ -x $K8S_BIN/$b ]] || die "missing $K8S_BIN/$b; run: bash scripts/build-components.sh"
  done
  local v
  v=$("$K8S_BIN/kubeadm" version -o short 2>/dev/null || true)
  [[ $v == "$K8S_VERSION" ]] || die "$K8S_BIN/kubeadm reports '${v}', want $K8S_VERSION; rerun scripts/build-components.sh"
}

# required_images: kubeadm's list for K8S_VERSION (pause included), one per line.
required_images() {
  "$K8S_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null
}

# normalize_ref REF: the fully qualified name containerd stores (docker.io/... for
# Docker Hub style names, library/ for single-component ones).
normalize_ref() {
  local ref=$1 first=${1%%/*}
  if [[ $ref != */* ]]; then
    echo "docker.io/library/$ref"
  elif [[ $first == *.* || $first == *:* || $first == localhost ]]; then
    echo "$ref"
  else
    echo "docker.io/$ref"
  fi
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null; }

build_node() {
  local -a kubeadm_images preload
  mapfile -t kubeadm_images < <(required_images)
  ((${#kubeadm_images[@]} >= 6)) || fail "kubeadm config images list printed too little: ${kubeadm_images[*]}"
  local pause="" img ids=""
  for img in "${kubeadm_images[@]}"; do
    [[ $img == *"/pause:"* ]] && pause=$img
    [[ -n $(image_id "$img") ]] || die "image $img (from kubeadm config images list) is not in docker; run: bash scripts/build-images.sh"
  done
  [[ -n $pause ]] || fail "no pause image in kubeadm's list"
  preload=("${kubeadm_images[@]}" "$NETD_IMAGE" "$LPP_IMAGE" "$HELPER_IMAGE")
  for img in "$NODE_BASE_IMAGE" "${preload[@]}"; do ids+="$img=$(image_id "$img") "; done

  local hash
  hash=$(inputs_hash "${BASH_SOURCE[0]}" "$NODE_DIR/manifests" "$K8S_BIN/kubeadm" "$K8S_BIN/kubelet" "$K8S_BIN/kubectl" \
    -- "$K8S_VERSION" "$ids")
  if ! rebuild && image_is_current "$NODE_IMAGE" "$hash"; then
    log "$NODE_IMAGE is current"
    return
  fi

  local t0 ctr tmp_tag
  t0=$(now_s)
  ctr="breakfix-node-build-$$"
  tmp_tag="breakfix/node:building-$$"
  CLEANUP+=("docker rm -f -v '$ctr'" "docker rmi -f '$tmp_tag'")
  docker run -d --name "$ctr" --entrypoint sleep --security-opt seccomp=unconfined \
    "$NODE_BASE_IMAGE" infinity >/dev/null || fail "cannot start the node build container"
  dx() { docker exec "$ctr" "$@"; }

  local b
  for b in kubeadm kubelet kubectl; do
    docker cp "$K8S_BIN/$b" "$ctr:/usr/bin/$b" >/dev/null
    dx chmod 0755 "/usr/bin/$b"
    dx chown root:root "/usr/bin/$b"
  done
  printf '%s' "$K8S_VERSION" | docker exec -i "$ctr" sh -c 'cat >/kind/version'
  dx sed -i "s#@SANDBOX_IMAGE@#$pause#" /etc/containerd/config.toml
  dx mkdir -p /kind/manifests
  sed -e "s#@NETD_IMAGE@#$NETD_IMAGE#g" "$NODE_DIR/manifests/default-cni.yaml" \
    | docker exec -i "$ctr" sh -c 'cat >/kind/manifests/default-cni.yaml'
  sed -e "s#@LPP_IMAGE@#$LPP_IMAGE#g" -e "s#@HELPER_IMAGE@#$HELPER_IMAGE#g" "$NODE_DIR/manifests/default-storage.yaml" \
    | docker exec -i "$ctr" sh -c 'cat >/kind/manifests/default-storage.yaml'

  # Import into the node's containerd, as kind's node-image builder does
  # (content only; the CRI unpacks on first use).
  log "preloading ${#preload[@]} images into the node's containerd"
  dx sh -c 'nohup containerd --config /etc/containerd/config.toml --state /tmp/ctd-state --address /tmp/ctd.sock \
      >/tmp/ctd.log 2>&1 &'
  dx sh -c 'for i in $(seq 1 50); do ctr --address /tmp/ctd.sock version >/dev/null 2>&1 && exit 0; sleep 0.2; done; cat /tmp/ctd.log; exit 1' \
    >"$LOGS/node.containerd.log" 2>&1 || fail "containerd did not start in the build container (see $LOGS/node.containerd.log)"
  docker save "${preload[@]}" \
    | docker exec -i "$ctr" ctr --address /tmp/ctd.sock --namespace k8s.io images import \
        --all-platforms --no-unpack --digests - >"$LOGS/node.import.log" 2>&1 \
    || fail "importing images into the node's containerd failed (see $LOGS/node.import.log)"
  local have missing=()
  have=$(dx ctr --address /tmp/ctd.sock --namespace k8s.io images ls -q)
  for img in "${preload[@]}"; do
    img=$(normalize_ref "$img")
    grep -qxF "$img" <<<"$have" || missing+=("$img")
  done
  ((${#missing[@]} == 0)) || fail "images missing in the node's containerd after import: ${missing[*]}"
  dx sh -c 'pkill -x containerd; for i in $(seq 1 50); do pgrep -x containerd >/dev/null || break; sleep 0.2; done
            rm -rf /tmp/ctd-state /tmp/ctd.sock /tmp/ctd.log /var/lib/containerd/tmpmounts/*'

  dx sh -euc 'kubeadm version -o short >/dev/null; kubelet --version >/dev/null; kubectl version --client >/dev/null
              test -s /kind/version && test -s /kind/manifests/default-cni.yaml && test -s /kind/manifests/default-storage.yaml
              ! grep -q @SANDBOX_IMAGE@ /etc/containerd/config.toml' \
    || fail "verification of the node build container failed"

  docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    --change 'CMD []' \
    --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
    --change "LABEL $BF_INPUTS_LABEL=$hash" \
    "$ctr" "$tmp_tag" >/dev/null || fail "docker commit of the node image failed"
  docker rm -f -v "$ctr" >/dev/null
  tag_built_image "$tmp_tag" "$NODE_IMAGE"
  log "built $NODE_IMAGE ($(docker image inspect -f '{{.Size}}' "$NODE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), $(( $(now_s) - t0 ))s)"
}

main() {
  require_root
  require_docker
  require_runnable_here
  mkdir -p "$LOGS"
  [[ -n $(image_id "$BASE_IMAGE") ]] || die "$BASE_IMAGE missing; run: bash scripts/base-image.sh"
  command -v go >/dev/null || die "go not found in PATH (need Go to build images/netd)"
  find_kind_module
  build_node_base
  build_netd
  build_local_path_provisioner
  check_components
  build_node
}

main "$@"
