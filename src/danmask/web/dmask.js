// dmask.js: reader of danmask mask tracks (.dmask v1 and v2) for browsers and Node 18+. No dependencies.
//
// Byte layout: docs/mask-track.md. Blocks are inflated with the platform's DecompressionStream('deflate')
// (zlib format), every checksum is verified, and a damaged file throws DmaskError instead of drawing garbage.
//
//   import { DmaskTrack } from "./dmask.js";
//   const track = await DmaskTrack.fromUrl("clip.dmask");        // or DmaskTrack.fromBuffer(arrayBuffer)
//   const m = await track.maskAt(video.currentTime);               // {time, pts, width, height, data}
//   // m.data: Uint8Array(width * height), 255 = person, row-major: the union of the salient people
//
// Version 2 tracks may carry person layers (track.hasPeople; track.people lists the ids): then
// track.peopleAt(t) gives every tracked person of the frame ({id, salient, data}) and
// track.maskAt(t, which) the mask protecting "salient" (the stored union), "all" or an array of ids.
// Person layers are inflated only when asked for, so a union-only reader does the same work as for v1.

export class DmaskError extends Error {
  constructor(message) {
    super(message);
    this.name = "DmaskError";
  }
}

const MAGIC = "DMSK";
const VERSION = 2; // newest version read
const FLAG_PEOPLE = 1;
const HEADER_SIZE = 40;
const MAX_MASK_PIXELS = 4096 * 4096;  // as track.py: a hostile header must not make the page allocate gigabytes
const INDEX_ENTRY_SIZE = 20;
const PEOPLE_ENTRY_SIZE = 12;
const BLOCK_HEAD_SIZE = 8;
const SALIENT = 2; // person state byte: 0 absent, 1 present, 2 present and salient
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
  if (version < 1 || version > VERSION) throw new DmaskError(`unsupported mask track version ${version}`);
  const crc = view.getUint32(36, true);
  if (crc32(new Uint8Array(view.buffer, view.byteOffset, 36)) !== crc) {
    throw new DmaskError("header checksum mismatch: the file is damaged");
  }
  const flags = version >= 2 ? view.getUint32(32, true) : 0; // version 1: flags are ignored
  if (flags & ~FLAG_PEOPLE) throw new DmaskError(`unknown header flags 0x${flags.toString(16)}`);
  const h = {
    version,
    maskWidth: view.getUint16(8, true),
    maskHeight: view.getUint16(10, true),
    sourceWidth: view.getUint16(12, true),
    sourceHeight: view.getUint16(14, true),
    timeBase: [view.getUint32(16, true), view.getUint32(20, true)],
    frames: view.getUint32(24, true),
    blocks: view.getUint32(28, true),
    people: Boolean(flags & FLAG_PEOPLE),
  };
  if (view.getUint16(6, true) !== HEADER_SIZE || !h.maskWidth || !h.maskHeight || !h.timeBase[0] || !h.timeBase[1]) {
    throw new DmaskError("header has zero sizes or time base: the file is damaged");
  }
  if (h.maskWidth * h.maskHeight > MAX_MASK_PIXELS) {
    throw new DmaskError("header says masks larger than any danmask writes: the file is damaged");
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

// The person table after the index (v2 with person layers): [{id, frames, salientFrames}] by id.
function parsePeopleTable(view, header) {
  const start = HEADER_SIZE + header.blocks * INDEX_ENTRY_SIZE + 4;
  const count = view.byteLength >= start + 4 ? view.getUint32(start, true) : 0;
  const end = start + 4 + count * PEOPLE_ENTRY_SIZE;
  if (view.byteLength < end + 4) throw new DmaskError("truncated: the person table does not fit in the file");
  if (crc32(new Uint8Array(view.buffer, view.byteOffset + start, end - start)) !== view.getUint32(end, true)) {
    throw new DmaskError("person table checksum mismatch: the file is damaged");
  }
  const people = [];
  for (let i = 0; i < count; i++) {
    const at = start + 4 + i * PEOPLE_ENTRY_SIZE;
    const person = { id: view.getUint32(at, true), frames: view.getUint32(at + 4, true),
                     salientFrames: view.getUint32(at + 8, true) };
    if (i && person.id <= people[i - 1].id) throw new DmaskError("person table ids out of order: the file is damaged");
    people.push(person);
  }
  return people;
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
    if (count > width + 1) throw new DmaskError("row has more transitions than its pixels allow");
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

// n masks coded by danmask.maskcode: `modes` (n x h bytes) and a value stream that must be used up exactly.
function decodeFrames(modes, values, n, w, h) {
  const reader = new ValueReader(values);
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
  if (reader.pos !== values.length) throw new DmaskError("unused bytes after the last row");
  return masks;
}

// Person payload of a block: per frame, [{id, salient, data}] by id.
function decodePeople(raw, n, w, h) {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (raw.length < 4) throw new DmaskError("person payload too short");
  const count = view.getUint32(0, true);
  if (raw.length < 4 + count * (8 + n + n * h)) throw new DmaskError(`person payload too short for ${count} people`);
  const ids = [], sizes = [];
  for (let k = 0; k < count; k++) {
    ids.push(view.getUint32(4 + 4 * k, true));
    sizes.push(view.getUint32(4 + 4 * count + 4 * k, true));
    if (k && ids[k] <= ids[k - 1]) throw new DmaskError("person ids out of order");
  }
  const statesAt = 4 + 8 * count, modesAt = statesAt + n * count;
  let valuesAt = modesAt + count * n * h;
  if (raw.length !== valuesAt + sizes.reduce((a, b) => a + b, 0)) {
    throw new DmaskError("person payload size does not match its layers");
  }
  const frames = Array.from({ length: n }, () => []);
  for (let k = 0; k < count; k++) {
    const modes = raw.subarray(modesAt + k * n * h, modesAt + (k + 1) * n * h);
    const layer = decodeFrames(modes, raw.subarray(valuesAt, valuesAt + sizes[k]), n, w, h);
    valuesAt += sizes[k];
    for (let f = 0; f < n; f++) {
      const state = raw[statesAt + f * count + k];
      if (state > SALIENT) throw new DmaskError("bad person state byte");
      if (state) frames[f].push({ id: ids[k], salient: state === SALIENT, data: layer[f] });
    }
  }
  return frames;
}

/**
 * The mask protecting `which` people of one frame, as danmask's MaskTrack.select: "salient" is the stored
 * union, an array (or Set) of ids the union of those people's layers, "all" every person plus the union.
 */
export function selectMask(union, people, which) {
  if (which === "salient") return union;
  const all = which === "all";
  const chosen = all ? null : new Set(which);
  const out = all ? union.slice() : new Uint8Array(union.length);
  for (const person of people) {
    if (!all && !chosen.has(person.id)) continue;
    const data = person.data;
    for (let i = 0; i < data.length; i++) if (data[i]) out[i] = 255;
  }
  return out;
}

export class DmaskTrack {
  constructor(buffer) {
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.header = parseHeader(this.view);
    this.index = parseIndex(this.view, this.header);
    const [num, den] = this.header.timeBase;
    this.secondsPerTick = num / den;
    this.people = this.header.people ? parsePeopleTable(this.view, this.header) : [];
    this.cache = new Map(); // block number -> decoded block; a few recent blocks
    this.peopleCache = new Map(); // block number -> its frames' people
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

  get hasPeople() { return this.header.people; }
  /** Person ids of the track (from the person table), ascending; [] without person layers. */
  get ids() { return this.people.map((p) => p.id); }

  // Check and inflate the stream whose block head is at byte `at`.
  async stream(at, where) {
    if (at + BLOCK_HEAD_SIZE > this.bytes.length) throw new DmaskError(`truncated: ${where} is missing`);
    const size = this.view.getUint32(at, true);
    const crc = this.view.getUint32(at + 4, true);
    const start = at + BLOCK_HEAD_SIZE;
    if (start + size > this.bytes.length) throw new DmaskError(`truncated: ${where} is cut off`);
    const packed = this.bytes.subarray(start, start + size);
    if (crc32(packed) !== crc) throw new DmaskError(`${where}: checksum mismatch, the file is damaged`);
    return inflate(packed);
  }

  entry(number) {
    const entry = this.index[number];
    if (!entry) throw new DmaskError(`no block ${number}`);
    return entry;
  }

  /** Decode block `number`: {pts: number[], times: number[], masks: Uint8Array[]} (the union). */
  async block(number) {
    if (this.cache.has(number)) return this.cache.get(number);
    const entry = this.entry(number);
    const where = `block ${number} (at byte ${entry.offset})`;
    const raw = await this.stream(entry.offset, where);
    const n = entry.frames, h = this.height, w = this.width;
    if (raw.length < n * (8 + h)) throw new DmaskError(`${where}: payload too short`);
    const rawView = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const pts = [];
    for (let i = 0; i < n; i++) pts.push(Number(rawView.getBigInt64(8 * i, true)));
    let masks;
    try {
      masks = decodeFrames(raw.subarray(8 * n, 8 * n + n * h), raw.subarray(8 * n + n * h), n, w, h);
    } catch (err) {
      throw new DmaskError(`${where}: ${err.message}`);
    }
    const decoded = { pts, times: pts.map((p) => p * this.secondsPerTick), masks };
    return remember(this.cache, number, decoded);
  }

  /** Person layers of block `number`: per frame, [{id, salient, data}] by id ([] per frame without layers). */
  async peopleBlock(number) {
    if (this.peopleCache.has(number)) return this.peopleCache.get(number);
    const entry = this.entry(number);
    if (!this.hasPeople) return Array.from({ length: entry.frames }, () => []);
    if (entry.offset + BLOCK_HEAD_SIZE > this.bytes.length) {
      throw new DmaskError(`truncated: block ${number} is missing`);
    }
    const at = entry.offset + BLOCK_HEAD_SIZE + this.view.getUint32(entry.offset, true);
    const where = `block ${number} person layers (at byte ${at})`;
    const raw = await this.stream(at, where);
    let frames;
    try {
      frames = decodePeople(raw, entry.frames, this.width, this.height);
    } catch (err) {
      throw new DmaskError(`${where}: ${err.message}`);
    }
    return remember(this.peopleCache, number, frames);
  }

  // Block number and index in it of the frame displayed at `t` seconds.
  async frameAt(t) {
    if (!this.index.length) throw new DmaskError("mask track is empty");
    let lo = 0, hi = this.index.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.index[mid].firstPts * this.secondsPerTick <= t) lo = mid; else hi = mid - 1;
    }
    const block = await this.block(lo);
    let i = 0;
    while (i + 1 < block.times.length && block.times[i + 1] <= t) i++;
    return { number: lo, index: i, block };
  }

  /** Every tracked person of the frame displayed at `t`: {time, pts, people: [{id, salient, data}]}. */
  async peopleAt(t) {
    const { number, index, block } = await this.frameAt(t);
    return { time: block.times[index], pts: block.pts[index], people: (await this.peopleBlock(number))[index] };
  }

  /**
   * The mask of the frame displayed at `t` seconds (last frame with time <= t; the first before it), protecting
   * `which` people: "salient" (default, the stored union), "all", or an array of person ids (see selectMask).
   */
  async maskAt(t, which = "salient") {
    const { number, index, block } = await this.frameAt(t);
    let data = block.masks[index];
    if (which !== "salient") {
      if (which !== "all") {
        const ids = this.ids;
        const unknown = [...which].filter((id) => !ids.includes(id));
        if (unknown.length) {
          throw new DmaskError(`no person ${unknown.join(", ")} in this track (ids: ${ids.join(", ") || "none"})`);
        }
      }
      data = selectMask(data, (await this.peopleBlock(number))[index], which);
    }
    return { time: block.times[index], pts: block.pts[index], width: this.width, height: this.height, data };
  }
}

// Keep a few recent blocks: cache.set with the oldest entry dropped past 4.
function remember(cache, number, value) {
  cache.set(number, value);
  if (cache.size > 4) cache.delete(cache.keys().next().value);
  return value;
}
