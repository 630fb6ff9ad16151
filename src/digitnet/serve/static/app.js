// digitnet page: draw on the board and see predictions as you draw; drop a photo to read a number.
"use strict";

const $ = (selector) => document.querySelector(selector);

// ---------------------------------------------------------------------------------------------------
// Drawing. Strokes are kept in board coordinates 0..1 so they can be redrawn at any size: on the
// screen (sharp on high-DPI displays) and on a fixed offscreen canvas that feeds the model.

const board = $("#board");
const boardWrap = $("#board-wrap");
const screen = board.getContext("2d");
const pen = $("#pen");
const strokes = [];
let current = null;
let renderQueued = false;

function strokePath(ctx, stroke, size, color) {
  const pts = stroke.pts;
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = stroke.width * size;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (pts.length === 1) {
    ctx.beginPath();
    ctx.arc(pts[0][0] * size, pts[0][1] * size, (stroke.width * size) / 2, 0, Math.PI * 2);
    ctx.fill();
    return;
  }
  // Quadratic curves through the midpoints: smooth ink without the corners of raw pointer samples.
  ctx.beginPath();
  ctx.moveTo(pts[0][0] * size, pts[0][1] * size);
  for (let i = 1; i < pts.length - 1; i++) {
    const mx = (pts[i][0] + pts[i + 1][0]) / 2;
    const my = (pts[i][1] + pts[i + 1][1]) / 2;
    ctx.quadraticCurveTo(pts[i][0] * size, pts[i][1] * size, mx * size, my * size);
  }
  const last = pts[pts.length - 1];
  ctx.lineTo(last[0] * size, last[1] * size);
  ctx.stroke();
}

function render() {
  renderQueued = false;
  screen.clearRect(0, 0, board.width, board.height);
  for (const stroke of strokes) strokePath(screen, stroke, board.width, "#f4f6ff");
  boardWrap.classList.toggle("has-ink", strokes.length > 0);
}

function queueRender() {
  if (!renderQueued) {
    renderQueued = true;
    requestAnimationFrame(render);
  }
}

function fitBoard() {
  const rect = board.getBoundingClientRect();
  const size = Math.max(1, Math.round(rect.width * (window.devicePixelRatio || 1)));
  if (board.width !== size) {
    board.width = size;
    board.height = size;
    render();
  }
}

function pointOf(event) {
  const rect = board.getBoundingClientRect();
  const x = (event.clientX - rect.left) / rect.width;
  const y = (event.clientY - rect.top) / rect.height;
  return [Math.min(1, Math.max(0, x)), Math.min(1, Math.max(0, y))];
}

board.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  board.setPointerCapture(event.pointerId);
  // A pen's pressure thickens the line a little, as with a real pen; mouse and touch report 0.5.
  const pressure = event.pointerType === "pen" && event.pressure > 0 ? 0.75 + event.pressure / 2 : 1;
  current = { width: Number(pen.value) * pressure, pts: [pointOf(event)], id: event.pointerId };
  strokes.push(current);
  queueRender();
  schedulePredict();
});

board.addEventListener("pointermove", (event) => {
  if (!current || event.pointerId !== current.id) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) current.pts.push(pointOf(e));
  queueRender();
  schedulePredict();
});

function endStroke(event) {
  if (!current || event.pointerId !== current.id) return;
  current = null;
  schedulePredict(0);
}
board.addEventListener("pointerup", endStroke);
board.addEventListener("pointercancel", endStroke);
board.addEventListener("lostpointercapture", endStroke);

function clearBoard() {
  strokes.length = 0;
  current = null;
  queueRender();
  showEmpty();
}

function undo() {
  strokes.pop();
  current = null;
  queueRender();
  if (strokes.length) schedulePredict(0);
  else showEmpty();
}

$("#clear").addEventListener("click", clearBoard);
$("#undo").addEventListener("click", undo);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") clearBoard();
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    undo();
  }
});

// ---------------------------------------------------------------------------------------------------
// The board as MNIST sees digits: white on black, the ink's bounding box scaled (area-averaged, so edges
// get MNIST's grey anti-aliasing) to fit 20×20, then placed in 28×28 with its centre of mass in the middle.

const WORK = 280;
const work = document.createElement("canvas");
work.width = WORK;
work.height = WORK;
const workCtx = work.getContext("2d", { willReadFrequently: true });

