#!/usr/bin/env bash
# Copy onnxruntime-web's browser files into the package (src/danmask/web/ort/), so that the player can run
# danmask's models in the viewer's browser without any CDN. Run once per version bump; the result is committed.
#
# Two builds are kept: the plain WASM build (SIMD, threads when the page is cross-origin isolated) and the
# WebGPU build (used when navigator.gpu gives an adapter). The .wasm binaries are stored gzip-compressed
# (14 + 27 MB -> 3.7 + 6.6 MB); the player servers send them with Content-Encoding: gzip.
set -euo pipefail
VERSION="${1:-1.30.0}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$HERE/src/danmask/web/ort"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "onnxruntime-web@$VERSION" >/dev/null && tar xzf "onnxruntime-web-$VERSION.tgz")
DIST="$WORK/package/dist"
mkdir -p "$DEST"
find "$DEST" -maxdepth 1 -type f ! -name NOTICE -delete  # NOTICE (licence and provenance) is ours
for f in ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort.webgpu.min.mjs ort-wasm-simd-threaded.asyncify.mjs; do
  cp "$DIST/$f" "$DEST/$f"
done
for f in ort-wasm-simd-threaded.wasm ort-wasm-simd-threaded.asyncify.wasm; do
  gzip -9 -n -c "$DIST/$f" > "$DEST/$f.gz"
done
echo "$VERSION" > "$DEST/VERSION"
du -sh "$DEST"
