// Draw a digit: a canvas for mouse, touch and pen (Pointer Events) and the keyboard;
// the digits model reads the drawing while it is being drawn. Requests are debounced
// and never more than one is in flight: a drawing that changes meanwhile is sent
// once the answer to the previous one is back.
(function () {
  "use strict";

  const app = document.getElementById("draw-app");
  if (!app || !window.fetch || !window.FormData) return; // the <noscript> note stays
  app.classList.remove("d-none");

  const pad = document.getElementById("pad");
  const context = pad.getContext("2d");
  const answer = document.getElementById("digit-answer");
  const status = document.getElementById("digit-status");
  const preview = document.getElementById("model-input");
  const penState = document.getElementById("pen-state");
  const model = app.dataset.model;
  // A stroke about a fourteenth of the canvas: MNIST's strokes are 2-3 pixels in a
  // 20-pixel digit, and people draw digits that fill most of the square.
  const LINE_WIDTH = Math.round(pad.width / 14);
  const DEBOUNCE_MS = 150;
  const KEY_STEP = 10;

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
    context.lineWidth = LINE_WIDTH;
    context.lineCap = "round";
    context.lineJoin = "round";
    hasInk = false;
    answer.textContent = "?";
    status.textContent = "Draw to start.";
    preview.src = preview.dataset.blank || preview.src;
    setScores({});
  }
  preview.dataset.blank = preview.src;

  function dot(point) {
    context.beginPath();
    context.arc(point.x, point.y, LINE_WIDTH / 2, 0, 2 * Math.PI);
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

  pad.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    last = canvasPoint(event);
    dot(last);
    schedule();
  });
  pad.addEventListener("pointermove", function (event) {
    if (!drawing) return;
    const point = canvasPoint(event);
    line(last, point);
    last = point;
    schedule();
  });
  ["pointerup", "pointercancel"].forEach(function (type) {
    pad.addEventListener(type, function () {
      if (!drawing) return;
      drawing = false;
      schedule();
    });
  });

  // -- keyboard: arrows move the pen, Space puts it down or lifts it ---------------

  pad.addEventListener("keydown", function (event) {
    const moves = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0] };
    if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      keyPen.down = !keyPen.down;
      if (keyPen.down) { dot(keyPen); schedule(); }
    } else if (moves[event.key]) {
      event.preventDefault();
      const from = { x: keyPen.x, y: keyPen.y };
      keyPen.x = Math.min(pad.width, Math.max(0, keyPen.x + moves[event.key][0] * KEY_STEP));
      keyPen.y = Math.min(pad.height, Math.max(0, keyPen.y + moves[event.key][1] * KEY_STEP));
      if (keyPen.down) { line(from, keyPen); schedule(); }
    } else if (event.key === "Escape" || event.key === "Delete") {
      clear();
    } else {
      return;
    }
    penState.textContent = "Pen " + (keyPen.down ? "down" : "up") + " at " +
      Math.round(100 * keyPen.x / pad.width) + " %, " + Math.round(100 * keyPen.y / pad.height) + " %";
  });

  document.getElementById("clear").addEventListener("click", function () {
    clear();
    pad.focus();
  });

  // -- asking the model ------------------------------------------------------------

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(send, DEBOUNCE_MS);
  }

  function send() {
    if (!hasInk) return;
    if (inFlight) { pending = true; return; }
    inFlight = true;
    pad.toBlob(function (blob) {
      const data = new FormData();
      data.append("image", blob, "digit.png");
      fetch("/api/v1/classify?model=" + encodeURIComponent(model) + "&top_k=10&input=true",
            { method: "POST", body: data, headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.json().then(function (payload) { return { ok: response.ok, payload: payload }; });
        })
        .then(function (reply) {
          if (!hasInk) return; // cleared while the answer was on its way
          if (reply.ok) show(reply.payload.results[0]);
          else status.textContent = reply.payload.error.message;
        })
        .catch(function () {
          status.textContent = "The server could not be reached; your drawing is kept, draw on to retry.";
        })
        .finally(function () {
          inFlight = false;
          if (pending) { pending = false; send(); }
        });
    }, "image/png");
  }

  function show(result) {
    answer.textContent = result.label;
    status.textContent = "It looks like a " + result.label + " (" +
      Math.round(100 * result.scores[result.label]) + " % sure).";
    preview.src = result.input;
    setScores(result.scores, result.label);
  }

  function setScores(scores, best) {
    document.querySelectorAll("#digit-scores .progress-bar").forEach(function (bar) {
      const digit = bar.dataset.digit;
      const percent = Math.round(100 * (scores[digit] || 0));
      bar.className = "progress-bar w-pct-" + percent + (digit === best ? " bg-primary" : " bg-secondary");
      bar.parentElement.setAttribute("aria-valuenow", String(percent));
      document.querySelector('.digit-percent[data-digit="' + digit + '"]').textContent = percent + " %";
    });
  }

  clear();
})();
