#!/usr/bin/env bash
# Makes sure Debian's Chromium (/usr/bin/chromium) is on this machine: the
# browser tests (tests/consent/test_browser.py) drive it with playwright-core,
# which never downloads a browser of its own. Installs Debian's chromium
# package when it is missing and we are root.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-chromium: $CHROMIUM not found; install Chromium (Debian: apt-get install chromium)" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
  echo "ensure-chromium: apt-get could not install chromium" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-chromium: chromium installed but $CHROMIUM is missing" >&2
  exit 1
fi
