#!/usr/bin/env bash
# Makes sure WeasyPrint (gateway/pdf.py, the print views) finds what it needs outside Python:
# Pango for layout, HarfBuzz's subsetter to embed only the glyphs used (else fontTools does it,
# far slower on CJK fonts), and the Noto CJK fonts (Serif/Sans/Mono SC) named by the print templates.
set -euo pipefail

installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

missing=()
for package in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk; do
    installed "$package" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "ensure-pdf: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q "${missing[@]}" >/dev/null
    }
fi
echo "ensure-pdf: pango $(dpkg-query -W -f='${Version}' libpango-1.0-0), fonts-noto-cjk $(dpkg-query -W -f='${Version}' fonts-noto-cjk)"
