#!/usr/bin/env bash
# Build every binary a breakfix cluster runs, from Go modules only (no registry,
# no git clone), pinned by versions.env and kubernetes.versions, into a
# version-keyed cache outside the repo:
#
#   $CACHE/components/k8s-$K8S_VERSION/bin/{kube-apiserver,kube-controller-manager,
#       kube-scheduler,kube-proxy,kubelet,kubeadm,kubectl}
#   $CACHE/components/etcd-$ETCD_MODULE_VERSION/bin/{etcd,etcdctl}
#   $CACHE/components/coredns-$COREDNS_VERSION/bin/coredns
#   $CACHE/components/kind-$KIND_VERSION/bin/kind
#   $CACHE/components/helm-$HELM_VERSION/bin/helm
#   $CACHE/components/kustomize-$KUSTOMIZE_VERSION/bin/kustomize
#   $CACHE/bin/{kind,kubectl,helm,kustomize}  -> symlinks to the pinned versions above
#
# helm and kustomize render the baselines users keep as Helm charts or
# Kustomize overlays (`helm:` / `kustomize:` in a Baseline); breakfix runs them
# from $CACHE/bin, so rendering never downloads anything.
#
# BREAKFIX_K8S_VERSION=vX.Y.Z builds another version listed in
# kubernetes.versions (with the etcd and CoreDNS its line names); each version
# has its own folders, so versions never overwrite each other, and
# $CACHE/bin/kubectl stays the default version's.
#
# CACHE is ${BREAKFIX_CACHE:-$HOME/.cache/breakfix}. Each binary is built to a
# temporary name, checked with its own --version, then moved into place, so a
# failed build never leaves a broken binary. Binaries already present are
# skipped (a warm run takes about a second). BREAKFIX_REBUILD=1 rebuilds all.
#
# Kubernetes and etcd cannot be `go install`ed (their go.mod has replace
# directives pointing into the repo), so each is built through a small wrapper
# module generated under $CACHE/components/<name>/src; for Kubernetes its
# replace lines are generated from kubernetes' own go.mod in the module cache.
#
# Usage: scripts/build-components.sh [k8s] [etcd] [coredns] [kind] [helm] [kustomize]   (default: all)
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly K8S_BINS=(kube-apiserver kubelet kubeadm kube-controller-manager kube-scheduler kube-proxy kubectl)
readonly COMPONENTS_DIR="$CACHE/components"
readonly LOG_DIR="$CACHE/logs/build-components"
readonly GO_LDFLAGS_BASE="-s -w"

setup_go() {
  if ! command -v go >/dev/null; then
    [[ -x /usr/local/go/bin/go ]] || die "go not found (need Go >= 1.24 on PATH or at /usr/local/go/bin/go)"
    PATH="$PATH:/usr/local/go/bin"
  fi
  # -mod=mod: wrapper modules resolve their own requirements; GOTOOLCHAIN=local:
  # never download another Go toolchain; CGO off: static binaries for FROM scratch.
  export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
  mkdir -p "$COMPONENTS_DIR" "$LOG_DIR" "$CACHE/bin"
}

# go_failed WHAT LOG: one clear line saying why a go command failed, then exit.
go_failed() {
  local what=$1 logf=$2 last
  if grep -qE 'dial tcp|i/o timeout|no such host|connection refused|proxyconnect|TLS handshake|network is unreachable|403 Forbidden|410 Gone' "$logf"; then
    fail "$what: the Go module proxy is unreachable (GOPROXY=$(go env GOPROXY)); check network access and \`go env GOPROXY\` (log: $logf)"
  fi
  last=$(grep -v '^\s*$' "$logf" | tail -n1 | cut -c1-240)
  fail "$what: ${last:-unknown error} (log: $logf)"
}

# run_logged WHAT LOG CMD...: run CMD (niced: the machine is shared), output to LOG.
run_logged() {
  local what=$1 logf=$2
  shift 2
  nice -n 10 "$@" >>"$logf" 2>&1 || go_failed "$what" "$logf"
}

