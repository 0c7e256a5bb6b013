#!/usr/bin/env bash
# Makes sure Node.js and npm (Debian's packages) are present: `make assets` installs the
# gateway's browser libraries (ECharts) from the npm registry with `npm ci`.
set -euo pipefail

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
    echo "ensure-node: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q "${missing[@]}" >/dev/null
    }
fi
echo "node $(node --version), npm $(npm --version 2>/dev/null)"
