// The live drawing canvas (js_on_load of cnndemo/app/canvas.py). Runs with `element`, `props`,
// `trigger` and `watch` from gr.HTML. Strokes are kept as vectors in [0, 1] coordinates and drawn
// twice: on the visible canvas (devicePixelRatio-sized) and on a small SIDE x SIDE bitmap whose
// alpha, cropped to the ink, is what the server gets (see cnndemo/data/canvas.py).
// Sending: at most every INTERVAL ms while the pen moves and once at pen-up; never a second
// payload while one is unanswered (the server echoes `seq` into props.ack), so the newest drawing
// always wins and nothing stale is queued.
const cfg = __CANVAS_CONFIG__; // filled in by cnndemo/app/canvas.py
const SIDE = cfg.side, INTERVAL = cfg.interval_ms, STALL = 4000;
const root = element.querySelector(".cd-wrap"); // carries data-seq, data-acked, data-strokes (for tests)
const surface = element.querySelector(".cd-surface");
const view = element.querySelector("canvas.cd-ink");
const small = document.createElement("canvas");
small.width = small.height = SIDE;
const sctx = small.getContext("2d", { willReadFrequently: true });
const vctx = view.getContext("2d");
const status = element.querySelector(".cd-status");
const buttons = {};
element.querySelectorAll("button[data-action]").forEach((b) => (buttons[b.dataset.action] = b));

let strokes = [], cleared = null, current = null, pointerId = null, tool = "pen";
let seq = 0, acked = 0, sentAt = 0, dirty = false, timer = null, finalPending = false;

function widthOf(stroke) { return stroke.erase ? cfg.brush * 2.5 : cfg.brush; }

function paint(ctx, scale, stroke) {
  // Draw `stroke` as one path (round caps and joins, like a felt pen).
  const pts = stroke.points;
  ctx.globalCompositeOperation = stroke.erase ? "destination-out" : "source-over";
  ctx.strokeStyle = ctx.fillStyle = "#000";
  ctx.lineWidth = widthOf(stroke) * scale;
  ctx.lineCap = ctx.lineJoin = "round";
  if (pts.length === 1) {
    ctx.beginPath();
    ctx.arc(pts[0][0] * scale, pts[0][1] * scale, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(pts[0][0] * scale, pts[0][1] * scale);
  for (let i = 1; i < pts.length; i++) ctx.lineTo(pts[i][0] * scale, pts[i][1] * scale);
  ctx.stroke();
}

function redraw() {
  for (const [ctx, scale] of [[vctx, view.width], [sctx, SIDE]]) {
    ctx.globalCompositeOperation = "source-over";
    ctx.clearRect(0, 0, scale, scale);
    for (const s of strokes) paint(ctx, scale, s);
  }
  refresh();
}

function resize() {
  const css = view.getBoundingClientRect().width;
  const px = Math.max(1, Math.round(css * (window.devicePixelRatio || 1)));
  if (view.width !== px) { view.width = view.height = px; redraw(); if (current) snapshot(); }
}

function refresh() {
  const inked = strokes.some((s) => !s.erase);
  root.dataset.strokes = String(strokes.length);
  surface.classList.toggle("cd-empty", !inked && !current);
  buttons.undo.disabled = strokes.length === 0 && !cleared;
  buttons.clear.disabled = strokes.length === 0;
  buttons.pen.setAttribute("aria-pressed", String(tool === "pen"));
  buttons.eraser.setAttribute("aria-pressed", String(tool === "eraser"));
  surface.classList.toggle("cd-erasing", tool === "eraser");
}

// ------------------------------------------------------------------ the payload

function payload(final) {
  const data = sctx.getImageData(0, 0, SIDE, SIDE).data;
  let x0 = SIDE, y0 = SIDE, x1 = -1, y1 = -1;
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      if (data[(y * SIDE + x) * 4 + 3]) {
        if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
      }
    }
  }
  const body = { v: 1, seq, final, w: SIDE, h: SIDE, x: 0, y: 0, cw: 0, ch: 0, alpha: "" };
  if (x1 >= 0) {
    const cw = x1 - x0 + 1, ch = y1 - y0 + 1, bytes = new Uint8Array(cw * ch);
    for (let y = 0; y < ch; y++)
      for (let x = 0; x < cw; x++) bytes[y * cw + x] = data[((y + y0) * SIDE + x + x0) * 4 + 3];
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    Object.assign(body, { x: x0, y: y0, cw, ch, alpha: btoa(bin) });
  }
  return JSON.stringify(body);
}