function mnistPixels() {
  workCtx.fillStyle = "#000";
  workCtx.fillRect(0, 0, WORK, WORK);
  for (const stroke of strokes) strokePath(workCtx, stroke, WORK, "#fff");
  const rgba = workCtx.getImageData(0, 0, WORK, WORK).data;
  let x0 = WORK, y0 = WORK, x1 = -1, y1 = -1;
  for (let y = 0; y < WORK; y++) {
    for (let x = 0; x < WORK; x++) {
      if (rgba[(y * WORK + x) * 4] > 8) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return null;
  const w = x1 - x0 + 1, h = y1 - y0 + 1;
  const scale = 20 / Math.max(w, h);
  const tw = Math.max(1, Math.round(w * scale)), th = Math.max(1, Math.round(h * scale));
  const sx = tw / w, sy = th / h;
  const box = new Float32Array(tw * th);
  // Each source pixel spreads its ink over the target cells it overlaps, weighted by the overlap area.
  for (let y = y0; y <= y1; y++) {
    const ty0 = (y - y0) * sy, ty1 = ty0 + sy;
    for (let x = x0; x <= x1; x++) {
      const v = rgba[(y * WORK + x) * 4];
      if (!v) continue;
      const tx0 = (x - x0) * sx, tx1 = tx0 + sx;
      for (let ty = Math.floor(ty0); ty < Math.min(th, Math.ceil(ty1)); ty++) {
        const oy = Math.min(ty1, ty + 1) - Math.max(ty0, ty);
        for (let tx = Math.floor(tx0); tx < Math.min(tw, Math.ceil(tx1)); tx++) {
          const ox = Math.min(tx1, tx + 1) - Math.max(tx0, tx);
          box[ty * tw + tx] += v * ox * oy;
        }
      }
    }
  }
  let mass = 0, cx = 0, cy = 0;
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      const v = box[y * tw + x];
      mass += v;
      cx += v * (x + 0.5);
      cy += v * (y + 0.5);
    }
  }
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const ox = clamp(Math.round(14 - cx / mass), 0, 28 - tw);
  const oy = clamp(Math.round(14 - cy / mass), 0, 28 - th);
  const pixels = new Array(784).fill(0);
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) pixels[(y + oy) * 28 + x + ox] = Math.min(255, Math.round(box[y * tw + x]));
  }
  return pixels;
}

// ---------------------------------------------------------------------------------------------------
// Predictions while drawing: at most one request in flight; strokes made meanwhile are sent as soon as it
// returns, so the answer follows the pen without flooding the server.

const digitEl = $("#digit");
const confidenceEl = $("#confidence");
const sawEl = $("#saw");
const latencyEl = $("#latency");
const drawError = $("#draw-error");
const badge = $("#badge");
const bars = [];
let timer = null;
let inFlight = false;
let dirty = false;
let generation = 0; // bumps on clear, so a late answer never shows on an empty board

(function buildBars() {
  const list = $("#bars");
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.dataset.digit = String(d);
    li.innerHTML = `<span class="label">${d}</span><span class="track"><span class="fill"></span></span>` +
      `<span class="pct">–</span>`;
    list.appendChild(li);
    bars.push({ li, fill: li.querySelector(".fill"), pct: li.querySelector(".pct") });
  }
})();

function schedulePredict(delay = 70) {
  dirty = true;
  document.body.dataset.state = "busy"; // an answer is due: "idle" only once nothing drawn is left unanswered
  if (timer === null) timer = setTimeout(flush, delay);
}

async function flush() {
  timer = null;
  if (inFlight || !dirty) return;
  dirty = false;
  const pixels = mnistPixels();
  if (!pixels) {
    document.body.dataset.state = "idle";
    return;
  }
  inFlight = true;
  document.body.dataset.state = "busy";
  const mine = generation;
  const started = performance.now();
  try {
    const answer = await postJSON("/api/predict?debug=1", { pixels });
    if (mine === generation && strokes.length) showPrediction(answer, performance.now() - started);
    showError(drawError, null);
  } catch (err) {
    if (mine === generation) showError(drawError, err.message);
  } finally {
    inFlight = false;
    if (dirty) schedulePredict(0);
    else document.body.dataset.state = "idle";
  }
}

function formatPct(p) {
  if (p >= 0.9995) return "100%";
  if (p < 0.0005) return "0%";
  return `${(p * 100).toFixed(p < 0.1 ? 1 : 0)}%`;
}

