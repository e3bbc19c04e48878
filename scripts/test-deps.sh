#!/usr/bin/env bash
# System packages the test suite uses beyond PyPI: Debian's Chromium, for the test that renders
# the HTML savings report headless. Installed only when missing and when we may (root or sudo);
# otherwise that one test skips and says why.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: no apt-get here; the headless-Chromium report test will be skipped" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "test-deps: not root and no sudo; the headless-Chromium report test will be skipped" >&2
    exit 0
  fi
fi
echo "test-deps: installing chromium (Debian package) for the report rendering test..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null || true
$sudo apt-get install -y -qq chromium >/dev/null || echo "test-deps: chromium install failed; that test will skip" >&2
