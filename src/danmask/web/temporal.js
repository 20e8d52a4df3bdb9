// danmask's temporal stage in the browser: the same pieces, thresholds and arithmetic as danmask/temporal.py
// (scene cuts by SSIM of grey thumbnails, still-frame skipping, the momentum jitter filter, edge smoothing), so
// that masks computed in the viewer's browser behave like the ones `danmask segment` writes. The tests run both
// on the same masks and thumbnails and compare.
//
// Images are row-major Float32Arrays with an explicit width and height; filters border like OpenCV's default
// (BORDER_REFLECT_101), morphology ignores pixels outside the image, as cv2.dilate/erode do.

export const THUMB_WIDTH = 64;
export const THUMB_HEIGHT = 36;

// cv2.getGaussianKernel: a fixed table for small kernels with sigma <= 0, else the sampled Gaussian.
export function gaussianKernel(size, sigma) {
  if (sigma <= 0 && size === 3) return [0.25, 0.5, 0.25];
  if (sigma <= 0 && size === 5) return [1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16];
  const s = sigma > 0 ? sigma : 0.3 * ((size - 1) * 0.5 - 1) + 0.8;
  const half = (size - 1) / 2;
  const k = [];
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const v = Math.exp(-((i - half) ** 2) / (2 * s * s));
    k.push(v);
    sum += v;
  }
  return k.map((v) => v / sum);
}

function reflect101(i, n) {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

// For each position 0..n-1 and tap 0..2r, the source index (reflected at the borders); cached per (n, r).
const tapCache = new Map();
function taps(n, r) {
  const key = n * 64 + r;
  if (!tapCache.has(key)) tapCache.set(key, reflectTable(n, r));
  return tapCache.get(key);
}

function reflectTable(n, r) {
  const index = new Int32Array(n * (2 * r + 1));
  for (let i = 0; i < n; i++) for (let k = -r; k <= r; k++) index[i * (2 * r + 1) + k + r] = reflect101(i + k, n);
  return index;
}

// Separable convolution with `kernel` along x, then y (cv2.GaussianBlur / sepFilter2D on float32).
export function blur(src, width, height, kernel) {
  const size = kernel.length, r = (size - 1) / 2;
  const kx = taps(width, r), ky = taps(height, r);
  const tmp = new Float32Array(width * height);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = 0, t = x * size; k < size; k++, t++) acc += kernel[k] * src[row + kx[t]];
      tmp[row + x] = acc;
    }
  }
  for (let y = 0; y < height; y++) {
    const out0 = y * width;
    for (let k = 0, t = y * size; k < size; k++, t++) {
      const w = kernel[k], in0 = ky[t] * width;
      for (let x = 0; x < width; x++) out[out0 + x] += w * tmp[in0 + x];
    }
  }
  return out;
}

// Grey thumbnail (36x64, 0..255) of an RGBA image: area-average resampling per channel, rounded as OpenCV's
// INTER_AREA does for uint8, then OpenCV's fixed-point RGB->grey.
export function thumbnail(rgba, width, height) {
  if (width % THUMB_WIDTH === 0 && height % THUMB_HEIGHT === 0) return boxThumbnail(rgba, width, height);
  const xs = areaWeights(width, THUMB_WIDTH);
  const ys = areaWeights(height, THUMB_HEIGHT);
  const out = new Float32Array(THUMB_WIDTH * THUMB_HEIGHT);
  for (let ty = 0; ty < THUMB_HEIGHT; ty++) {
    for (let tx = 0; tx < THUMB_WIDTH; tx++) {
      let r = 0, g = 0, b = 0;
      for (const [sy, wy] of ys[ty]) {
        for (const [sx, wx] of xs[tx]) {
          const w = wy * wx;
          const p = 4 * (sy * width + sx);
          r += w * rgba[p];
          g += w * rgba[p + 1];
          b += w * rgba[p + 2];
        }
      }
      const [R, G, B] = [r, g, b].map((v) => Math.min(255, Math.round(v)));
      out[ty * THUMB_WIDTH + tx] = (R * 4899 + G * 9617 + B * 1868 + 8192) >> 14;
    }
  }
  return out;
}

