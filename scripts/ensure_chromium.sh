#!/usr/bin/env bash
# Browser tests drive the system chromium (playwright cannot download browsers here).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
else
  echo "chromium not found: install it (Debian: sudo apt-get install chromium) or browser tests will be skipped" >&2
fi
