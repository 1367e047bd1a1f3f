#!/usr/bin/env bash
# Renders `dtrain report` for a run directory and takes a screenshot of the page in headless
# Chromium (Debian's `chromium` package), for the README.
#
# Usage: bench/report-screenshot.sh RUN_DIR [OUT.png]   (default OUT: docs/report.png)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
run=${1:?usage: bench/report-screenshot.sh RUN_DIR [OUT.png]}
out=${2:-docs/report.png}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "bench/report-screenshot.sh: no chromium; install it with: apt-get install chromium" >&2
    exit 1
fi
html=$(mktemp --suffix=.html)
trap 'rm -f "$html"' EXIT
.build/release/dtrain report "$run" --output "$html" --overwrite
mkdir -p "$(dirname "$out")"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1500 \
    --screenshot="$out" "file://$html" 2>/dev/null
echo "screenshot: $out"