# is_built BIN: true when BIN exists and no rebuild was asked for.
is_built() {
  [[ ${BREAKFIX_REBUILD:-0} != 1 && -x $1 ]]
}

# install_checked TMP DEST EXPECT CMD...: run CMD (with the binary TMP as its
# first word) and check its output contains EXPECT, then mv TMP to DEST.
install_checked() {
  local tmp=$1 dest=$2 expect=$3 out
  shift 3
  out=$("$tmp" "$@" 2>&1) || { rm -f "$tmp"; fail "$(basename "$dest") built but \`$(basename "$dest") $*\` failed: ${out:0:200}"; }
  if [[ $out != *"$expect"* ]]; then
    rm -f "$tmp"
    fail "$(basename "$dest") built but \`$(basename "$dest") $*\` printed '${out:0:200}', expected '$expect'"
  fi
  mv -f "$tmp" "$dest"
}

# link_stable TARGET LINK: atomically point LINK at TARGET.
link_stable() {
  ln -sfn "$1" "$2.tmp.$$"
  mv -fT "$2.tmp.$$" "$2"
}

report() { log "$1 $2"; }

# Temporary files and dirs of builds in progress, removed on any exit.
TMP_PATHS=()
cleanup() { ((${#TMP_PATHS[@]} == 0)) || rm -rf "${TMP_PATHS[@]}"; }

# ---------------------------------------------------------------- kubernetes

# gen_k8s_module DIR: write the wrapper module (go.mod with one replace per
# staging module, generated from kubernetes' own go.mod; tools.go importing the
# commands) and tidy it. Skipped when DIR/.tidy-ok exists.
gen_k8s_module() {
  local dir=$1 logf=$LOG_DIR/k8s-$K8S_VERSION-module.log
  [[ -f $dir/.tidy-ok && ${BREAKFIX_REBUILD:-0} != 1 ]] && return 0
  local t0 staging_version upstream_mod
  t0=$(now_s)
  : >"$logf"
  staging_version="v0.${K8S_VERSION#v1.}" # v1.34.4 -> v0.34.4 (the published staging repos)
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && run_logged "download k8s.io/kubernetes@$K8S_VERSION" "$logf" \
    go mod download -json "k8s.io/kubernetes@$K8S_VERSION")
  upstream_mod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' "$logf" | head -n1)
  [[ -f $upstream_mod ]] || fail "go mod download did not report kubernetes' go.mod (log: $logf)"

  {
    echo "// Generated by breakfix scripts/build-components.sh; do not edit."
    echo "module breakfix.local/k8s-components"
    echo
    grep -E '^(go|godebug) ' "$upstream_mod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    awk -v ver="$staging_version" '
      $2 == "=>" && $3 ~ /^\.\/staging\/src\// { printf "\t%s => %s %s\n", $1, $1, ver }
      $1 == "replace" && $3 == "=>" && $4 ~ /^\.\/staging\/src\// { printf "\t%s => %s %s\n", $2, $2, ver }
    ' "$upstream_mod"
    echo ")"
  } >"$dir/go.mod"
  local n
  n=$(grep -c "=> .* $staging_version\$" "$dir/go.mod" || true)
  ((n > 0)) || fail "found no staging replace lines in $upstream_mod; its layout changed"

  {
    echo "//go:build tools"
    echo
    echo "// Package tools pins the Kubernetes commands breakfix builds."
    echo "package tools"
    echo
    echo "import ("
    local b
    for b in "${K8S_BINS[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
    echo ")"
  } >"$dir/tools.go"

  (cd "$dir" && run_logged "go mod tidy (k8s wrapper module)" "$logf" go mod tidy)
  touch "$dir/.tidy-ok"
  report "k8s wrapper module ($n staging replaces)" "generated in $(($(now_s) - t0))s"
}

k8s_ldflags() {
  local v=$K8S_VERSION major minor date
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  # buildDate = the release's publication time in the module proxy (reproducible).
  date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' \
    "$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$v.info" 2>/dev/null || true)
  local flags=$GO_LDFLAGS_BASE pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
  done
  echo "$flags"
}

build_k8s() {
  local root=$COMPONENTS_DIR/k8s-$K8S_VERSION
  local bindir=$root/bin b missing=()
  mkdir -p "$bindir"
  for b in "${K8S_BINS[@]}"; do
    if is_built "$bindir/$b"; then report "$b $K8S_VERSION" "cached"; else missing+=("$b"); fi
  done
  if ((${#missing[@]})); then
    gen_k8s_module "$root/src"
    local ldflags t0 tmp logf expect args
    ldflags=$(k8s_ldflags)
    for b in "${missing[@]}"; do
      t0=$(now_s)
      tmp="$bindir/.$b.tmp.$$"
      TMP_PATHS+=("$tmp")
      logf=$LOG_DIR/$b-$K8S_VERSION.log
      : >"$logf"
      (cd "$root/src" && run_logged "go build $b $K8S_VERSION" "$logf" \
        go build -trimpath -ldflags "$ldflags" -o "$tmp" "k8s.io/kubernetes/cmd/$b")
      expect=$K8S_VERSION
      case $b in
        kubeadm) args=(version -o short) ;;
        kubectl) args=(version --client) ;;
        *) args=(--version) ;;
      esac
      install_checked "$tmp" "$bindir/$b" "$expect" "${args[@]}"
      report "$b $K8S_VERSION" "built in $(($(now_s) - t0))s"
    done
  fi
  [[ $K8S_VERSION != "$K8S_DEFAULT_VERSION" ]] || link_stable "$bindir/kubectl" "$CACHE/bin/kubectl"
}

# ---------------------------------------------------------------------- etcd

build_etcd() {
  local v=$ETCD_MODULE_VERSION root=$COMPONENTS_DIR/etcd-$ETCD_MODULE_VERSION
  local bindir=$root/bin src=$root/src logf=$LOG_DIR/etcd-$ETCD_MODULE_VERSION.log
  mkdir -p "$bindir"
  if is_built "$bindir/etcd" && is_built "$bindir/etcdctl"; then
    report "etcd $v" "cached"; report "etcdctl $v" "cached"; return 0
  fi
  : >"$logf"
  local t0
  t0=$(now_s)
  if [[ ! -f $src/.tidy-ok || ${BREAKFIX_REBUILD:-0} == 1 ]]; then
    rm -rf "$src" && mkdir -p "$src"
    cat >"$src/go.mod" <<EOF
// Generated by breakfix scripts/build-components.sh; do not edit.
module breakfix.local/etcd-components

go 1.24

require (
	go.etcd.io/etcd/server/v3 $v
	go.etcd.io/etcd/etcdctl/v3 $v
)
EOF
    cat >"$src/tools.go" <<'EOF'
//go:build tools

// Package tools pins the etcd commands breakfix builds.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
EOF
    (cd "$src" && run_logged "go mod tidy (etcd wrapper module $v)" "$logf" go mod tidy)
    touch "$src/.tidy-ok"
  fi
  local ldflags="$GO_LDFLAGS_BASE" b pkg
  for b in etcd etcdctl; do
    is_built "$bindir/$b" && { report "$b $v" "cached"; continue; }
    [[ $b == etcd ]] && pkg=go.etcd.io/etcd/server/v3 || pkg=go.etcd.io/etcd/etcdctl/v3
    TMP_PATHS+=("$bindir/.$b.tmp.$$")
    (cd "$src" && run_logged "go build $b $v" "$logf" \
      go build -trimpath -ldflags "$ldflags" -o "$bindir/.$b.tmp.$$" "$pkg")
    if [[ $b == etcd ]]; then
      install_checked "$bindir/.$b.tmp.$$" "$bindir/$b" "etcd Version: ${v#v}" --version
    else
      install_checked "$bindir/.$b.tmp.$$" "$bindir/$b" "etcdctl version: ${v#v}" version
    fi
    report "$b $v" "built in $(($(now_s) - t0))s"
    t0=$(now_s)
  done
}

# ---------------------------------------------------- go install'able tools

# go_install NAME MODULE VERSION BIN EXPECT ARGS...: `go install MODULE@VERSION`
# into $COMPONENTS_DIR/NAME-VERSION/bin/BIN, checked with BIN ARGS.
# GO_EXTRA_LDFLAGS, when set, is added to the linker flags (version stamps).
go_install() {
  local name=$1 module=$2 v=$3 bin=$4 expect=$5
  shift 5
  local bindir=$COMPONENTS_DIR/$name-$v/bin logf=$LOG_DIR/$name-$v.log
  mkdir -p "$bindir"
  if is_built "$bindir/$bin"; then report "$name $v" "cached"; return 0; fi
  local t0 tmpdir
  t0=$(now_s)
  : >"$logf"
  tmpdir=$(mktemp -d "$bindir/.install.XXXXXX")
  TMP_PATHS+=("$tmpdir" "$bindir/.$bin.tmp.$$")
  # `go install m@v` runs outside any module: -mod must not be set.
  GOFLAGS=-buildvcs=false GOBIN=$tmpdir run_logged "go install $module@$v" "$logf" \
    go install -trimpath -ldflags "$GO_LDFLAGS_BASE ${GO_EXTRA_LDFLAGS:-}" "$module@$v"
  [[ -x $tmpdir/$bin ]] || { rm -rf "$tmpdir"; fail "go install $module@$v produced no $bin (log: $logf)"; }
  mv "$tmpdir/$bin" "$bindir/.$bin.tmp.$$"
  rm -rf "$tmpdir"
  install_checked "$bindir/.$bin.tmp.$$" "$bindir/$bin" "$expect" "$@"
  report "$name $v" "built in $(($(now_s) - t0))s"
}

build_coredns() {
  go_install coredns github.com/coredns/coredns "$COREDNS_VERSION" coredns "CoreDNS-${COREDNS_VERSION#v}" -version
}

build_kind() {
  go_install kind sigs.k8s.io/kind "$KIND_VERSION" kind "kind $KIND_VERSION" version
  link_stable "$COMPONENTS_DIR/kind-$KIND_VERSION/bin/kind" "$CACHE/bin/kind"
}

# Helm v4: v3 is past its end of support; v4 renders the same charts
# (apiVersion v1 and v2) and needs no network for a chart on disk. Without
# the version stamp its Makefile sets, it would call itself "v4.3".
build_helm() {
  GO_EXTRA_LDFLAGS="-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" go_install helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION" helm "Version:\"$HELM_VERSION\"" version --template '{{printf "Version:%q" .Version}}'
  link_stable "$COMPONENTS_DIR/helm-$HELM_VERSION/bin/helm" "$CACHE/bin/helm"
}

build_kustomize() {
  go_install kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" kustomize "$KUSTOMIZE_VERSION" version
  link_stable "$COMPONENTS_DIR/kustomize-$KUSTOMIZE_VERSION/bin/kustomize" "$CACHE/bin/kustomize"
}

main() {
  local -a want=("$@")
  ((${#want[@]})) || want=(k8s etcd coredns kind helm kustomize)
  setup_go
  trap cleanup EXIT
  # One build at a time per cache (H2's scripts may call this one too).
  exec 9>"$COMPONENTS_DIR/.lock"
  flock -n 9 || { log "waiting for another build-components.sh to finish"; flock 9; }
  local t0 c
  t0=$(now_s)
  for c in "${want[@]}"; do
    case $c in
      k8s | kubernetes) build_k8s ;;
      etcd) build_etcd ;;
      coredns) build_coredns ;;
      kind) build_kind ;;
      helm) build_helm ;;
      kustomize) build_kustomize ;;
      *) die "unknown component '$c' (known: k8s etcd coredns kind helm kustomize)" ;;
    esac
  done
  log "components ready in $CACHE ($(($(now_s) - t0))s)"
}

main "$@"
