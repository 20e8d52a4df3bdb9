// Masks computed in the viewer's browser: danmask's whole-frame model run by onnxruntime-web (WebGPU when the
// browser gives an adapter, else WASM with SIMD, and threads when the page is cross-origin isolated), followed by
// the same temporal stage as danmask.segmenter.Segmenter (temporal.js). A model whose sidecar asks for it looks at
// a crop around the people it found (zoom.js, as danmask.runtime.zoom). Used by the player whenever no mask
// track is available.
//
// A frame is read back through a canvas; a video served from another origin without CORS taints that canvas
// and cannot be read: step() then throws a VideoNotReadable error whose message says so in words.
import { JitterFilter, SceneCutDetector, StillDetector, smoothEdges, thumbnail } from "./temporal.js";
import { cropRegion, insideRegion, maskBox, pasteCrop, pixelBounds, zoomSettings } from "./zoom.js";

export class VideoNotReadable extends Error {}

// Which onnxruntime-web build to load: "webgpu" when asked for or an adapter exists, else "wasm".
async function pickBackend(wanted) {
  if (wanted === "wasm") return "wasm";
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  if (adapter) return "webgpu";
  if (wanted === "webgpu") throw new Error("WebGPU was asked for, but this browser gives no WebGPU adapter");
  return "wasm";
}

