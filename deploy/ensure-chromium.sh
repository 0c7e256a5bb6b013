#!/usr/bin/env bash
# Makes sure headless Chromium (Debian's package) and a CJK font are present for the
# browser tests. Playwright drives /usr/bin/chromium; it never downloads a browser.
set -euo pipefail

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
# Without a CJK font every Chinese label renders as an empty box in screenshots.
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing+=(fonts-noto-cjk)
if ((${#missing[@]})); then
    echo "ensure-chromium: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q "${missing[@]}" >/dev/null
    }
fi
/usr/bin/chromium --version
