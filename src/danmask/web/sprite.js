// One comment drawn once into its own small canvas (text with outline), then only copied while it moves:
// rasterising hundreds of strings every frame is what makes a danmaku page slow. Shared by the file player
// (danmaku/static/player.js) and the live page (live/static/live.js); `item` is a placement from the Python
// layout engine (danmask.danmaku.layout), so both pages draw exactly what the burn-in draws.

export function hex(color) {
  return "#" + color.toString(16).padStart(6, "0");
}

export function commentSprite(item, cache, fontFamily) {
  let canvas = cache.get(item.index);
  if (canvas) return canvas;
  canvas = document.createElement("canvas");
  canvas.width = item.width;
  canvas.height = item.height;
  const c = canvas.getContext("2d");
  c.font = `${item.font_px}px ${fontFamily}`;
  c.textBaseline = "alphabetic";
  c.lineJoin = "round";
  c.lineWidth = 2 * item.stroke_px;
  c.strokeStyle = hex(item.stroke);
  c.strokeText(item.text, item.stroke_px, item.baseline);
  c.fillStyle = hex(item.color);
  c.fillText(item.text, item.stroke_px, item.baseline);
  cache.set(item.index, canvas);
  return canvas;
}