function showProbabilities(probs, digit) {
  probs.forEach((p, d) => {
    bars[d].fill.style.transform = `scaleX(${Math.max(0, Math.min(1, p))})`;
    bars[d].pct.textContent = formatPct(p);
    bars[d].li.classList.toggle("best", d === digit);
  });
}

function showPrediction(answer, ms) {
  if (answer.digit === null || answer.digit === undefined) {
    showEmpty();
    confidenceEl.textContent = answer.note || "No digit found";
    return;
  }
  const changed = digitEl.textContent !== String(answer.digit);
  digitEl.textContent = String(answer.digit);
  digitEl.dataset.digit = String(answer.digit);
  if (changed) {
    digitEl.classList.add("pop");
    setTimeout(() => digitEl.classList.remove("pop"), 150);
  }
  confidenceEl.innerHTML = answer.confidence >= 0.6
    ? `<b>${formatPct(answer.confidence)}</b> sure it is a ${answer.digit}`
    : `<b>${formatPct(answer.confidence)}</b> not sure: maybe a ${answer.digit}`;
  if (answer.input_png) sawEl.src = `data:image/png;base64,${answer.input_png}`;
  badge.textContent = `${answer.digit} · ${formatPct(answer.confidence)}`;
  badge.hidden = false;
  latencyEl.textContent = `answered in ${Math.round(ms)} ms${answer.note ? ` · ${answer.note}` : ""}`;
  showProbabilities(answer.probabilities, answer.digit);
  document.body.dataset.answers = String(Number(document.body.dataset.answers || 0) + 1);
}

function showEmpty() {
  generation++;
  dirty = false;
  digitEl.textContent = "?";
  digitEl.dataset.digit = "";
  confidenceEl.textContent = "Draw a digit to start";
  sawEl.removeAttribute("src");
  badge.hidden = true;
  latencyEl.textContent = "";
  showProbabilities(new Array(10).fill(0), -1);
  bars.forEach((b) => { b.pct.textContent = "–"; });
  showError(drawError, null);
}

function showError(el, message) {
  el.hidden = !message;
  el.textContent = message || "";
}

async function postJSON(url, body) {
  return answerOf(await fetch(url, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  }));
}

async function answerOf(response) {
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    throw new Error(`the server answered ${response.status} without JSON`);
  }
  if (!response.ok) throw new Error(data && data.error ? data.error : `the server answered ${response.status}`);
  return data;
}

// ---------------------------------------------------------------------------------------------------
// Photos: read the lines of writing, outline each line and each digit or separator on the photo, and show
// the 28×28 the model saw for each.

const drop = $("#drop");
const fileInput = $("#file");
const photoResult = $("#photo-result");
const photoEl = $("#photo");
const boxesEl = $("#boxes");
const readText = $("#read-text");
const readMeta = $("#read-meta");
const cropsEl = $("#crops");
const photoError = $("#photo-error");
let photoUrl = null;

fileInput.addEventListener("change", () => {
  if (fileInput.files && fileInput.files[0]) readPhoto(fileInput.files[0]);
});
["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (event) => {
  event.preventDefault();
  drop.classList.add("over");
}));
["dragleave", "dragend", "drop"].forEach((type) => drop.addEventListener(type, () => drop.classList.remove("over")));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (file) readPhoto(file);
});
// Dropping a photo anywhere else must not make the browser navigate away from the page.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

async function readPhoto(file) {
  showError(photoError, null);
  if (photoUrl) URL.revokeObjectURL(photoUrl);
  photoUrl = URL.createObjectURL(file);
  photoEl.src = photoUrl;
  boxesEl.replaceChildren();
  cropsEl.replaceChildren();
  shownLines = [];
  shownDigits = [];
  readText.textContent = "…";
  readMeta.textContent = "reading…";
  photoResult.hidden = false;
  document.body.dataset.photo = "busy";
  const form = new FormData();
  form.append("file", file, file.name || "photo");
  const started = performance.now();
  try {
    const answer = await answerOf(await fetch("/api/read?debug=1", { method: "POST", body: form }));
    showReading(answer, performance.now() - started);
  } catch (err) {
    readText.textContent = "–";
    readMeta.textContent = "";
    showError(photoError, err.message);
  } finally {
    document.body.dataset.photo = "done";
    fileInput.value = "";
  }
}

