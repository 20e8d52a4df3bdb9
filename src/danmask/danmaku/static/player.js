// danmask web player: draws the schedule computed by the Python layout engine (never lays out here), and
// cuts the person out of the danmaku layer with the mask of the video frame actually on screen.
//
// Timing: requestVideoFrameCallback gives meta.mediaTime, the timestamp of the frame being presented; the
// mask with that timestamp is looked up in the .dmask track (decoded by /dmask.js) and applied with
// 'destination-out' in the same callback, so the cut-out never lags the picture. Between video frames a
// requestAnimationFrame loop moves the comments smoothly, keeping the mask of the frame on screen.
//
// With person layers in the track (.dmask v2) the viewer chooses whom the comments pass behind: the salient
// people (the stored union, the default), everyone, or the people ticked in the list of ids.
//
// Comment text only ever reaches canvas fillText/strokeText and textContent: never HTML.
//
// Without a track, when the config names a model, the masks are computed here, in the viewer's browser
// (segment.js: onnxruntime-web + the same temporal stage as Python), one video frame at a time, newest frame
// first: while the model is busy, frames on screen keep the last mask and are counted as dropped.
//
// Every URL is relative to the page (or comes from api/config), so the same page serves `danmask play` at / and
// `danmask serve` under /v1/videos/ID/player/. When the config names a `post` URL (the service), a comment box
// posts the viewer's comment at the current time and reloads the layout.
import { DmaskTrack, selectMask } from "./dmask.js";
import { commentSprite } from "./sprite.js";

const $ = (id) => document.getElementById(id);
const video = $("video");
const canvas = $("danmaku");
const ctx = canvas.getContext("2d");
const FONT_FAMILY = "danmask-font";
const TIME_SLACK = 1e-3; // browsers round frame times to microseconds; track times are exact fractions
const PREFETCH_BLOCKS = 2; // mask blocks decoded ahead of the playhead

const state = {
  config: null,
  items: [], // schedule items sorted by start
  maxDuration: 0,
  track: null,
  blocks: new Map(), // block number -> decoded {times, masks, people} (our own cache: lookups must be synchronous)
  pending: new Map(), // block number -> Promise while decoding
  protect: "salient", // whom the mask cuts out: "salient" (stored union), "all", or "chosen" (ticked ids)
  chosen: new Set(), // person ids ticked in the list
  selection: 0, // bumped whenever protect or chosen changes (the painted mask is keyed on it)
  maskCanvas: null,
  sprites: new Map(), // schedule item index -> pre-drawn canvas while the item is on screen
  maskShown: null, // {block, index, selection} of the mask currently in maskCanvas
  segmenter: null, // BrowserSegmenter when masks are computed in this browser
  maskSource: "", // how the in-browser masks are made, for the status line
  liveMask: null, // {block: -1, index, time, union} of the newest frame the browser segmented
  segmenting: null, // mediaTime of the frame being segmented, or null
  frameTime: null, // mediaTime of the frame on screen (from requestVideoFrameCallback)
  showDanmaku: true,
  useMask: true,
  settings: {},
  scheduleRequest: 0,
  listKey: "",
  listUpdated: 0,
  listTimer: 0,
  listTime: 0,
};

// Counters read by tests and the benchmark (no effect on drawing).
const stats = { frames: 0, draws: 0, drawMs: 0, drawn: 0, masked: 0, maskTime: null, mediaTime: null, missingMask: 0,
                maskSelection: 0, // maskSelection: state.selection of the mask last cut out
                segmented: 0, segmentDropped: 0, segmentMs: 0, notReadable: null }; // in-browser masks
window.danmaskPlayer = { state, stats, drawAt: (t) => draw(t, t) };

// ------------------------------------------------------------------ schedule (from the Python layout)

function scheduleQuery() {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state.settings)) {
    if (value !== undefined) params.set(key, value === null ? "none" : String(value));
  }
  return params.toString();
}

async function loadSchedule() {
  const request = ++state.scheduleRequest;
  const response = await fetch("api/schedule?" + scheduleQuery());
  const body = await response.json();
  if (request !== state.scheduleRequest) return; // a newer request superseded this one
  if (!response.ok) {
    setStatus("layout error: " + body.error);
    return;
  }
  state.items = body.items;
  state.sprites.clear(); // indices refer to the old schedule's items
  state.maxDuration = body.max_duration;
  const dropped = Object.entries(body.dropped).map(([why, n]) => `${n} ${why}`).join(", ") || "none";
  setStatus(`${state.config.comments} comments, ${body.shown} shown, dropped: ${dropped}` +
            (state.track ? "" : state.maskSource ? ` (${state.maskSource})` : " (no mask track: comments cover people)"));
  redraw();
}

