// danmask live page: the stream's frames and their masks arrive together over one WebSocket, and the comments
// (laid out by the server's engine, never here) pass behind the people of the frame on screen.
//
// A frame message is binary: u32 header length (big-endian), JSON header {pts, tb, t, jpeg, mask, latency_ms},
// the JPEG of the picture, the PNG of its mask (alpha = person). Both are decoded before either is shown, and the
// picture and the danmaku layer cut by that mask are drawn in the same animation frame: the mask always belongs
// to the picture on screen. While one frame decodes, newer ones replace each other: a slow page skips frames,
// it never lags. Between frames the comments keep moving (at most MAX_AHEAD_S past the frame's time), the cut-out
// stays that of the frame on screen.
//
// Text messages: hello (size, font, comments on screen now), items (new placements, broadcast to every page the
// moment one is posted), error (for this page only). Comment text only ever reaches canvas fillText/strokeText
// and textContent: never HTML.
import { commentSprite } from "./sprite.js";

const $ = (id) => document.getElementById(id);
const picture = $("picture");
const layer = $("danmaku");
const pctx = picture.getContext("2d");
const ctx = layer.getContext("2d");
const FONT_FAMILY = "danmask-live-font";
const MAX_AHEAD_S = 0.25;

const state = {
  hello: null,
  items: [], // placements sorted by start (session seconds)
  seen: new Set(), // indices of the placements received
  sprites: new Map(), // placement index -> pre-drawn canvas while it is on screen
  shown: null, // {pts, t, at, picture: ImageBitmap, mask: ImageBitmap}: the frame on screen
  pending: null, // the newest frame message not decoded yet
  decoding: false,
  showDanmaku: true,
  useMask: true,
  drawnLast: 0, // comments drawn at the last draw (an empty layer is not cleared again)
  listKey: "",
};

// Counters read by tests (no effect on drawing): frames shown, masks applied and for which pts, how long after
// its arrival at the server each frame reached this screen (meaningful when both share a clock: the same machine),
// and when this page last sent a comment (ms since the epoch; each received placement gets its `arrived` time).
const stats = { received: 0, shown: 0, skipped: 0, masked: 0, pts: null, tb: null, maskPts: null, latencyMs: null,
                drawn: 0, sentAt: null, screenMs: [] }; // screenMs: arrival at the server -> on this screen
// The wall clock, as the server's timestamps and other pages read it. (performance.timeOrigin + now() is fixed
// at page load and drifts from it: two pages disagreed by 14 ms, so a comment seemed to arrive before it was sent.)
const epochMs = () => Date.now();
window.danmaskLive = { state, stats };

function setStatus(text) {
  $("status").textContent = text;
}

// ------------------------------------------------------------------ messages

function onText(message) {
  if (message.type === "hello") {
    state.hello = message;
    document.title = `${message.title} · danmask live`;
    $("title").textContent = `${message.title} (live)`;
    layer.width = message.width;
    layer.height = message.height;
    $("stage").style.aspectRatio = `${message.width} / ${message.height}`;
    $("comment-text").maxLength = message.max_chars;
    layer.style.opacity = message.opacity;
    addItems(message.items);
    loadFont(message.font);
  } else if (message.type === "items") {
    addItems(message.items);
  } else if (message.type === "error") {
    setStatus("comment not sent: " + message.error);
  }
}

// A placement can come twice (in the hello and in a broadcast made while the page connected): index is its key.
function addItems(items) {
  const arrived = epochMs();
  const fresh = items.filter((item) => !state.seen.has(item.index));
  for (const item of fresh) state.seen.add(item.index);
  state.items.push(...fresh.map((item) => ({ ...item, arrived })));
  state.items.sort((a, b) => a.start - b.start);
}

function parseFrame(buffer) {
  const length = new DataView(buffer).getUint32(0);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const jpegAt = 4 + length;
  return {
    header,
    jpeg: new Blob([new Uint8Array(buffer, jpegAt, header.jpeg)], { type: "image/jpeg" }),
    mask: new Blob([new Uint8Array(buffer, jpegAt + header.jpeg, header.mask)], { type: "image/png" }),
  };
}

function onFrame(buffer) {
  stats.received++;
  if (state.pending) stats.skipped++;
  state.pending = parseFrame(buffer);
  if (!state.decoding) decodeNewest();
}

