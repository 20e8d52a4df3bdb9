// dmask.js: reader of danmask mask tracks (.dmask v1) for browsers and Node 18+. No dependencies.
//
// Byte layout: docs/mask-track.md. Blocks are inflated with the platform's DecompressionStream('deflate')
// (zlib format), every checksum is verified, and a damaged file throws DmaskError instead of drawing garbage.
//
//   import { DmaskTrack } from "./dmask.js";
//   const track = await DmaskTrack.fromUrl("clip.dmask");        // or DmaskTrack.fromBuffer(arrayBuffer)
//   const m = await track.maskAt(video.currentTime);               // {time, pts, width, height, data}
//   // m.data: Uint8Array(width * height), 255 = person, row-major

export class DmaskError extends Error {
  constructor(message) {
    super(message);
    this.name = "DmaskError";
  }
}

const MAGIC = "DMSK";
const VERSION = 1;
const HEADER_SIZE = 40;
const INDEX_ENTRY_SIZE = 20;
const BLOCK_HEAD_SIZE = 8;
const SAME = 0, FROM_PREVIOUS = 1, FROM_ABOVE = 2, EXPLICIT = 3, EXPLICIT_ESCAPE = 255;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function inflate(bytes) {
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (err) {
    throw new DmaskError(`cannot inflate block (${err.message})`);
  }
}

function parseHeader(view) {
  if (view.byteLength < HEADER_SIZE) throw new DmaskError("not a mask track: shorter than its header");
  const magic = String.fromCharCode(...new Uint8Array(view.buffer, view.byteOffset, 4));
  if (magic !== MAGIC) throw new DmaskError(`not a mask track (magic ${JSON.stringify(magic)})`);
  const version = view.getUint16(4, true);
  if (version !== VERSION) throw new DmaskError(`unsupported mask track version ${version}`);
  const crc = view.getUint32(36, true);
  if (crc32(new Uint8Array(view.buffer, view.byteOffset, 36)) !== crc) {
    throw new DmaskError("header checksum mismatch: the file is damaged");
  }
  const h = {
    version,
    maskWidth: view.getUint16(8, true),
    maskHeight: view.getUint16(10, true),
    sourceWidth: view.getUint16(12, true),
    sourceHeight: view.getUint16(14, true),
    timeBase: [view.getUint32(16, true), view.getUint32(20, true)],
    frames: view.getUint32(24, true),
    blocks: view.getUint32(28, true),
  };
  if (view.getUint16(6, true) !== HEADER_SIZE || !h.maskWidth || !h.maskHeight || !h.timeBase[0] || !h.timeBase[1]) {
    throw new DmaskError("header has zero sizes or time base: the file is damaged");
  }
  return h;
}

function parseIndex(view, header) {
  const end = HEADER_SIZE + header.blocks * INDEX_ENTRY_SIZE;
  if (view.byteLength < end + 4) throw new DmaskError("truncated: the block index does not fit in the file");
  const bytes = new Uint8Array(view.buffer, view.byteOffset + HEADER_SIZE, end - HEADER_SIZE);
  if (crc32(bytes) !== view.getUint32(end, true)) throw new DmaskError("index checksum mismatch: the file is damaged");
  const index = [];
  let frames = 0;
  for (let i = 0; i < header.blocks; i++) {
    const at = HEADER_SIZE + i * INDEX_ENTRY_SIZE;
    const entry = {
      firstPts: Number(view.getBigInt64(at, true)),
      offset: Number(view.getBigUint64(at + 8, true)),
      frames: view.getUint32(at + 16, true),
    };
    frames += entry.frames;
    index.push(entry);
  }
  if (frames !== header.frames) throw new DmaskError("index frame counts do not add up: the file is damaged");
  return index;
}

class ValueReader {
  constructor(bytes) {
    this.bytes = bytes;
    this.pos = 0;
  }
  varint() {
    let value = 0, scale = 1;
    for (;;) {
      if (this.pos >= this.bytes.length) throw new DmaskError("value stream ends inside a row");
      const b = this.bytes[this.pos++];
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
      if (scale > 2 ** 49) throw new DmaskError("malformed varint in value stream");
    }
  }
  signed() {
    const z = this.varint();
    return z % 2 ? -(z + 1) / 2 : z / 2;
  }
}