// The whole-ratio case (a 256x144 model input): plain box means, as INTER_AREA computes them.
function boxThumbnail(rgba, width, height) {
  const fx = width / THUMB_WIDTH, fy = height / THUMB_HEIGHT, area = fx * fy;
  const sums = new Float64Array(3 * THUMB_WIDTH * THUMB_HEIGHT);
  for (let y = 0; y < height; y++) {
    const trow = Math.floor(y / fy) * THUMB_WIDTH;
    for (let x = 0, p = 4 * y * width; x < width; x++, p += 4) {
      const q = 3 * (trow + Math.floor(x / fx));
      sums[q] += rgba[p];
      sums[q + 1] += rgba[p + 1];
      sums[q + 2] += rgba[p + 2];
    }
  }
  const out = new Float32Array(THUMB_WIDTH * THUMB_HEIGHT);
  for (let i = 0; i < out.length; i++) {
    const R = Math.round(sums[3 * i] / area), G = Math.round(sums[3 * i + 1] / area);
    const B = Math.round(sums[3 * i + 2] / area);
    out[i] = (R * 4899 + G * 9617 + B * 1868 + 8192) >> 14;
  }
  return out;
}

// For each output cell, the source indices and the fraction of the cell they cover.
function areaWeights(n, m) {
  const scale = n / m;
  const cells = [];
  for (let j = 0; j < m; j++) {
    const lo = j * scale, hi = (j + 1) * scale;
    const cell = [];
    for (let i = Math.floor(lo); i < Math.min(n, Math.ceil(hi)); i++) {
      const cover = Math.min(hi, i + 1) - Math.max(lo, i);
      if (cover > 1e-9) cell.push([i, cover / scale]);
    }
    cells.push(cell);
  }
  return cells;
}

// Mean structural similarity of two grey images (Wang et al. 2004), Gaussian window 7x7, sigma 1.5.
export function ssim(a, b, width, height) {
  const c1 = (0.01 * 255) ** 2, c2 = (0.03 * 255) ** 2;
  const k = gaussianKernel(7, 1.5);
  const n = width * height;
  const aa = new Float32Array(n), bb = new Float32Array(n), ab = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    aa[i] = a[i] * a[i];
    bb[i] = b[i] * b[i];
    ab[i] = a[i] * b[i];
  }
  const muA = blur(a, width, height, k), muB = blur(b, width, height, k);
  const sAA = blur(aa, width, height, k), sBB = blur(bb, width, height, k), sAB = blur(ab, width, height, k);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const ma = muA[i], mb = muB[i];
    const num = (2 * ma * mb + c1) * (2 * (sAB[i] - ma * mb) + c2);
    const den = (ma * ma + mb * mb + c1) * ((sAA[i] - ma * ma) + (sBB[i] - mb * mb) + c2);
    sum += num / den;
  }
  return sum / n;
}

// Discrete Fourier transform of complex rows (re, im: n values each, stride 1) or columns; naive, as the
// thumbnail is 64x36 and this runs only when the plain SSIM is low.
function dft(re, im, n, count, stride, step, inverse) {
  const outRe = new Float64Array(n), outIm = new Float64Array(n);
  const sign = inverse ? 1 : -1;
  for (let c = 0; c < count; c++) {
    const base = c * stride;
    for (let k = 0; k < n; k++) {
      let sr = 0, si = 0;
      for (let t = 0; t < n; t++) {
        const angle = (sign * 2 * Math.PI * k * t) / n;
        const cos = Math.cos(angle), sin = Math.sin(angle);
        const xr = re[base + t * step], xi = im[base + t * step];
        sr += xr * cos - xi * sin;
        si += xr * sin + xi * cos;
      }
      outRe[k] = sr;
      outIm[k] = si;
    }
    for (let k = 0; k < n; k++) {
      re[base + k * step] = outRe[k];
      im[base + k * step] = outIm[k];
    }
  }
}

function fft2(re, im, width, height, inverse) {
  dft(re, im, width, height, width, 1, inverse); // rows
  dft(re, im, height, width, 1, width, inverse); // columns
}

