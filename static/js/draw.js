// Draw a digit: a canvas for mouse, touch and pen (Pointer Events) and the keyboard;
// the digits model reads the drawing while it is being drawn. Requests are debounced
// and never more than one is in flight: a drawing that changes meanwhile is sent once
// the answer to the previous one is back. Errors are in plain words, through api.js,
// as on the upload page. Without JavaScript the page's <noscript> note stays.

import { ApiError, UNREACHABLE, apiClient } from "./api.js";
import { percent } from "./wording.js";

// A stroke about a fourteenth of the canvas: MNIST's strokes are 2-3 pixels in a
// 20-pixel digit, and people draw digits that fill most of the square.
const STROKES_PER_SIDE = 14;
const DEBOUNCE_MS = 150;
const KEY_STEP = 10;
const KEY_MOVES = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0] };

function start(app) {
  app.classList.remove("d-none");
  const pad = document.getElementById("pad");
  const context = pad.getContext("2d");
  const answer = document.getElementById("digit-answer");
  const status = document.getElementById("digit-status");
  const preview = document.getElementById("model-input");
  const penState = document.getElementById("pen-state");
  const model = app.dataset.model;
  // The plain words for each error code, from the server (webapp/present.py).
  const api = apiClient(JSON.parse(app.dataset.messages));
  const lineWidth = Math.round(pad.width / STROKES_PER_SIDE);
  const blankPreview = preview.src;

  let drawing = false;
  let hasInk = false;
  let timer = null;
  let inFlight = false;
  let pending = false;
  let last = null;
  const keyPen = { x: pad.width / 2, y: pad.height / 2, down: false };

  function clear() {
    context.fillStyle = "#fff";
    context.fillRect(0, 0, pad.width, pad.height);
    context.strokeStyle = "#000";
    context.fillStyle = "#000";
    context.lineWidth = lineWidth;
    context.lineCap = "round";
    context.lineJoin = "round";
    hasInk = false;
    answer.textContent = "?";
    status.textContent = "Draw to start.";
    preview.src = blankPreview;
    setScores({});
  }

  function dot(point) {
    context.beginPath();
    context.arc(point.x, point.y, lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
    hasInk = true;
  }

  function line(from, to) {
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
    hasInk = true;
  }

  // -- pointer: mouse, touch and pen alike -------------------------------------

  function canvasPoint(event) {
    const box = pad.getBoundingClientRect();
    return { x: (event.clientX - box.left) * pad.width / box.width,
             y: (event.clientY - box.top) * pad.height / box.height };
  }

  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    last = canvasPoint(event);
    dot(last);
    schedule();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const point = canvasPoint(event);
    line(last, point);
    last = point;
    schedule();
  });
  for (const type of ["pointerup", "pointercancel"]) {
    pad.addEventListener(type, () => {
      if (!drawing) return;
      drawing = false;
      schedule();
    });
  }

  // -- keyboard: arrows move the pen, Space puts it down or lifts it ---------------

  pad.addEventListener("keydown", (event) => {
    const move = KEY_MOVES[event.key];
    if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      keyPen.down = !keyPen.down;
      if (keyPen.down) { dot(keyPen); schedule(); }
    } else if (move) {
      event.preventDefault();
      const from = { x: keyPen.x, y: keyPen.y };
      keyPen.x = Math.min(pad.width, Math.max(0, keyPen.x + move[0] * KEY_STEP));
      keyPen.y = Math.min(pad.height, Math.max(0, keyPen.y + move[1] * KEY_STEP));
      if (keyPen.down) { line(from, keyPen); schedule(); }
    } else if (event.key === "Escape" || event.key === "Delete") {
      clear();
    } else {
      return;
    }
    penState.textContent = "Pen " + (keyPen.down ? "down" : "up") + " at " +
      percent(keyPen.x / pad.width) + " %, " + percent(keyPen.y / pad.height) + " %";
  });

  document.getElementById("clear").addEventListener("click", () => {
    clear();
    pad.focus();
  });

  // -- asking the model ------------------------------------------------------------

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(send, DEBOUNCE_MS);
  }

  async function send() {
    if (!hasInk) return;
    if (inFlight) { pending = true; return; }
    inFlight = true;
    try {
      const blob = await new Promise((done) => pad.toBlob(done, "image/png"));
      const payload = await api.classify(blob, "digit.png", model, { topK: 10, input: true });
      if (hasInk) show(payload.results[0]); // else cleared while the answer was on its way
    } catch (problem) {
      if (problem.code === UNREACHABLE) {
        status.textContent = "The server could not be reached; your drawing is kept, draw on to retry.";
      } else if (hasInk) {
        status.textContent = problem instanceof ApiError ? problem.message : api.messageFor("unknown");
      }
    } finally {
      inFlight = false;
      if (pending) { pending = false; send(); }
    }
  }

  function show(result) {
    answer.textContent = result.label;
    status.textContent = "It looks like a " + result.label + " (" + percent(result.scores[result.label]) +
      " % sure).";
    preview.src = result.input;
    setScores(result.scores, result.label);
  }

  function setScores(scores, best) {
    for (const bar of document.querySelectorAll("#digit-scores .progress-bar")) {
      const digit = bar.dataset.digit;
      const score = percent(scores[digit] || 0);
      bar.className = "progress-bar w-pct-" + score + (digit === best ? " bg-primary" : " bg-secondary");
      bar.parentElement.setAttribute("aria-valuenow", String(score));
      document.querySelector('.digit-percent[data-digit="' + digit + '"]').textContent = score + " %";
    }
  }

  clear();
}

const app = document.getElementById("draw-app");
if (app) start(app);