async function decodeNewest() {
  state.decoding = true;
  while (state.pending) {
    const { header, jpeg, mask } = state.pending;
    state.pending = null;
    let bitmaps;
    try {
      bitmaps = await Promise.all([createImageBitmap(jpeg), createImageBitmap(mask)]);
    } catch (error) { // a damaged frame is skipped; the next one is shown
      setStatus("a frame could not be decoded: " + error.message);
      continue;
    }
    await new Promise((resolve) => requestAnimationFrame(resolve));
    show({ pts: header.pts, tb: header.tb, t: header.t, latencyMs: header.latency_ms, picture: bitmaps[0],
           mask: bitmaps[1] });
    if (stats.screenMs.length < 10000) stats.screenMs.push(epochMs() - header.arrived_ms);
  }
  state.decoding = false;
}

// ------------------------------------------------------------------ drawing

// The picture canvas takes the JPEG's own size (a plain copy; CSS scales both canvases to the stage), the layer
// keeps the video's size (the layout's coordinates), and the mask bitmap is scaled onto the layer where it cuts.
function show(frame) {
  const old = state.shown;
  state.shown = { ...frame, at: performance.now() };
  if (picture.width !== frame.picture.width || picture.height !== frame.picture.height) {
    picture.width = frame.picture.width;
    picture.height = frame.picture.height;
  }
  pctx.drawImage(frame.picture, 0, 0);
  state.drawnLast = -1; // a new mask: draw the layer even if it stays empty
  drawDanmaku(frame.t);
  if (old) {
    old.picture.close();
    old.mask.close();
  }
  stats.shown++;
  stats.pts = frame.pts;
  stats.tb = frame.tb;
  stats.latencyMs = frame.latencyMs;
}

function sprite(item) {
  return commentSprite(item, state.sprites, FONT_FAMILY);
}

function activeAt(t) {
  if (state.items.length > 500) state.items = state.items.filter((item) => item.end > t); // gone for good
  return state.items.filter((item) => item.start <= t && item.end > t);
}

// Comments at time t, cut by the mask of the frame on screen.
function drawDanmaku(t) {
  const active = state.showDanmaku ? activeAt(t) : [];
  if (!active.length && !state.drawnLast) return; // still empty: nothing to clear (software canvases are slow)
  ctx.clearRect(0, 0, layer.width, layer.height);
  for (const item of active) ctx.drawImage(sprite(item), Math.round(item.x0 + item.vx * (t - item.start)), item.y);
  const live = new Set(active.map((item) => item.index));
  for (const key of state.sprites.keys()) if (!live.has(key)) state.sprites.delete(key);
  if (active.length && state.useMask && state.shown) {
    ctx.globalCompositeOperation = "destination-out";
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(state.shown.mask, 0, 0, layer.width, layer.height);
    ctx.globalCompositeOperation = "source-over";
    stats.masked++;
    stats.maskPts = state.shown.pts;
  }
  stats.drawn = state.drawnLast = active.length;
  updateList(active);
}

function onAnimationFrame(now) {
  const shown = state.shown;
  if (shown) drawDanmaku(shown.t + Math.min(MAX_AHEAD_S, (now - shown.at) / 1000));
  requestAnimationFrame(onAnimationFrame);
}

function updateList(active) {
  const key = active.map((item) => item.index).join(",");
  if (key === state.listKey) return;
  state.listKey = key;
  $("on-screen").replaceChildren(...active.slice(-50).map((item) => {
    const li = document.createElement("li");
    li.textContent = item.text;
    return li;
  }));
}

async function loadFont(url) {
  try {
    const face = new FontFace(FONT_FAMILY, `url(${url})`);
    document.fonts.add(await face.load());
    state.sprites.clear();
  } catch (error) {
    setStatus("font failed to load, using the browser's: " + error.message);
  }
  document.documentElement.dataset.ready = "1";
}

// ------------------------------------------------------------------ start

function connect() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") onText(JSON.parse(event.data));
    else onFrame(event.data);
  });
  socket.addEventListener("open", () => setStatus("live"));
  socket.addEventListener("close", () => {
    setStatus("the stream has ended (or the server stopped)");
    document.documentElement.dataset.closed = "1";
  });
  return socket;
}

function bindControls(socket) {
  $("show").addEventListener("change", (e) => { state.showDanmaku = e.target.checked; });
  $("mask").addEventListener("change", (e) => { state.useMask = e.target.checked; });
  $("comment-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("comment-text");
    const text = input.value.trim();
    if (!text || socket.readyState !== WebSocket.OPEN) return;
    const colour = parseInt($("comment-colour").value.slice(1), 16);
    stats.sentAt = epochMs(); // before the send, so no page can see the comment earlier than this
    socket.send(JSON.stringify({ type: "comment", text, mode: $("comment-mode").value, colour }));
    input.value = "";
  });
  setInterval(() => {
    if (state.shown) setStatus(`live · frame pts ${stats.pts} · mask ready ${stats.latencyMs} ms after capture`);
  }, 1000);
}

bindControls(connect());
requestAnimationFrame(onAnimationFrame);