// temporal.py's pan_shift: [dx, dy] in whole pixels with b(x, y) ~ a(x - dx, y - dy), the integer peak of the
// phase correlation; shifts past half the picture read as negative.
export function panShift(a, b, width, height) {
  const n = width * height;
  const aRe = Float64Array.from(a), aIm = new Float64Array(n);
  const bRe = Float64Array.from(b), bIm = new Float64Array(n);
  fft2(aRe, aIm, width, height, false);
  fft2(bRe, bIm, width, height, false);
  const re = new Float64Array(n), im = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const cr = bRe[i] * aRe[i] + bIm[i] * aIm[i]; // b * conj(a)
    const ci = bIm[i] * aRe[i] - bRe[i] * aIm[i];
    const mag = Math.max(Math.hypot(cr, ci), 1e-9);
    re[i] = cr / mag;
    im[i] = ci / mag;
  }
  fft2(re, im, width, height, true);
  let best = 0;
  for (let i = 1; i < n; i++) if (re[i] > re[best]) best = i;
  const x = best % width, y = Math.floor(best / width);
  return [x > Math.floor(width / 2) ? x - width : x, y > Math.floor(height / 2) ? y - height : y];
}

function region(img, width, x0, y0, w, h) {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = img[(y0 + y) * width + x0 + x];
  return out;
}

// temporal.py's aligned_ssim: SSIM over the part both thumbnails show once the pan between them is undone.
export function alignedSsim(a, b, width, height) {
  const [x, y] = panShift(a, b, width, height);
  if (Math.abs(x) >= Math.floor(width / 2) || Math.abs(y) >= Math.floor(height / 2)) return -1;
  const w = width - Math.abs(x), h = height - Math.abs(y);
  return ssim(region(a, width, Math.max(0, -x), Math.max(0, -y), w, h),
              region(b, width, Math.max(0, x), Math.max(0, y), w, h), w, h);
}

export class SceneCutDetector {
  constructor(threshold = 0.4) {
    this.threshold = threshold;
    this.reset();
  }

  // true on the first frame of a new shot; the first frame ever is not a cut
  update(thumb) {
    const previous = this.previous;
    this.previous = thumb;
    if (!previous || previous.length !== thumb.length) {
      this.lastScore = null;
      return false;
    }
    this.lastScore = ssim(previous, thumb, THUMB_WIDTH, THUMB_HEIGHT);
    if (this.lastScore < this.threshold) {
      // a fast camera pan moves the whole picture, a cut changes it (temporal.py's SceneCutDetector)
      this.lastScore = Math.max(this.lastScore, alignedSsim(previous, thumb, THUMB_WIDTH, THUMB_HEIGHT));
    }
    return this.lastScore < this.threshold;
  }

  reset() {
    this.previous = null;
    this.lastScore = null;
  }
}

// May the model be skipped? Yes while the thumbnail barely differs from the one the model last saw.
export class StillDetector {
  constructor(pixelDelta = 10, maxChanged = 0.003, maxSkipS = 0.5) {
    Object.assign(this, { pixelDelta, maxChanged, maxSkipS });
    this.reset();
  }

  isStill(thumb, t) {
    if (!this.reference || this.reference.length !== thumb.length || t - this.referenceTime > this.maxSkipS) return false;
    let changed = 0;
    for (let i = 0; i < thumb.length; i++) if (Math.abs(thumb[i] - this.reference[i]) > this.pixelDelta) changed++;
    return changed <= this.maxChanged * thumb.length;
  }

  inferred(thumb, t) {
    this.reference = thumb;
    this.referenceTime = t;
  }

  reset() {
    this.reference = null;
    this.referenceTime = null;
  }
}

// OpenCV's MORPH_ELLIPSE structuring element of size (2*band+1): the half-width of its row at each dy.
function ellipseRows(band) {
  const r = band;
  const rows = new Int32Array(2 * r + 1);
  for (let dy = -r; dy <= r; dy++) rows[dy + r] = Math.round(r * Math.sqrt((r * r - dy * dy) / (r * r)));
  return rows;
}

// Momentum smoothing of boundary pixels with a threshold that adapts to the noise (see temporal.JitterFilter).
export class JitterFilter {
  constructor(band = 3, momentum = 0.8, minThreshold = 0.2, ratio = 3.0) {
    Object.assign(this, { band, momentum, minThreshold, ratio });
    this.rows = ellipseRows(band);
    this.reset();
  }

