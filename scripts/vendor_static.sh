#!/usr/bin/env bash
# Fetches the browser libraries the UI serves as its own static files (no CDN at run time) into
# frontend/static/vendor/ (gitignored, never committed). Idempotent: files already present are kept.
# htmx is not fetched: django-htmx ships it (``{% htmx_script %}``).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=frontend/static/vendor
mkdir -p "$DEST"

# name|npm package@version|path inside the package tarball
WANT="3Dmol-min.js|3dmol@2.5.5|package/build/3Dmol-min.js
plotly.min.js|plotly.js-dist-min@4.1.1|package/plotly.min.js"

if ! command -v npm >/dev/null; then
  echo "vendor_static: npm not found; the 3D viewer and plots need $DEST (install Node.js/npm and re-run)" >&2
  exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "$WANT" | while IFS='|' read -r file spec inner; do
  [ -s "$DEST/$file" ] && continue
  echo "==> npm pack $spec"
  tarball=$(cd "$TMP" && npm pack --silent "$spec" | tail -n1)
  tar -xzf "$TMP/$tarball" -C "$TMP" "$inner"
  cp "$TMP/$inner" "$DEST/$file.tmp" && mv "$DEST/$file.tmp" "$DEST/$file"
done
ls -l "$DEST"
