#!/usr/bin/env bash
# The browser the game day's live page is tested in: Debian's chromium and
# chromium-driver (WebDriver), installed when missing, idempotently.
#
# Exit 0 when `chromium` and `chromedriver` are on PATH, 2 with one line
# saying what to fix.
set -euo pipefail

die() { echo "browser.sh: $*" >&2; exit 2; }
log() { echo "browser.sh: $*" >&2; }

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
[[ $(id -u) -eq 0 ]] || die "chromium or chromedriver is missing; install them as root: apt-get install chromium chromium-driver"
log "installing chromium and chromium-driver from Debian"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || die "apt-get update failed; check /etc/apt/sources.list.d and network access to deb.debian.org"
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
  || die "apt-get install chromium chromium-driver failed; run it by hand to see why"
command -v chromium >/dev/null && command -v chromedriver >/dev/null \
  || die "chromium-driver installed no chromedriver on PATH; check 'dpkg -L chromium-driver'"
log "$(chromium --version 2>/dev/null | head -n1), $(chromedriver --version 2>/dev/null | head -n1)"