  // mask: Float32Array (width*height) in [0, 1]; returns the filtered mask (a new array)
  update(mask, width, height, dt = 1 / 30) {
    if (!this.state || this.state.length !== mask.length) {
      this.state = Float32Array.from(mask);
      return Float32Array.from(mask);
    }
    const n = mask.length;
    const state = this.state;
    const diff = new Float32Array(n);
    for (let i = 0; i < n; i++) diff[i] = mask[i] - state[i];
    const a = this.edgeBand(state, width, height), b = this.edgeBand(mask, width, height);
    const coherent = blur(diff, width, height, gaussianKernel(5, 0));
    let residual = 0, count = 0;
    for (let i = 0; i < n; i++) {
      if (a[i] || b[i]) {
        residual += Math.abs(diff[i] - coherent[i]);
        count++;
      }
    }
    if (count) this.noise = 0.8 * this.noise + 0.2 * (residual / count);
    const threshold = Math.max(this.minThreshold, this.ratio * this.noise);
    const keep = this.momentum ** (Math.max(dt, 1e-3) * 30);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (a[i] || b[i]) {
        const gain = Math.min(1, Math.max(1 - keep, (Math.abs(coherent[i]) / threshold) ** 2));
        out[i] = state[i] + gain * diff[i];
      } else {
        out[i] = mask[i];
      }
    }
    this.state = out;
    return Float32Array.from(out);
  }

  // pixels within `band` of the 0.5 contour: dilate(binary) != erode(binary), i.e. the structuring element
  // around the pixel (clipped to the image) holds both values. An integral image settles most pixels at once
  // (the square around them is all one value, so the ellipse inside it is too); row prefix counts do the rest.
  edgeBand(mask, width, height) {
    const w1 = width + 1, r = this.band, rows = this.rows;
    const counts = new Int32Array(height * w1); // counts[y][x]: pixels >= 0.5 in row y before x
    const integral = new Int32Array((height + 1) * w1); // integral[y][x]: pixels >= 0.5 above y, left of x
    for (let y = 0; y < height; y++) {
      const c = y * w1, m = y * width, above = y * w1, here = (y + 1) * w1;
      for (let x = 0; x < width; x++) {
        counts[c + x + 1] = counts[c + x] + (mask[m + x] >= 0.5 ? 1 : 0);
        integral[here + x + 1] = integral[above + x + 1] + counts[c + x + 1];
      }
    }
    const band = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      const y0 = y > r ? y - r : 0, y1 = y + r < height - 1 ? y + r : height - 1;
      for (let x = 0; x < width; x++) {
        const x0 = x > r ? x - r : 0, x1 = x + r + 1 < width ? x + r + 1 : width;
        const square = integral[(y1 + 1) * w1 + x1] - integral[y0 * w1 + x1] - integral[(y1 + 1) * w1 + x0] +
                       integral[y0 * w1 + x0];
        if (square === 0 || square === (y1 - y0 + 1) * (x1 - x0)) continue;
        let ones = 0, total = 0;
        for (let yy = y0; yy <= y1; yy++) {
          const dx = rows[yy - y + r];
          const lo = x > dx ? x - dx : 0, hi = x + dx + 1 < width ? x + dx + 1 : width, c = yy * w1;
          ones += counts[c + hi] - counts[c + lo];
          total += hi - lo;
        }
        band[y * width + x] = ones > 0 && ones < total ? 1 : 0;
      }
    }
    return band;
  }

  reset() {
    this.state = null;
    this.noise = 0;
  }
}

// 3x3 Gaussian, then a contrast curve around 0.5 (smoothstep of a linear stretch), as temporal.smooth_edges.
export function smoothEdges(mask, width, height, contrast = 1.5) {
  const blurred = blur(mask, width, height, gaussianKernel(3, 0));
  for (let i = 0; i < blurred.length; i++) {
    const x = Math.min(1, Math.max(0, (blurred[i] - 0.5) * contrast + 0.5));
    blurred[i] = x * x * (3 - 2 * x);
  }
  return blurred;
}