function showStatus() {
  // The server's one-line answer (props.answer, e.g. "VGG-11: 7 · 98%") when it sends one; the dot says
  // whether the newest drawing is answered yet.
  const waiting = seq > acked, answer = strokes.length ? String(props.answer || "") : "";
  status.dataset.state = seq === 0 ? "idle" : waiting ? "busy" : "done";
  status.textContent = seq === 0 ? "" : answer || (waiting ? "thinking…" : "up to date");
}

function send() {
  clearTimeout(timer);
  timer = null;
  const now = performance.now();
  if (seq > acked && now - sentAt < STALL) { // one in flight: its ack sends the newest drawing
    timer = setTimeout(send, STALL - (now - sentAt)); // (or this, if the answer never comes)
    return;
  }
  const wait = INTERVAL - (now - sentAt);
  if (!finalPending && wait > 0) { timer = setTimeout(send, wait); return; }
  if (!dirty) return;
  dirty = false;
  seq += 1;
  sentAt = now;
  root.dataset.seq = String(seq);
  props.value = payload(finalPending && !current);
  finalPending = false;
  showStatus();
}

function changed(final) {
  dirty = true;
  if (final) finalPending = true;
  if (final || !timer) send();
}

// The props' names are not quoted here: gr.HTML takes a quoted name in this script for a custom event, and
// would then send an event trigger (as text) beside every update of the prop.
watch("ack answer".split(" "), () => {
  const ack = Number(props.ack) || 0;
  if (ack <= acked) { showStatus(); return; } // a stale echo never moves us backwards
  acked = ack;
  root.dataset.acked = String(acked);
  showStatus();
  if (dirty) send();
});

// ------------------------------------------------------------------ pointer input

function point(ev) {
  const r = view.getBoundingClientRect();
  return [Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height))];
}

// While a stroke is drawn, both canvases are the snapshot taken at pen-down plus the whole stroke
// as one path (segment by segment, anti-aliased edges would pile up at every joint).
const vbase = document.createElement("canvas"), sbase = document.createElement("canvas");
function snapshot() {
  for (const [base, src] of [[vbase, view], [sbase, small]]) {
    base.width = src.width; base.height = src.height;
    base.getContext("2d").drawImage(src, 0, 0);
  }
}
function repaintCurrent() {
  for (const [ctx, scale, base] of [[vctx, view.width, vbase], [sctx, SIDE, sbase]]) {
    ctx.globalCompositeOperation = "copy";
    ctx.drawImage(base, 0, 0);
    paint(ctx, scale, current);
  }
}

function extend(ev) {
  const evs = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [];
  for (const e of evs.length ? evs : [ev]) current.points.push(point(e));
  repaintCurrent();
}

view.addEventListener("pointerdown", (ev) => {
  if (pointerId !== null || (ev.pointerType === "mouse" && ev.button !== 0)) return;
  ev.preventDefault();
  pointerId = ev.pointerId;
  view.setPointerCapture(ev.pointerId);
  cleared = null;
  current = { erase: tool === "eraser", points: [point(ev)] };
  strokes.push(current);
  snapshot();
  repaintCurrent();
  refresh();
  changed(false);
});

view.addEventListener("pointermove", (ev) => {
  if (ev.pointerId !== pointerId || !current) return;
  ev.preventDefault();
  extend(ev);
  changed(false);
});

function finish(ev) {
  if (ev.pointerId !== pointerId) return;
  pointerId = null;
  current = null;
  refresh();
  changed(true);
}
view.addEventListener("pointerup", finish);
view.addEventListener("pointercancel", finish);
view.addEventListener("touchstart", (ev) => ev.preventDefault(), { passive: false }); // no scroll, no zoom

// ------------------------------------------------------------------ tools

function undo() {
  if (strokes.length) strokes.pop();
  else if (cleared) { strokes = cleared; cleared = null; }
  redraw();
  changed(true);
}
function clear() {
  if (!strokes.length) return;
  cleared = strokes;
  strokes = [];
  redraw();
  changed(true);
}
function setTool(t) { tool = t; refresh(); }

buttons.pen.addEventListener("click", () => setTool("pen"));
buttons.eraser.addEventListener("click", () => setTool("eraser"));
buttons.undo.addEventListener("click", undo);
buttons.clear.addEventListener("click", clear);
element.addEventListener("keydown", (ev) => {
  const mod = ev.ctrlKey || ev.metaKey;
  if (mod && ev.key.toLowerCase() === "z") { ev.preventDefault(); undo(); }
  else if (mod || ev.altKey || ev.target.tagName === "INPUT") return;
  else if (ev.key === "p" || ev.key === "b") setTool("pen");
  else if (ev.key === "e") setTool("eraser");
  else if (ev.key === "Delete" || ev.key === "Backspace") { ev.preventDefault(); clear(); }
});

new ResizeObserver(resize).observe(surface);
window.matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`).addEventListener?.("change", resize);
resize();
refresh();
showStatus();