export class BrowserSegmenter {
  // model: {url, spec} as the player's api/config gives it (spec: the model's JSON sidecar); ortBase: the
  // folder URL of the shipped onnxruntime-web files; backend: "auto" | "wasm" | "webgpu"; threads: 0 = half the
  // cores (at most 4), the rest left to the video decoder and the page: on 2 cores one thread segments more
  // frames per second of a playing video than two (BENCHMARKS.md), though the model alone is faster with two.
  static async create({ model, ortBase, backend = "auto", threads = 0 }) {
    const chosen = await pickBackend(backend);
    const base = new URL(ortBase, document.baseURI).href;
    const ort = await import(new URL(chosen === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs", base).href);
    ort.env.wasm.wasmPaths = base;
    const cores = navigator.hardwareConcurrency || 1;
    ort.env.wasm.numThreads = self.crossOriginIsolated ? (threads || Math.min(4, Math.ceil(cores / 2))) : 1;
    const providers = chosen === "webgpu" ? ["webgpu", "wasm"] : ["wasm"];
    const session = await ort.InferenceSession.create(new URL(model.url, document.baseURI).href,
                                                      { executionProviders: providers, graphOptimizationLevel: "all" });
    return new BrowserSegmenter(ort, session, model.spec, chosen, ort.env.wasm.numThreads);
  }

  constructor(ort, session, spec, backend, threads) {
    this.ort = ort;
    this.session = session;
    this.spec = spec;
    [this.height, this.width] = spec.input_size;
    this.backend = backend;
    this.threads = threads;
    this.takesPrior = Boolean(spec.takes_prior) && session.inputNames.includes("prior");
    this.smoothHere = !(spec.extra && spec.extra.blur); // danmask graphs end in the blur + curve already
    this.zoom = zoomSettings(spec);
    this.canvas = document.createElement("canvas");
    this.canvas.width = this.width;
    this.canvas.height = this.height;
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.ctx.imageSmoothingQuality = "high"; // an area-like filter, as the Python side resizes with INTER_AREA
    this.cuts = new SceneCutDetector();
    this.still = new StillDetector();
    this.jitter = new JitterFilter();
    // inferred: frames the model ran on; passes: model runs (a zoom refresh makes two); crops: zoomed passes
    this.stats = { frames: 0, inferred: 0, skipped: 0, cuts: 0, passes: 0, crops: 0, inferMs: 0 };
    this.reset();
  }

  reset() {
    this.cuts.reset();
    this.dropState();
  }

  dropState() {
    this.still.reset();
    this.jitter.reset();
    this.prior = this.last = this.lastTime = null;
    this.box = this.lastWhole = null; // zoom: where the people were (frame pixels), when the whole frame was seen
  }

  // The RGBA pixels of `source` (a <video>, canvas or image), or of its [c0, r0, c1, r1] pixels, at the model's
  // input size.
  read(source, bounds = null) {
    if (bounds) {
      const [c0, r0, c1, r1] = bounds;
      this.ctx.drawImage(source, c0, r0, c1 - c0, r1 - r0, 0, 0, this.width, this.height);
    } else {
      this.ctx.drawImage(source, 0, 0, this.width, this.height);
    }
    try {
      return this.ctx.getImageData(0, 0, this.width, this.height).data;
    } catch (error) {
      if (error.name === "SecurityError") {
        throw new VideoNotReadable("this video comes from another site that does not allow reading its pixels " +
                                   "(no CORS), so masks cannot be computed here: comments cover people");
      }
      throw error;
    }
  }

  // Segment the frame of `source` displayed at `t` seconds: a Float32Array (height*width) in [0, 1].
  async step(source, t) {
    const rgba = this.read(source);
    const dt = this.lastTime === null ? 0 : t - this.lastTime;
    this.stats.frames++;
    const thumb = thumbnail(rgba, this.width, this.height);
    if (this.cuts.update(thumb)) {
      this.stats.cuts++;
      this.dropState();
    }
    if (this.last && this.still.isStill(thumb, t)) {
      this.stats.skipped++;
      this.lastTime = t;
      return this.last;
    }
    let mask = this.zoom ? await this.look(source, rgba, t) : await this.infer(rgba);
    this.stats.inferred++;
    mask = this.jitter.update(mask, this.width, this.height, dt);
    this.prior = mask;
    if (this.smoothHere) mask = smoothEdges(mask, this.width, this.height);
    this.still.inferred(thumb, t);
    this.last = mask;
    this.lastTime = t;
    return mask;
  }

  // Zoom: the model on a crop around the last frame's people, pasted into the frame's mask; on a refresh (every
  // refresh_s, and whenever nobody is known) the whole frame too, for newcomers. `whole`: the frame's RGBA pixels.
  async look(source, whole, t) {
    const fw = source.videoWidth || source.naturalWidth || source.width;
    const fh = source.videoHeight || source.naturalHeight || source.height;
    const due = this.box === null || this.lastWhole === null || t - this.lastWhole >= this.zoom.refreshS ||
                t < this.lastWhole;
    let mask;
    if (this.box === null) {
      mask = await this.infer(whole);
    } else {
      const region = cropRegion(this.box, fw, fh, this.width / this.height, this.zoom);
      const bounds = pixelBounds(region);
      const crop = await this.infer(this.read(source, bounds));
      this.stats.crops++;
      mask = pasteCrop(crop, this.width, this.height, bounds, fw, fh, this.width, this.height);
      if (due) {
        const all = await this.infer(whole);
        const inside = insideRegion(region, fw, fh, this.width, this.height);
        for (let y = 0; y < this.height; y++) {
          for (let x = 0; x < this.width; x++) if (!inside(x, y)) mask[y * this.width + x] = all[y * this.width + x];
        }
      }
    }
    if (due) this.lastWhole = t;
    this.box = maskBox(mask, this.width, this.height, fw, fh);
    return mask;
  }

  // The model alone on RGBA pixels at the input size (what the tests compare with onnxruntime in Python).
  async infer(rgba) {
    const started = performance.now();
    const plane = this.width * this.height;
    const x = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) {
      x[i] = rgba[4 * i] / 255;
      x[plane + i] = rgba[4 * i + 1] / 255;
      x[2 * plane + i] = rgba[4 * i + 2] / 255;
    }
    const feeds = { src: new this.ort.Tensor("float32", x, [1, 3, this.height, this.width]) };
    if (this.takesPrior) {
      feeds.prior = new this.ort.Tensor("float32", this.prior || new Float32Array(plane), [1, 1, this.height, this.width]);
    }
    const results = await this.session.run(feeds);
    const raw = results[this.session.outputNames[0]].data;
    const mask = new Float32Array(plane);
    const logit = this.spec.output === "logit";
    for (let i = 0; i < plane; i++) {
      const v = logit ? 1 / (1 + Math.exp(-raw[i])) : raw[i];
      mask[i] = Math.min(1, Math.max(0, v));
    }
    this.stats.passes++;
    this.stats.inferMs += performance.now() - started;
    return mask;
  }
}