// An item's char as shown: a space between digit groups gets a visible mark.
const shownChar = (d) => (d.char === " " ? "␣" : d.char ?? String(d.digit));
const isSeparator = (d) => d.digit === null || d.digit === undefined;

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function showReading(answer, ms) {
  const digits = answer.digits || [];
  const lines = answer.lines || [];
  // Lines are joined with "\n" in text; the element keeps them apart (white-space: pre-line).
  readText.textContent = answer.text || "–";
  readText.dataset.text = answer.text || "";
  const separators = digits.filter(isSeparator).length;
  const parts = [plural(digits.length - separators, "digit")];
  if (separators) parts.push(plural(separators, "separator"));
  if (lines.length > 1) parts.push(plural(lines.length, "line"));
  // A note beside a reading says what was not read (only the first page of a multi-page file): shown with it.
  readMeta.textContent = digits.length
    ? `${parts.join(" · ")} · answered in ${Math.round(ms)} ms${answer.note ? ` · ${answer.note}` : ""}`
    : (answer.note || "no digit found in this picture");
  const place = () => placeBoxes(lines, digits);
  if (photoEl.complete && photoEl.naturalWidth) place();
  else photoEl.addEventListener("load", place, { once: true });
  for (const d of digits) {
    const li = document.createElement("li");
    li.classList.toggle("sep", isSeparator(d));
    if (d.input_png) {
      const img = document.createElement("img");
      img.src = `data:image/png;base64,${d.input_png}`;
      img.alt = `${isSeparator(d) ? "separator" : "digit"} ${shownChar(d)} as the model saw it`;
      li.appendChild(img);
    }
    const b = document.createElement("b");
    b.textContent = shownChar(d);
    const small = document.createElement("small");
    small.textContent = formatPct(d.confidence);
    li.append(b, small);
    cropsEl.appendChild(li);
  }
}

let shownLines = [];
let shownDigits = [];
window.addEventListener("resize", () => placeBoxes(shownLines, shownDigits));

function placeBoxes(lines, digits) {
  // Boxes are [x0, y0, x1, y1] in photo pixels; the photo is shown scaled and letterboxed (object-fit: contain).
  // Each line gets an outline with its text; each item (digit or separator) a box with its char.
  shownLines = lines;
  shownDigits = digits;
  if (!photoEl.naturalWidth) return;
  const nw = photoEl.naturalWidth, nh = photoEl.naturalHeight;
  const fw = photoEl.clientWidth, fh = photoEl.clientHeight;
  const k = Math.min(fw / nw, fh / nh);
  const dx = (fw - nw * k) / 2, dy = (fh - nh * k) / 2;
  const boxOf = (box, className, label) => {
    if (!Array.isArray(box) || box.length !== 4) return;
    const [x0, y0, x1, y1] = box;
    const span = document.createElement("span");
    span.className = className;
    // A line's text goes beside it on the right, or inside its right end where the photo leaves no room.
    if (className === "line" && fw - (dx + x1 * k) < 28 + 9 * label.length) span.classList.add("inside");
    span.dataset.label = label;
    span.style.left = `${dx + x0 * k}px`;
    span.style.top = `${dy + y0 * k}px`;
    span.style.width = `${(x1 - x0) * k}px`;
    span.style.height = `${(y1 - y0) * k}px`;
    boxesEl.appendChild(span);
  };
  boxesEl.replaceChildren();
  for (const line of lines) boxOf(line.box, "line", line.text.replaceAll(" ", "␣"));
  for (const d of digits) boxOf(d.box, isSeparator(d) ? "item sep" : "item", shownChar(d));
}

// ---------------------------------------------------------------------------------------------------
// Start-up: size the board, show the model.

new ResizeObserver(fitBoard).observe(board);
fitBoard();
showEmpty();
fetch("/api/model").then(answerOf).then((m) => {
  const chip = $("#model-chip");
  const name = document.createElement("b");
  name.textContent = m.architecture;
  chip.replaceChildren(name);
  if (typeof m.accuracy === "number") {
    const acc = document.createElement("b");
    acc.textContent = `${(m.accuracy * 100).toFixed(2)}%`;
    chip.append(" · ", acc, " on MNIST test");
  }
}).catch(() => { $("#model-chip").textContent = "model info unavailable"; });