function decodeRow(mode, reader, previous, above, width) {
  let xs;
  if (mode === SAME || mode === FROM_PREVIOUS) {
    if (!previous) throw new DmaskError("row refers to a previous frame in the first frame of a block");
    xs = mode === SAME ? previous : previous.map((x) => x + reader.signed());
  } else if (mode === FROM_ABOVE) {
    if (!above) throw new DmaskError("first row refers to the row above");
    xs = above.map((x) => x + reader.signed());
  } else {
    const count = mode === EXPLICIT_ESCAPE ? reader.varint() : mode - EXPLICIT;
    xs = new Array(count);
    let x = 0;
    for (let i = 0; i < count; i++) xs[i] = x += reader.signed();
  }
  if (xs.length % 2) throw new DmaskError("odd number of transitions in a row");
  for (let i = 0; i < xs.length; i++) {
    if (xs[i] < 0 || xs[i] > width || (i && xs[i] <= xs[i - 1])) {
      throw new DmaskError("row transitions out of order or out of range");
    }
  }
  return xs;
}

function renderRows(rows, width) {
  const data = new Uint8Array(width * rows.length);
  rows.forEach((xs, y) => {
    for (let i = 0; i < xs.length; i += 2) data.fill(255, y * width + xs[i], y * width + xs[i + 1]);
  });
  return data;
}

export class DmaskTrack {
  constructor(buffer) {
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.header = parseHeader(this.view);
    this.index = parseIndex(this.view, this.header);
    const [num, den] = this.header.timeBase;
    this.secondsPerTick = num / den;
    this.cache = new Map(); // block number -> decoded block; a few recent blocks
  }

  static async fromBuffer(buffer) {
    return new DmaskTrack(buffer);
  }

  static async fromUrl(url) {
    const response = await fetch(url);
    if (!response.ok) throw new DmaskError(`${url}: HTTP ${response.status}`);
    return new DmaskTrack(await response.arrayBuffer());
  }

  get width() { return this.header.maskWidth; }
  get height() { return this.header.maskHeight; }
  get frames() { return this.header.frames; }

  /** Decode block `number`: {pts: number[], times: number[], masks: Uint8Array[]}. */
  async block(number) {
    if (this.cache.has(number)) return this.cache.get(number);
    const entry = this.index[number];
    if (!entry) throw new DmaskError(`no block ${number}`);
    const where = `block ${number} (at byte ${entry.offset})`;
    if (entry.offset + BLOCK_HEAD_SIZE > this.bytes.length) throw new DmaskError(`truncated: ${where} is missing`);
    const size = this.view.getUint32(entry.offset, true);
    const crc = this.view.getUint32(entry.offset + 4, true);
    const start = entry.offset + BLOCK_HEAD_SIZE;
    if (start + size > this.bytes.length) throw new DmaskError(`truncated: ${where} is cut off`);
    const packed = this.bytes.subarray(start, start + size);
    if (crc32(packed) !== crc) throw new DmaskError(`${where}: checksum mismatch, the file is damaged`);
    const raw = await inflate(packed);
    const n = entry.frames, h = this.height, w = this.width;
    if (raw.length < n * (8 + h)) throw new DmaskError(`${where}: payload too short`);
    const rawView = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const pts = [];
    for (let i = 0; i < n; i++) pts.push(Number(rawView.getBigInt64(8 * i, true)));
    const modes = raw.subarray(8 * n, 8 * n + n * h);
    const reader = new ValueReader(raw.subarray(8 * n + n * h));
    const masks = [];
    let previous = null;
    for (let f = 0; f < n; f++) {
      const rows = [];
      for (let y = 0; y < h; y++) {
        rows.push(decodeRow(modes[f * h + y], reader, previous && previous[y], y ? rows[y - 1] : null, w));
      }
      masks.push(renderRows(rows, w));
      previous = rows;
    }
    if (reader.pos !== reader.bytes.length) throw new DmaskError(`${where}: unused bytes after the last row`);
    const decoded = { pts, times: pts.map((p) => p * this.secondsPerTick), masks };
    this.cache.set(number, decoded);
    if (this.cache.size > 4) this.cache.delete(this.cache.keys().next().value);
    return decoded;
  }

  /** The mask of the frame displayed at `t` seconds (last frame with time <= t; the first before it). */
  async maskAt(t) {
    if (!this.index.length) throw new DmaskError("mask track is empty");
    let lo = 0, hi = this.index.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.index[mid].firstPts * this.secondsPerTick <= t) lo = mid; else hi = mid - 1;
    }
    const block = await this.block(lo);
    let i = 0;
    while (i + 1 < block.times.length && block.times[i + 1] <= t) i++;
    return { time: block.times[i], pts: block.pts[i], width: this.width, height: this.height, data: block.masks[i] };
  }
}
