#!/usr/bin/env bash
# Builds the `synod compare` HTML report and renders it, full page at 1280 px wide,
# into docs/screenshots/compare-report.png with headless Chromium.
#
#   scripts/report-screenshots.sh            # the default comparison (about a minute)
#   scripts/report-screenshots.sh --quick    # any other `synod compare` flags
#
# Needs Debian's chromium (`apt-get install chromium`). The report lands in
# target/report/ (index.html, compare.json).
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/report
shot=docs/screenshots/compare-report.png
width=1280

browser=""
for candidate in /usr/bin/chromium chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null 2>&1; then
        browser=$(command -v "$candidate")
        break
    fi
done
if [ -z "$browser" ]; then
    echo "no chromium found: install Debian's chromium (apt-get install chromium)" >&2
    exit 1
fi

# Exit 1 means a promise was broken: the report is written all the same, and shows it.
status=0
cargo run --release -- compare --out "$out" "$@" || status=$?
if [ "$status" -gt 1 ]; then
    exit "$status"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
page=$(realpath "$out/index.html")

headless() {
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --hide-scrollbars --force-device-scale-factor=1 \
        --user-data-dir="$work/profile-$1" "${@:2}" 2>/dev/null
}

# Chromium screenshots the window only: measure the page's height at this width
# first, in an iframe of a page allowed to read it (the report itself runs no script).
cat >"$work/measure.html" <<EOF
<!DOCTYPE html><html><body style="margin:0">
<iframe id="report" src="file://$page" style="width:${width}px;height:100px;border:0"></iframe>
<script>
document.getElementById('report').addEventListener('load', function () {
  document.body.setAttribute('data-height', this.contentDocument.documentElement.scrollHeight);
});
</script></body></html>
EOF
height=$(headless measure --allow-file-access-from-files --window-size="$width,800" \
    --dump-dom "file://$work/measure.html" | sed -n 's/.*data-height="\([0-9]*\)".*/\1/p')
if [ -z "$height" ]; then
    echo "could not measure the page's height" >&2
    exit 1
fi

mkdir -p "$(dirname "$shot")"
headless shot --window-size="$width,$height" --screenshot="$(realpath -m "$shot")" "file://$page" >/dev/null
echo "wrote $shot (${width}x${height}) from $out/index.html"
