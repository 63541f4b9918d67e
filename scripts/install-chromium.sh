#!/usr/bin/env bash
# Install Debian's headless-capable Chromium (used by tests/report to render the HTML report) if it
# is missing. Idempotent; needs root (or sudo) on Debian/Ubuntu. Exits 0 when chromium is present.
set -euo pipefail
for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null 2>&1; then
        echo "chromium present: $(command -v "$b")"; exit 0
    fi
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends chromium; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends chromium
fi
command -v chromium