function activeAt(t) {
  // items are sorted by start: binary search the last one started, walk back over the longest lifetime
  const items = state.items;
  let lo = 0, hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].start <= t) lo = mid + 1; else hi = mid;
  }
  const active = [];
  for (let i = lo - 1; i >= 0 && items[i].start >= t - state.maxDuration; i--) {
    if (items[i].end > t) active.push(items[i]);
  }
  return active.reverse(); // oldest first, the burn-in's drawing order
}

// ------------------------------------------------------------------ mask track

function blockNumberAt(t) {
  const index = state.track.index;
  const tick = state.track.secondsPerTick;
  let lo = 0, hi = index.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (index[mid].firstPts * tick <= t + TIME_SLACK) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Person layers are decoded only while the viewer protects someone other than the salient people.
function needPeople() {
  return state.protect !== "salient" && state.track.hasPeople;
}

function ensureBlock(number) {
  if (!state.track || number < 0 || number >= state.track.index.length) return null;
  const have = state.blocks.get(number);
  if (have && (have.people || !needPeople())) return have;
  if (!state.pending.has(number)) {
    const people = needPeople() ? state.track.peopleBlock(number) : null;
    const job = Promise.all([state.track.block(number), people]).then(([block, people]) => {
      state.blocks.set(number, { ...block, people });
      state.pending.delete(number);
      if (state.blocks.size > 8) { // keep the neighbourhood of the playhead only
        const here = blockNumberAt(video.currentTime);
        for (const key of state.blocks.keys()) if (Math.abs(key - here) > 3) state.blocks.delete(key);
      }
      redraw();
    }, (error) => {
      state.pending.delete(number);
      setStatus("mask track error: " + error.message);
    });
    state.pending.set(number, job);
  }
  return null;
}

// The mask of the frame displayed at t, synchronously: {block, index, data} or null while it is decoding.
function maskAt(t) {
  if (state.segmenter) return state.liveMask;
  const number = blockNumberAt(t);
  for (let k = 1; k <= PREFETCH_BLOCKS; k++) ensureBlock(number + k);
  const block = ensureBlock(number);
  if (!block) return null;
  let i = 0;
  while (i + 1 < block.times.length && block.times[i + 1] <= t + TIME_SLACK) i++;
  return { block: number, index: i, time: block.times[i], union: block.masks[i], people: block.people?.[i] };
}

function paintMask(mask) {
  const shown = state.maskShown;
  if (shown && shown.block === mask.block && shown.index === mask.index && shown.selection === state.selection) return;
  const which = !mask.people ? "salient" : state.protect === "chosen" ? state.chosen : state.protect;
  const data = selectMask(mask.union, mask.people || [], which);
  const mctx = state.maskCanvas.getContext("2d");
  const image = mctx.createImageData(state.maskCanvas.width, state.maskCanvas.height);
  const px = image.data;
  for (let i = 0, n = data.length; i < n; i++) px[4 * i + 3] = data[i];
  mctx.putImageData(image, 0, 0);
  state.maskShown = { block: mask.block, index: mask.index, selection: state.selection };
}

// ------------------------------------------------------------------ drawing

function sprite(item) {
  return commentSprite(item, state.sprites, FONT_FAMILY);
}

// t: comment positions; frameTime: which frame's mask to cut out (the one on screen).
function draw(t, frameTime) {
  if (state.segmenting !== null && state.segmenting === frameTime && state.useMask) return; // its mask is coming
  const started = performance.now();
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  let drawn = 0;
  if (state.showDanmaku && state.items.length) {
    let mask = null;
    if (state.useMask && (state.track || state.segmenter)) {
      mask = maskAt(frameTime);
      if (!mask) { // never draw over a person with a stale mask: skip this frame, redraw once decoded
        stats.missingMask++;
        return;
      }
    }
    const live = new Set();
    for (const item of activeAt(t)) {
      ctx.drawImage(sprite(item), Math.round(item.x0 + item.vx * (t - item.start)), item.y);
      live.add(item.index);
      drawn++;
    }
    for (const key of state.sprites.keys()) if (!live.has(key)) state.sprites.delete(key);
    if (mask && drawn) {
      paintMask(mask);
      ctx.globalCompositeOperation = "destination-out";
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(state.maskCanvas, 0, 0, width, height);
      ctx.globalCompositeOperation = "source-over";
      stats.masked++;
      stats.maskSelection = state.maskShown.selection;
    }
    stats.maskTime = mask ? mask.time : null;
  }
  stats.mediaTime = frameTime;
  stats.draws++;
  stats.drawn = drawn;
  stats.drawMs += performance.now() - started;
  updateList(t);
}

function redraw() {
  const t = state.frameTime ?? video.currentTime;
  draw(video.paused ? t : video.currentTime, t);
}

function onVideoFrame(now, meta) {
  state.frameTime = meta.mediaTime;
  stats.frames++;
  if (state.segmenter) segmentFrame(meta.mediaTime);
  draw(meta.mediaTime, meta.mediaTime);
  video.requestVideoFrameCallback(onVideoFrame);
}

function onAnimationFrame() {
  if (!video.paused && state.frameTime !== null) draw(video.currentTime, state.frameTime);
  requestAnimationFrame(onAnimationFrame);
}

// ------------------------------------------------------------------ masks computed in this browser

// Segment the frame on screen unless the model is still busy with an earlier one (then this frame keeps the
// last mask: the newest frame wins, lag never builds up).
function segmentFrame(t) {
  if (state.segmenting !== null) {
    stats.segmentDropped++;
    return;
  }
  if (!state.useMask || !state.showDanmaku) return;
  state.segmenting = t;
  const started = performance.now();
  state.segmenter.step(video, t).then((mask) => {
    const alpha = new Uint8ClampedArray(mask.length);
    for (let i = 0; i < mask.length; i++) alpha[i] = mask[i] * 255 + 0.5;
    state.liveMask = { block: -1, index: stats.segmented, time: t, union: alpha, people: null };
    stats.segmented++;
    stats.segmentMs += performance.now() - started;
  }, (error) => {
    stopSegmenting(error);
  }).finally(() => {
    state.segmenting = null;
    redraw();
  });
}

function stopSegmenting(error) {
  state.segmenter = null;
  state.liveMask = null;
  stats.notReadable = error.message;
  setStatus("masks off: " + error.message);
  $("mask").checked = false;
  $("mask").disabled = true;
  state.useMask = false;
}

async function startSegmenter() {
  const { BrowserSegmenter } = await import("./segment.js");
  const params = new URLSearchParams(location.search);
  state.segmenter = await BrowserSegmenter.create({
    model: state.config.model, ortBase: state.config.ort, backend: params.get("backend") || "auto",
    threads: Number(params.get("threads")) || 0,
  });
  state.maskCanvas = document.createElement("canvas");
  state.maskCanvas.width = state.segmenter.width;
  state.maskCanvas.height = state.segmenter.height;
  const { backend, threads } = state.segmenter;
  state.maskSource = `masks computed in this browser (${state.config.model.spec.name}, ${backend}` +
                     (backend === "wasm" ? `, ${threads} thread${threads > 1 ? "s" : ""})` : ")");
}

// The on-screen list mirrors what the canvas shows, as text (useful for screen readers and for copying).
// Rebuilt at most 4 times a second; the last request always lands (a paused player still gets its list).
function updateList(t) {
  state.listTime = t;
  if (state.listTimer) return;
  const wait = Math.max(0, 250 - (performance.now() - state.listUpdated));
  state.listTimer = setTimeout(() => {
    state.listTimer = 0;
    state.listUpdated = performance.now();
    const active = state.showDanmaku ? activeAt(state.listTime) : [];
    const key = active.map((item) => item.index).join(",");
    if (key === state.listKey) return;
    state.listKey = key;
    const rows = active.slice(-50).map((item) => {
      const li = document.createElement("li");
      li.textContent = item.text;
      return li;
    });
    $("on-screen").replaceChildren(...rows);
  }, wait);
}

function setStatus(text) {
  $("status").textContent = text;
}

// ------------------------------------------------------------------ controls

function bindControls() {
  const s = state.config.settings;
  state.settings = { ...s };
  const outputs = {
    density: (v) => `${Math.round(v * 100)}%`, duration: (v) => `${v} s`, opacity: (v) => `${Math.round(v * 100)}%`,
  };
  for (const [id, format] of Object.entries(outputs)) {
    const input = $(id);
    input.value = s[id];
    $(id + "-out").textContent = format(s[id]);
    input.addEventListener("input", () => {
      $(id + "-out").textContent = format(Number(input.value));
      if (id === "opacity") {
        canvas.style.opacity = input.value;
      } else {
        state.settings[id] = Number(input.value);
        if (id === "duration") state.settings.speed = null; // the crossing time slider replaces a fixed speed
        scheduleSoon();
      }
    });
  }
  canvas.style.opacity = s.opacity;
  const area = $("area");
  area.value = String(s.area);
  if (area.value !== String(s.area)) { // a command-line value that is not one of the presets
    area.add(new Option(`top ${Math.round(s.area * 100)}%`, String(s.area), true, true));
  }
  area.addEventListener("change", () => { state.settings.area = Number(area.value); scheduleSoon(); });
  $("show").addEventListener("change", (e) => { state.showDanmaku = e.target.checked; redraw(); });
  $("mask").addEventListener("change", (e) => { state.useMask = e.target.checked; redraw(); });
  $("mask").disabled = !state.config.track && !state.config.model;
}

// The "Protect" choice and one checkbox per person id, shown only for tracks with person layers. Ids start
// ticked for the people who are ever salient; ticking or unticking one switches to "chosen people".
function bindPeople(track) {
  if (!track.hasPeople || !track.people.length) return;
  const protect = $("protect");
  const boxes = track.people.map((person) => {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = person.salientFrames > 0;
    box.dataset.id = String(person.id);
    if (box.checked) state.chosen.add(person.id);
    box.addEventListener("change", () => {
      if (box.checked) state.chosen.add(person.id); else state.chosen.delete(person.id);
      protect.value = "chosen";
      setProtect("chosen");
    });
    const label = document.createElement("label");
    label.append(box, document.createTextNode(` person ${person.id}`));
    label.title = `${person.frames} frames, salient in ${person.salientFrames}`;
    return label;
  });
  $("person-list").replaceChildren(...boxes);
  protect.addEventListener("change", () => setProtect(protect.value));
  $("people").hidden = false;
  video.addEventListener("click", (event) => protectClicked(event, track, boxes));
}

// "Protect this person": a click on a person in a paused frame protects that person alone from then on (their
// tracked id in the person layers); a click where nobody is says so.
async function protectClicked(event, track, boxes) {
  if (!video.paused) return;
  event.preventDefault(); // picking a person: Chromium's native controls would otherwise start playback on this click
  const rect = video.getBoundingClientRect();
  const x = Math.floor(((event.clientX - rect.left) / rect.width) * track.width);
  const y = Math.floor(((event.clientY - rect.top) / rect.height) * track.height);
  if (x < 0 || y < 0 || x >= track.width || y >= track.height) return;
  const frame = await track.peopleAt((state.frameTime ?? video.currentTime) + TIME_SLACK);
  const hit = frame.people.find((person) => person.data[y * track.width + x]);
  if (!hit) {
    setStatus("nobody there: click on a person in a paused frame to protect them");
    return;
  }
  state.chosen = new Set([hit.id]);
  for (const box of boxes) box.checked = Number(box.dataset.id) === hit.id;
  $("protect").value = "chosen";
  setProtect("chosen");
  setStatus(`protecting person ${hit.id} (click another person to switch, or choose in "Protect")`);
}

function setProtect(mode) {
  state.protect = mode;
  state.selection++;
  redraw();
}

// The live comment box (the service only): post at the current time, then lay the comments out again.
function bindCommentBox() {
  if (!state.config.post) return;
  const form = $("comment-form");
  const input = $("comment-text");
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const response = await fetch(state.config.post, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ time: video.currentTime || 0, mode: "scroll", colour: 0xffffff, text }),
    });
    const body = await response.json();
    if (!response.ok) {
      setStatus("comment not sent: " + body.detail);
      return;
    }
    input.value = "";
    state.config.comments += 1;
    await loadSchedule();
  });
}

