#!/usr/bin/env bash
# System packages the test suite uses beyond PyPI: Debian's Chromium, for the test that renders
# the HTML savings report headless. Installed only when missing and when we may (root or sudo).
# Under CI (CI=true) every test must run, so a missing Chromium that cannot be installed is an
# error here; on a developer's machine the one browser test is skipped and the summary says so.
set -euo pipefail

have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
give_up() {
  if [[ "${CI:-}" =~ ^(1|true|yes)$ ]]; then
    echo "test-deps: $1 — CI must run every test: install Debian's 'chromium' package and rerun" >&2
    exit 1
  fi
  echo "test-deps: $1; the headless-Chromium report test will be skipped" >&2
  exit 0
}

have_chromium && exit 0
command -v apt-get >/dev/null 2>&1 || give_up "no apt-get here to install chromium"
sudo=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    give_up "not root and no sudo to install chromium"
  fi
fi
echo "test-deps: installing chromium (Debian package) for the report rendering test..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null || true
$sudo apt-get install -y -qq chromium >/dev/null || true
have_chromium || give_up "installing chromium failed"
