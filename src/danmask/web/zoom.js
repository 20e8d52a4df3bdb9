// The fast model looks closer, in the browser as in Python (danmask.runtime.zoom): each frame is segmented in a
// crop around where the last frame's people were, at the model's own input size, and pasted back into the frame's
// mask; the whole frame is segmented again when nobody was found, after a cut and every `refresh_s` seconds.
// Boxes and crops are in frame pixels: [x0, y0, x1, y1].

// The sidecar's extra.zoom, checked; null when the model does not zoom.
export function zoomSettings(spec) {
  const raw = spec && spec.extra && spec.extra.zoom;
  if (!raw) return null;
  const { margin = 1.3, min_side: minSide = 0.3, refresh_s: refreshS = 0.5 } = raw;
  if (!(margin >= 1 && minSide > 0 && minSide <= 1 && refreshS >= 0)) throw new Error("bad extra.zoom in the model's sidecar");
  return { margin, minSide, refreshS };
}

// The crop around `box` in a frame of frameW x frameH: margin x the box, widened to `aspect` (w / h), at least
// minSide of the frame's width (or its whole height), shifted to lie inside the frame (crop_region in Python).
export function cropRegion(box, frameW, frameH, aspect, settings) {
  const cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
  let cw = Math.max((box[2] - box[0]) * settings.margin, (box[3] - box[1]) * settings.margin * aspect,
                    settings.minSide * frameW);
  cw = Math.min(cw, frameW, frameH * aspect);
  const ch = cw / aspect;
  const x0 = Math.min(Math.max(cx - cw / 2, 0), frameW - cw);
  const y0 = Math.min(Math.max(cy - ch / 2, 0), frameH - ch);
  return [x0, y0, x0 + cw, y0 + ch];
}

// Integer pixel bounds of a crop: what is read, and where it is pasted back.
export function pixelBounds(region) {
  const c0 = Math.floor(region[0]), r0 = Math.floor(region[1]);
  return [c0, r0, Math.max(c0 + 1, Math.ceil(region[2])), Math.max(r0 + 1, Math.ceil(region[3]))];
}

// The frame-pixel box around a mask of w x h drawn over the whole frame; null when nothing reaches 0.5.
export function maskBox(mask, w, h, frameW, frameH) {
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (mask[y * w + x] >= 0.5) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return null;
  const sx = frameW / w, sy = frameH / h;
  return [x0 * sx, y0 * sy, (x1 + 1) * sx, (y1 + 1) * sy];
}

// A crop's mask (cw x ch) pasted into a zero mask of outW x outH over the frame, bilinear, as cv2.warpAffine does
// in Python: output pixel x samples the crop at (x - c0 * sx) / scale, zero outside it.
export function pasteCrop(crop, cw, ch, bounds, frameW, frameH, outW, outH) {
  const [c0, r0, c1, r1] = bounds;
  const sx = outW / frameW, sy = outH / frameH;
  const ax = (c1 - c0) * sx / cw, ay = (r1 - r0) * sy / ch;
  const out = new Float32Array(outW * outH);
  const at = (i, j) => (i >= 0 && i < cw && j >= 0 && j < ch ? crop[j * cw + i] : 0);
  for (let y = 0; y < outH; y++) {
    const v = (y - r0 * sy) / ay;
    if (v <= -1 || v >= ch) continue;
    const j = Math.floor(v), fy = v - j;
    for (let x = 0; x < outW; x++) {
      const u = (x - c0 * sx) / ax;
      if (u <= -1 || u >= cw) continue;
      const i = Math.floor(u), fx = u - i;
      out[y * outW + x] = (at(i, j) * (1 - fx) + at(i + 1, j) * fx) * (1 - fy)
                        + (at(i, j + 1) * (1 - fx) + at(i + 1, j + 1) * fx) * fy;
    }
  }
  return out;
}

// Whether output pixel (x, y) of an outW x outH mask over the frame lies in `region` (the crop's own mask wins
// there on a whole-frame refresh).
export function insideRegion(region, frameW, frameH, outW, outH) {
  const x0 = Math.floor(region[0] * outW / frameW), x1 = Math.ceil(region[2] * outW / frameW);
  const y0 = Math.floor(region[1] * outH / frameH), y1 = Math.ceil(region[3] * outH / frameH);
  return (x, y) => x >= x0 && x < x1 && y >= y0 && y < y1;
}
