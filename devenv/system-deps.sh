#!/usr/bin/env bash
# Install the Debian packages blink needs (as root), or say exactly what to run (as a user).
set -euo pipefail
PACKAGES=(postgresql-15 postgresql-plpython3-15 postgresql-15-cron postgresql-15-plproxy postgresql-client-15
          postgresql-server-dev-15 python3-venv python3-dev gcc libc6-dev)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "blink: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian creates and starts a default cluster; blink uses its own clusters, not that one.
else
    echo "blink: missing Debian packages: ${missing[*]}" >&2
    echo "run:   sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
