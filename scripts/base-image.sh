#!/usr/bin/env bash
# Build breakfix/debian-base:bookworm: a debootstrap --variant=minbase Debian
# with iptables (+ a mode-detecting wrapper), conntrack, iproute2,
# ca-certificates, openssl and procps. Images that need a userland (kube-proxy,
# the CNI daemon, the workload, the apiserver test tier) build FROM it.
#
# Cached: skipped when the image exists with a matching inputs label
# (dev.breakfix.inputs = hash of this script, images/debian-base/ and the suite).
# BREAKFIX_REBUILD=1 forces a rebuild. A failed build never leaves the tag behind.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly IMAGE="breakfix/debian-base:${DEBIAN_SUITE}"
readonly MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
readonly PACKAGES=iptables,conntrack,iproute2,ca-certificates,openssl,procps
readonly FILES_DIR="$REPO_ROOT/images/debian-base"

build_rootfs() {
  local rootfs=$1
  mkdir -p "$CACHE/debootstrap/debs"
  log "debootstrap $DEBIAN_SUITE (minbase + $PACKAGES) from $MIRROR"
  debootstrap --variant=minbase --include="$PACKAGES" \
    --cache-dir="$CACHE/debootstrap/debs" \
    "$DEBIAN_SUITE" "$rootfs" "$MIRROR" >"$CACHE/logs/base-image.debootstrap.log" 2>&1 \
    || fail "debootstrap failed (see $CACHE/logs/base-image.debootstrap.log; is $MIRROR reachable?)"

  install -m 0755 "$FILES_DIR/iptables-wrapper" "$rootfs/usr/sbin/iptables-wrapper"
  chroot "$rootfs" /bin/sh -eu <<'EOF'
for t in iptables ip6tables; do
  update-alternatives --quiet --install /usr/sbin/$t $t /usr/sbin/iptables-wrapper 100 \
    --slave /usr/sbin/$t-restore $t-restore /usr/sbin/iptables-wrapper \
    --slave /usr/sbin/$t-save $t-save /usr/sbin/iptables-wrapper
done
# keep later apt installs (in images built FROM this one) small
cat >/etc/dpkg/dpkg.cfg.d/01-breakfix-nodoc <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat >/etc/apt/apt.conf.d/01-breakfix-small <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
CFG
EOF
  # trim: docs, man pages, locales, apt and debootstrap leftovers
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -rf "$rootfs"/usr/share/{man,info}/* "$rootfs"/usr/share/locale/*/ \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/log/* "$rootfs"/debootstrap
  : >"$rootfs/etc/machine-id"
  echo "breakfix-base" >"$rootfs/etc/hostname"
}

verify_image() {
  local img=$1
  docker run --rm --network none "$img" sh -euc '
    iptables --version && iptables-save --version >/dev/null
    conntrack --version >/dev/null && ip -V >/dev/null && openssl version >/dev/null
    ps --version >/dev/null && test -s /etc/ssl/certs/ca-certificates.crt' >/dev/null \
    || fail "verification of $img failed (a tool is missing)"
}

main() {
  require_root
  require_docker
  command -v debootstrap >/dev/null || { apt-get install -y -qq debootstrap >/dev/null || die "debootstrap missing; apt-get install debootstrap"; }

  local hash
  hash=$(inputs_hash "${BASH_SOURCE[0]}" "$FILES_DIR" -- "$DEBIAN_SUITE" "$PACKAGES")
  if [[ ${BREAKFIX_REBUILD:-0} != 1 ]] && image_is_current "$IMAGE" "$hash"; then
    log "$IMAGE is current (inputs $hash)"
    return 0
  fi

  local t0 work tmp_tag
  t0=$(now_s)
  mkdir -p "$CACHE/logs"
  work=$(mktemp -d "$CACHE/base-build.XXXXXX")
  tmp_tag="breakfix/debian-base:building-$$"
  # shellcheck disable=SC2064
  trap "rm -rf '$work'; docker rmi -f '$tmp_tag' >/dev/null 2>&1 || true" EXIT

  build_rootfs "$work/rootfs"
  tar --numeric-owner -C "$work/rootfs" -c . | docker import \
    --change "LABEL $BF_INPUTS_LABEL=$hash" \
    --change "LABEL org.opencontainers.image.description=\"breakfix debian-base ($DEBIAN_SUITE minbase)\"" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    - "$tmp_tag" >/dev/null || fail "docker import failed"
  verify_image "$tmp_tag"
  tag_built_image "$tmp_tag" "$IMAGE"
  log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), inputs $hash, $(( $(now_s) - t0 ))s)"
}

main "$@"
