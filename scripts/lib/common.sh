# shellcheck shell=bash
# Helpers shared by breakfix's image and cluster scripts. Source it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# It sets REPO_ROOT, CACHE, sources versions.env, and defines log/die/
# inputs_hash/image_label/image_is_current/tag_built_image.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${BREAKFIX_CACHE:-$HOME/.cache/breakfix}"
# shellcheck source=../../versions.env
source "$REPO_ROOT/versions.env"
export REPO_ROOT CACHE

readonly BF_INPUTS_LABEL=dev.breakfix.inputs
readonly K8S_VERSIONS_FILE=$REPO_ROOT/kubernetes.versions
# The version versions.env pins: the default cluster, the API-server tier.
readonly K8S_DEFAULT_VERSION=$K8S_VERSION

_bf_script() { basename "${BASH_SOURCE[-1]:-$0}"; }

log() { echo "$(_bf_script): $*" >&2; }

# die MESSAGE: one clear line on stderr, exit 2 (environment/prerequisite problem).
die() { echo "$(_bf_script): error: $*" >&2; exit 2; }

# k8s_versions: the versions kubernetes.versions lists, one per line.
k8s_versions() {
  awk '$1 ~ /^v[0-9]+\.[0-9]+\.[0-9]+$/ { print $1 }' "$K8S_VERSIONS_FILE"
}

# select_k8s_version VERSION: set K8S_VERSION and, from its line of
# kubernetes.versions, ETCD_MODULE_VERSION, COREDNS_VERSION and K8S_CGROUPV1.
# An unlisted version is an error (exit 2) naming the listed ones.
select_k8s_version() {
  local want=$1 line
  [[ -f $K8S_VERSIONS_FILE ]] || die "$K8S_VERSIONS_FILE is missing; pull the latest main"
  line=$(awk -v v="$want" '$1 == v { print $1, $2, $3, $4; exit }' "$K8S_VERSIONS_FILE")
  [[ -n $line ]] || die "Kubernetes $want is not in kubernetes.versions (listed: $(k8s_versions | paste -sd' ')); add a line for it with the etcd and CoreDNS versions \`kubeadm config images list --kubernetes-version $want\` names"
  read -r K8S_VERSION ETCD_MODULE_VERSION COREDNS_VERSION K8S_CGROUPV1 <<<"$line"
  case $K8S_CGROUPV1 in
    warn | opt-in | removed) ;;
    *) die "kubernetes.versions: $want has cgroupv1 '$K8S_CGROUPV1'; expected warn, opt-in or removed" ;;
  esac
  export K8S_VERSION ETCD_MODULE_VERSION COREDNS_VERSION K8S_CGROUPV1
}

# BREAKFIX_K8S_VERSION picks another listed version for every script.
select_k8s_version "${BREAKFIX_K8S_VERSION:-$K8S_VERSION}"

# host_cgroup_v1: true when this host's memory controller is on cgroup v1
# (what the kubelet in a kind node will see).
host_cgroup_v1() { [[ ! -f /sys/fs/cgroup/cgroup.controllers ]]; }

# require_runnable_here: exit 2 when K8S_VERSION's kubelet cannot run on this
# host's cgroups at all.
require_runnable_here() {
  if [[ $K8S_CGROUPV1 == removed ]] && host_cgroup_v1; then
    die "Kubernetes $K8S_VERSION cannot run on this host: its kubelet has no cgroup v1 support and this host's cgroups are v1; use a host with cgroup v2 (unified hierarchy) or an older version"
  fi
}

# fail MESSAGE: one clear line on stderr, exit 1 (a build or check failed).
fail() { echo "$(_bf_script): failed: $*" >&2; exit 1; }

require_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo bash $0)"
}

require_docker() {
  docker info >/dev/null 2>&1 || die "docker is not running; run: bash scripts/docker.sh"
}

# inputs_hash FILE_OR_DIR... [-- STRING...]: a short hash of file contents
# (recursively, in sorted path order) and of extra strings. Used as the
# cache key label on images.
inputs_hash() {
  local -a paths=() strings=()
  while (($#)); do
    if [[ $1 == -- ]]; then shift; strings=("$@"); break; fi
    paths+=("$1"); shift
  done
  {
    local p
    for p in "${paths[@]}"; do
      if [[ -d $p ]]; then
        (cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
      else
        # content + file name only: the hash must not depend on how the
        # caller spelled the path (relative vs absolute)
        printf '%s  %s\n' "$(sha256sum <"$p" | cut -d' ' -f1)" "$(basename "$p")"
      fi
    done
    printf '%s\n' "${strings[@]}"
  } | sha256sum | cut -c1-16
}

# image_label IMAGE LABEL: the label's value, empty if the image or label is missing.
image_label() {
  docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# image_is_current IMAGE HASH: true when IMAGE exists with our inputs label = HASH.
image_is_current() {
  [[ -n $2 && $(image_label "$1" "$BF_INPUTS_LABEL") == "$2" ]]
}

# tag_built_image TMP FINAL: move a verified build from its temporary tag to the
# final one (so a failed build never leaves a broken image under FINAL).
tag_built_image() {
  local old new
  old=$(docker image inspect -f '{{.Id}}' "$2" 2>/dev/null || true)
  docker tag "$1" "$2"
  docker rmi "$1" >/dev/null
  new=$(docker image inspect -f '{{.Id}}' "$2")
  # Drop the image this one replaced (node images are ~1 GB each); docker
  # refuses while a container or a child image still uses it, which is fine.
  if [[ -n $old && $old != "$new" ]]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
}

# free_gib PATH: free space in GiB on PATH's filesystem.
free_gib() {
  df -P -BG "$1" | awk 'NR==2 {gsub("G","",$4); print $4}'
}

# now_s: seconds since the epoch, for timings.
now_s() { date +%s; }