let scheduleTimer = 0;
function scheduleSoon() {
  clearTimeout(scheduleTimer);
  scheduleTimer = setTimeout(loadSchedule, 120);
}

// ------------------------------------------------------------------ start

async function loadFont() {
  try {
    const face = new FontFace(FONT_FAMILY, `url(${state.config.font})`);
    document.fonts.add(await face.load());
  } catch (error) {
    setStatus("font failed to load, using the browser's: " + error.message);
  }
}

async function start() {
  state.config = await (await fetch("api/config")).json();
  const { width, height, title } = state.config;
  document.title = `${title} · danmask`;
  $("title").textContent = title;
  canvas.width = width;
  canvas.height = height;
  $("stage").style.aspectRatio = `${width} / ${height}`;
  bindControls();
  bindCommentBox();
  const loads = [loadFont()];
  if (state.config.track) {
    loads.push(DmaskTrack.fromUrl(state.config.track).then(async (track) => {
      state.track = track;
      bindPeople(track);
      state.maskCanvas = document.createElement("canvas");
      state.maskCanvas.width = track.width;
      state.maskCanvas.height = track.height;
      if (track.index.length) state.blocks.set(0, await track.block(0)); // the first frame has its mask
    }));
  }
  const maskParam = new URLSearchParams(location.search).get("masks"); // "off": the page without in-browser masks
  if (!state.config.track && state.config.model && maskParam !== "off") loads.push(startSegmenter());
  await Promise.all(loads);
  await loadSchedule();
  const metadata = new Promise((resolve) => video.addEventListener("loadeddata", resolve, { once: true }));
  video.src = state.config.video;
  video.addEventListener("seeking", () => { if (state.track) maskAt(video.currentTime); });
  video.addEventListener("seeked", redraw);
  video.requestVideoFrameCallback(onVideoFrame);
  requestAnimationFrame(onAnimationFrame);
  await metadata;
  document.documentElement.dataset.ready = "1";
}

start().catch((error) => {
  setStatus("error: " + error.message);
  document.documentElement.dataset.error = error.message;
});
