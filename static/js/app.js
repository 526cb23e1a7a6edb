// Not Hotdog upload page, progressively enhanced. Without this script the form posts
// to the server and a result page comes back. With it: photos can be dropped, pasted,
// picked several at a time or taken with the live camera; big photos are shrunk here
// before they are sent; each answer appears in view with its bars, a "not sure" when
// the model is unsure, "why?" (where the model looked) and "was this right?"; the
// model chosen and the answers are remembered in this browser.
(function () {
  "use strict";

  const form = document.getElementById("upload-form");
  if (!form || !window.fetch || !window.FormData) return; // the plain form keeps working

  const API = "/api/v1/classify";
  const ALL = "all";
  const MODEL_KEY = "nothotdog.model";
  const HISTORY_KEY = "nothotdog.history";
  const HISTORY_SIZE = 24;
  // A photo larger than BIG_PHOTO on its long side (four times the largest network
  // input of any base, 260 px) is shrunk before upload to the size the server would
  // decode the original at anyway: its JPEG decoder scales by 1/2, 1/4 or 1/8 while both
  // sides stay at least DECODE_FLOOR pixels (set by the page from the largest network
  // input). The server then resizes from the same number of pixels either way; at JPEG
  // quality 0.95 the verdicts stay those of the original (tests/test_browser.py,
  // bench/upload.py). Smaller photos are small files: they go as they are.
  const BIG_PHOTO = 1040;
  const DECODE_FLOOR = Number(form.dataset.decodeFloor) || 224;
  const DCT_SCALES = [8, 4, 2];
  const JPEG_QUALITY = 0.95;
  // Enough of a file to find a JPEG's frame header behind its EXIF, ICC and XMP blocks.
  const JPEG_HEADER_BYTES = 256 * 1024;
  const LIVE_INTERVAL_MS = 1000;
  const shrinking = new URLSearchParams(window.location.search).get("shrink") !== "off";

  const dropZone = document.getElementById("drop-zone");
  const picker = document.getElementById("image-input");
  const fileInputs = form.querySelectorAll("input[type=file]");
  const modelInputs = form.querySelectorAll("input[name=model]");
  const results = document.getElementById("results");
  const status = document.getElementById("status");
  const formMessage = document.getElementById("form-message");
  const clearResults = document.getElementById("clear-results");
  const messages = JSON.parse(form.dataset.messages);
  let lastBatch = [];

  dropZone.classList.remove("d-none");

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function announce(message) {
    status.textContent = message;
  }

  function tell(message, tone) {
    formMessage.replaceChildren();
    if (!message) return;
    const box = el("div", "alert alert-" + (tone || "warning") + " mb-0 py-2", message);
    formMessage.append(box);
  }

  function kilobytes(bytes) {
    return bytes >= 1e6 ? (bytes / 1e6).toFixed(1) + " MB" : Math.max(1, Math.round(bytes / 1e3)) + " KB";
  }

  // -- the model chosen, remembered ------------------------------------------------

  function chosenModel() {
    const checked = form.querySelector("input[name=model]:checked");
    return checked ? checked.value : modelInputs[0].value;
  }

  function modelInfo(name) {
    const input = document.getElementById("model-" + name);
    return input ? { title: input.dataset.title, classes: Number(input.dataset.classes) }
      : { title: name, classes: 0 };
  }

  try {
    const remembered = window.localStorage.getItem(MODEL_KEY);
    const input = remembered && document.getElementById("model-" + remembered);
    if (input && !new URLSearchParams(window.location.search).has("model")) input.checked = true;
  } catch (storageBlocked) { /* private mode: nothing is remembered */ }
  modelInputs.forEach(function (input) {
    input.addEventListener("change", function () {
      try { window.localStorage.setItem(MODEL_KEY, input.value); } catch (ignored) { /* */ }
    });
  });

  // -- wording and colours: the same rules as webapp/present.py --------------------

  function pretty(label) {
    return label.replace(/_/g, " ");
  }

  function verdict(label, classes) {
    const words = pretty(label);
    const capital = words.charAt(0).toUpperCase() + words.slice(1);
    return classes === 2 ? capital + "!" : capital;
  }

  function tone(label, classes) {
    if (classes !== 2) return "primary";
    return label.indexOf("not_") === 0 ? "danger" : "success";
  }

  function errorText(code) {
    return messages[code] || messages.unknown;
  }

  // -- shrinking big photos before they are sent -------------------------------------

  // Resolves with what to send: the photo itself, or for a big one that this browser
  // can decode, a JPEG at the server's decoding scale (see DECODE_FLOOR), upright (EXIF
  // orientation applied here, once). HEIC and other formats the browser cannot
  // decode go as they are; the server reads them.
  async function prepare(file) {
    const plan = { blob: file, name: file.name || "photo.jpg", original: file.size, shrunk: false, thumb: null };
    const scaled = shrinking ? await jpegAtDecodeScale(file) : null;
    if (scaled) return sendShrunk(plan, scaled);
    if (!window.createImageBitmap) return plan;
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (cannotDecode) {
      return plan;
    }
    const divisor = decodeScale(bitmap.width, bitmap.height);
    if (shrinking && Math.max(bitmap.width, bitmap.height) > BIG_PHOTO && divisor > 1) {
      const canvas = drawn(bitmap, Math.ceil(bitmap.width / divisor), Math.ceil(bitmap.height / divisor));
      bitmap.close();
      return sendShrunk(plan, canvas);
    }
    plan.thumb = thumbnail(bitmap);
    bitmap.close();
    return plan;
  }

  async function sendShrunk(plan, canvas) {
    const blob = await new Promise(function (done) { canvas.toBlob(done, "image/jpeg", JPEG_QUALITY); });
    if (blob && blob.size < plan.original) {
      plan.blob = blob;
      plan.name = plan.name.replace(/\.[^.]*$/, "") + ".jpg";
      plan.shrunk = true;
    }
    plan.thumb = thumbnail(canvas);
    return plan;
  }

  function drawn(source, width, height) {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d");
    context.imageSmoothingQuality = "high";
    context.drawImage(source, 0, 0, width, height);
    return canvas;
  }

  // A big JPEG decoded straight at the server's decoding scale, on a canvas, upright; null
  // where that cannot be done (not a JPEG, small, no WebCodecs). The browser's JPEG decoder
  // then scales in the DCT as the server's does (both are libjpeg-turbo), which skips most
  // of a full-size decode: 48 ms instead of 115 ms for a 12 MP photo in Chromium here
  // (createImageBitmap decodes every pixel whatever size it is asked for).
  async function jpegAtDecodeScale(file) {
    if (!window.ImageDecoder || file.type !== "image/jpeg") return null;
    let size, decoder;
    try {
      size = jpegFrameSize(new DataView(await file.slice(0, JPEG_HEADER_BYTES).arrayBuffer()));
      if (!size || Math.max(size.width, size.height) <= BIG_PHOTO) return null;
      const divisor = decodeScale(size.width, size.height);
      if (divisor === 1) return null;
      // Sizes as stored; the frame carries the EXIF rotation, which drawImage applies.
      decoder = new ImageDecoder({ data: await file.arrayBuffer(), type: "image/jpeg",
                                   desiredWidth: Math.ceil(size.width / divisor),
                                   desiredHeight: Math.ceil(size.height / divisor) });
      const frame = (await decoder.decode()).image;
      const canvas = drawn(frame, frame.displayWidth, frame.displayHeight);
      frame.close();
      return canvas;
    } catch (cannotDecode) {
      return null; // e.g. a CMYK JPEG: the full decode below, or the file as it is
    } finally {
      if (decoder) decoder.close();
    }
  }

  // Width and height from a JPEG's frame header (SOFn), or null.
  function jpegFrameSize(bytes) {
    if (bytes.byteLength < 4 || bytes.getUint16(0) !== 0xffd8) return null;
    let at = 2;
    while (at + 9 <= bytes.byteLength && bytes.getUint8(at) === 0xff) {
      const marker = bytes.getUint8(at + 1);
      if (marker === 0xff) { at += 1; continue; } // fill byte
      const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isFrame) return { height: bytes.getUint16(at + 5), width: bytes.getUint16(at + 7) };
      at += 2 + bytes.getUint16(at + 2);
    }
    return null;
  }

  // The largest of the JPEG decoder's reductions that keeps both sides >= DECODE_FLOOR.
  function decodeScale(width, height) {
    const room = Math.min(width, height) / DECODE_FLOOR;
    return DCT_SCALES.find(function (scale) { return scale <= room; }) || 1;
  }

  function thumbnail(source) {
    const side = 96;
    const canvas = document.createElement("canvas");
    const scale = side / Math.max(source.width, source.height);
    canvas.width = Math.max(1, Math.round(source.width * scale));
    canvas.height = Math.max(1, Math.round(source.height * scale));
    canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", 0.7);
  }

  // -- talking to the API ----------------------------------------------------------

  // Posts one prepared photo; resolves with the answer, rejects with an Error whose
  // message is for people and whose `retry` says whether trying again can help.
  async function send(plan, model, extra) {
    const data = new FormData();
    data.append("image", plan.blob, plan.name);
    let response;
    try {
      response = await fetch(API + "?model=" + encodeURIComponent(model) + (extra || ""),
                             { method: "POST", body: data, headers: { Accept: "application/json" } });
    } catch (networkError) {
      const problem = new Error("The server could not be reached. Check your connection and try again.");
      problem.retry = true;
      throw problem;
    }
    let payload = null;
    try { payload = await response.json(); } catch (ignored) { /* not JSON */ }
    if (!response.ok) {
      const problem = new Error(errorText(payload && payload.error ? payload.error.code : "unknown"));
      problem.retry = response.status >= 500 || response.status === 429;
      throw problem;
    }
    return payload;
  }

  // -- result cards --------------------------------------------------------------------

  function resultCard(file, batch, wide) {
    const column = el("div", wide ? "col-12" : "col-md-6");
    const card = el("article", "card shadow-sm result h-100");
    const frame = el("div", "photo-frame");
    const img = el("img", "card-img-top result-photo d-none");
    img.alt = "Your photo " + (file.name || "");
    const body = el("div", "card-body");
    const name = el("p", "small text-secondary text-truncate mb-1", file.name || "photo");
    const heading = el("p", "h4 verdict text-secondary", "Looking…");
    body.append(name, heading);
    frame.append(img);
    card.append(frame, body);
    column.append(card);
    batch.append(column);
    return { card: card, body: body, heading: heading, frame: frame, img: img, file: file };
  }

  function answerSection(modelName, answer, compact) {
    const info = modelInfo(modelName);
    const section = el("section", "answer");
    section.dataset.model = modelName;
    section.dataset.label = answer.label;
    const colour = tone(answer.label, info.classes);
    if (compact) section.append(el("h3", "h6 text-secondary mb-1", info.title));
    const best = answer.top[0];
    const headline = answer.not_sure
      ? el("p", (compact ? "h5" : "h4") + " verdict verdict-unsure",
           "Not sure. Maybe " + pretty(answer.label) + " (" + Math.round(100 * best.score) + " %)")
      : el("p", (compact ? "h5" : "h4") + " verdict text-" + colour, verdict(answer.label, info.classes));
    section.dataset.notSure = String(Boolean(answer.not_sure));
    section.append(headline);
    const list = el("ul", "list-unstyled mb-0");
    answer.top.forEach(function (item) {
      const percent = Math.round(item.score * 100);
      const label = pretty(item.label);
      const li = el("li", "mb-2");
      const row = el("div", "d-flex justify-content-between small");
      row.append(el("span", "", label), el("span", "", percent + " %"));
      const bar = el("div", "progress");
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-label", label + " score");
      bar.setAttribute("aria-valuenow", String(percent));
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "100");
      const winner = item.label === answer.label;
      bar.append(el("div", "progress-bar w-pct-" + percent + " " +
        (winner ? (answer.not_sure ? "bg-warning" : "bg-" + colour) : "bg-secondary")));
      li.append(row, bar);
      list.append(li);
    });
    section.append(list);
    return section;
  }

  function showAnswers(view, plan, payload, model) {
    view.heading.remove();
    const result = payload.results[0];
    if (result.preview && view.img.classList.contains("d-none")) {
      view.img.src = result.preview;
      view.img.classList.remove("d-none");
      plan.thumb = plan.thumb || result.preview;
    }
    let first;
    let firstModel = model;
    if (model === ALL) {
      const grid = el("div", "answers-grid");
      payload.models.forEach(function (m) {
        const cell = el("div");
        cell.append(answerSection(m.name, result.models[m.name], true),
                    feedbackControls(view, plan, m.name, result.models[m.name]));
        grid.append(cell);
      });
      view.body.append(grid);
      firstModel = payload.models[0].name;
      first = result.models[firstModel];
      view.card.dataset.label = "all";
    } else {
      view.body.append(answerSection(model, result, false), feedbackControls(view, plan, model, result));
      first = result;
      view.card.dataset.label = result.label;
    }
    const facts = el("p", "small text-secondary mb-0 mt-2 sent-note");
    facts.textContent = (model === ALL ? payload.models.map(function (m) { return m.name + " " + m.version; }).join(", ")
      : "Model: " + payload.model.title + " (" + payload.model.name + ", version " + payload.model.version + ")") +
      (plan.shrunk ? ". Sent " + kilobytes(plan.blob.size) + " instead of " + kilobytes(plan.original) + "." : ".");
    view.body.append(whyButton(view, plan, model), facts);
    // The first answer of a batch is brought into view once it is there (scrolling
    // earlier falls short: the page grows as photos and answers come in).
    const batch = view.card.closest(".batch");
    if (batch && !batch.dataset.shown) {
      batch.dataset.shown = "yes";
      view.body.querySelector(".answer").scrollIntoView({ behavior: "smooth", block: "center" });
    }
    remember(plan, firstModel, first);
    announce("Answer ready for " + (view.file.name || "your photo") + ": " +
             (first.not_sure ? "not sure" : pretty(first.label)));
  }

  function showError(view, problem, again) {
    view.card.dataset.label = "error";
    view.heading.textContent = "No answer for this photo";
    view.heading.className = "h5 verdict text-danger";
    const alert = el("div", "alert alert-danger mb-0 small", problem.message);
    alert.setAttribute("role", "alert");
    if (problem.retry) {
      const retry = el("button", "btn btn-sm btn-outline-danger ms-2", "Try again");
      retry.type = "button";
      retry.addEventListener("click", function () {
        view.card.parentElement.remove();
        again();
      });
      alert.append(retry);
    }
    view.body.append(alert);
  }

  // -- "why?": where the model saw its answer, laid over the photo ------------------

  function whyButton(view, plan, model) {
    const button = el("button", "btn btn-sm btn-outline-primary mt-2 why-button", "Why?");
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", async function () {
      const shown = view.card.classList.toggle("show-why");
      button.setAttribute("aria-pressed", String(shown));
      if (!shown || view.frame.querySelector(".heat")) return;
      button.disabled = true;
      try {
        const payload = await send(plan, model, "&explain=true");
        const answer = model === ALL ? payload.results[0].models[payload.models[0].name] : payload.results[0];
        const heat = el("img", "heat");
        heat.src = answer.explanation.overlay;
        heat.alt = "Where the model saw " + pretty(answer.explanation.label);
        view.frame.append(heat);
      } catch (problem) {
        view.card.classList.remove("show-why");
        button.setAttribute("aria-pressed", "false");
        tell(problem.message);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }

  // -- "was this right?" -------------------------------------------------------------

  let controlCount = 0;
  function feedbackControls(view, plan, modelName, answer) {
    const info = modelInfo(modelName);
    const box = el("div", "feedback border-top pt-2 mt-2 small");
    const yes = el("button", "btn btn-sm btn-outline-success me-1", "Yes");
    const no = el("button", "btn btn-sm btn-outline-danger", "No");
    yes.type = no.type = "button";
    const consent = el("div", "form-check mt-1");
    const tick = el("input", "form-check-input");
    tick.type = "checkbox";
    tick.id = "consent-" + (++controlCount);
    const tickLabel = el("label", "form-check-label",
                         "Share my photo to improve the model (its metadata, such as location, is removed)");
    tickLabel.htmlFor = tick.id;
    consent.append(tick, tickLabel);
    box.append(el("p", "fw-semibold mb-1", "Was this right?"), yes, no, consent);

    async function submit(correct, correction) {
      const data = new FormData();
      data.append("token", answer.feedback_token);
      data.append("correct", String(correct));
      if (correction) data.append("correction", correction);
      data.append("consent", String(tick.checked));
      // The server checks that a shared photo is the one it answered: the bytes it saw.
      if (tick.checked) data.append("image", plan.blob, plan.name);
      try {
        const response = await fetch("/api/v1/feedback", { method: "POST", body: data,
                                                             headers: { Accept: "application/json" } });
        const reply = await response.json().catch(function () { return null; });
        box.replaceChildren(el("p", "mb-0 " + (response.ok ? "text-success" : "text-danger"),
          response.ok ? "Thank you!" + (tick.checked ? " Your photo helps train the next version." : "")
            : errorText(reply && reply.error ? reply.error.code : "unknown")));
      } catch (networkError) {
        box.append(el("p", "text-danger mb-0", "The server could not be reached; try again."));
      }
    }

    yes.addEventListener("click", function () { submit(true, null); });
    no.addEventListener("click", function () {
      if (info.classes === 2) { submit(false, null); return; } // the other class
      const pick = el("input", "form-control form-control-sm mt-1");
      pick.setAttribute("list", "classes-" + modelName);
      pick.setAttribute("aria-label", "What the photo really shows");
      pick.placeholder = "What is it really?";
      const sendButton = el("button", "btn btn-sm btn-primary mt-1", "Send");
      sendButton.type = "button";
      sendButton.addEventListener("click", function () { if (pick.value) submit(false, pick.value); });
      no.disabled = yes.disabled = true;
      box.insertBefore(pick, consent);
      box.insertBefore(sendButton, consent);
      classList(modelName);
      pick.focus();
    });
    return box;
  }

  // A large model's class names, fetched once, offered while a correction is typed.
  const classLists = {};
  function classList(modelName) {
    if (classLists[modelName]) return;
    classLists[modelName] = fetch("/api/v1/models").then(function (r) { return r.json(); })
      .then(function (body) {
        const card = body.models.find(function (m) { return m.name === modelName; });
        const list = el("datalist");
        list.id = "classes-" + modelName;
        card.classes.forEach(function (label) { const o = el("option"); o.value = label; list.append(o); });
        document.body.append(list);
      });
  }

  // -- classifying -------------------------------------------------------------------

  // The photo shown is what was sent (a big photo's small copy decodes much faster);
  // one the browser cannot show (HEIC) gets the server's preview instead.
  function showPhoto(view, plan) {
    if (!plan.thumb) return;
    const url = URL.createObjectURL(plan.blob);
    view.img.addEventListener("load", function () { URL.revokeObjectURL(url); }, { once: true });
    view.img.src = url;
    view.img.classList.remove("d-none");
  }

  async function classify(file, batch, model) {
    const view = resultCard(file, batch, model === ALL);
    try {
      const plan = await prepare(file);
      showPhoto(view, plan);
      const heic = !plan.thumb; // the browser could not decode it: ask for a preview
      showAnswers(view, plan, await send(plan, model, heic ? "&preview=true" : ""), model);
    } catch (problem) {
      showError(view, problem, function () { classifyAll([file]); });
    }
  }

  // A batch of photos: in the order chosen, above earlier batches, brought into view.
  function classifyAll(files) {
    const photos = Array.from(files || []);
    if (!photos.length) return;
    lastBatch = photos;
    tell(null);
    const model = chosenModel();
    const holder = el("div", "row g-3 mb-3 batch");
    results.prepend(holder);
    clearResults.classList.remove("d-none");
    announce("Asking about " + photos.length + " photo(s)…");
    photos.forEach(function (file) { classify(file, holder, model); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const files = [];
    fileInputs.forEach(function (input) { Array.prototype.push.apply(files, input.files); });
    fileInputs.forEach(function (input) { input.value = ""; });
    if (files.length) {
      classifyAll(files);
    } else if (lastBatch.length) {
      classifyAll(lastBatch); // ask again, with the model chosen now
    } else {
      tell(messages.missing_image);
      picker.focus();
    }
  });

  // Picking files asks at once; the button asks again (say, with another model).
  fileInputs.forEach(function (input) {
    input.addEventListener("change", function () {
      classifyAll(input.files);
      input.value = "";
    });
  });

  clearResults.addEventListener("click", function () {
    results.replaceChildren();
    clearResults.classList.add("d-none");
    announce("Results cleared.");
  });

  dropZone.addEventListener("click", function () { picker.click(); });
  dropZone.addEventListener("keydown", function (event) {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      picker.click();
    }
  });
  ["dragenter", "dragover"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      event.preventDefault();
      dropZone.classList.remove("dragging");
    });
  });
  document.addEventListener("drop", function (event) {
    if (event.dataTransfer) classifyAll(event.dataTransfer.files);
  });
  document.addEventListener("paste", function (event) {
    const items = event.clipboardData ? event.clipboardData.files : [];
    if (items.length) {
      event.preventDefault();
      classifyAll(items);
    }
  });

  // -- the live camera -----------------------------------------------------------------

  const camera = {
    panel: document.getElementById("camera-panel"),
    video: document.getElementById("camera-video"),
    live: document.getElementById("camera-live-mode"),
    stream: null,
    timer: null,
    busy: false,
    holder: null,
  };

  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    document.getElementById("camera-file").classList.add("d-none");
    document.getElementById("camera-live").classList.remove("d-none");
  }

  async function openCamera() {
    try {
      camera.stream = await navigator.mediaDevices.getUserMedia(
        { video: { facingMode: "environment", width: { ideal: 1280 } }, audio: false });
    } catch (refused) {
      // No camera, or no permission: the file picker (which can also take a photo on a
      // phone) is the way left.
      document.getElementById("camera-file").classList.remove("d-none");
      tell(refused && refused.name === "NotAllowedError"
        ? "The camera was not allowed. Allow it in your browser's site settings, or choose a photo instead."
        : "No camera could be opened. Choose a photo instead.");
      return;
    }
    camera.video.srcObject = camera.stream;
    await camera.video.play();
    camera.panel.classList.remove("d-none");
    camera.panel.scrollIntoView({ behavior: "smooth", block: "nearest" });
    tell(null);
  }

  function closeCamera() {
    window.clearInterval(camera.timer);
    camera.live.checked = false;
    if (camera.stream) camera.stream.getTracks().forEach(function (track) { track.stop(); });
    camera.stream = null;
    camera.panel.classList.add("d-none");
  }

  // A frame of the live camera as a JPEG, already at the size the server would decode a
  // photo that large at (see prepare), so it is encoded once and sent as it is.
  function frame() {
    const width = camera.video.videoWidth, height = camera.video.videoHeight;
    const divisor = Math.max(width, height) > BIG_PHOTO ? decodeScale(width, height) : 1;
    const canvas = drawn(camera.video, Math.ceil(width / divisor), Math.ceil(height / divisor));
    return new Promise(function (done) {
      canvas.toBlob(function (blob) {
        done(new File([blob], "camera.jpg", { type: "image/jpeg" }));
      }, "image/jpeg", JPEG_QUALITY);
    });
  }

  // Live mode: one frame a second at most, never a second request before the first
  // is answered; the answer replaces the previous one in a single card.
  async function liveTick() {
    if (camera.busy || !camera.stream) return;
    camera.busy = true;
    try {
      const file = await frame();
      if (!camera.holder || !camera.holder.isConnected) {
        camera.holder = el("div", "row g-3 mb-3 batch live");
        results.prepend(camera.holder);
      }
      const next = el("div", "row g-3");
      await classify(file, next, chosenModel());
      camera.holder.replaceChildren(...next.children);
    } finally {
      camera.busy = false;
    }
  }

  document.getElementById("camera-open").addEventListener("click", openCamera);
  document.getElementById("camera-close").addEventListener("click", closeCamera);
  document.getElementById("camera-shoot").addEventListener("click", async function () {
    classifyAll([await frame()]);
  });
  camera.live.addEventListener("change", function () {
    window.clearInterval(camera.timer);
    if (camera.live.checked) {
      liveTick();
      camera.timer = window.setInterval(liveTick, LIVE_INTERVAL_MS);
    }
  });

  // -- history: this browser's earlier answers ------------------------------------------

  const history = {
    section: document.getElementById("history"),
    list: document.getElementById("history-list"),
  };

  function loadHistory() {
    try { return JSON.parse(window.localStorage.getItem(HISTORY_KEY) || "[]"); } catch (e) { return []; }
  }

  function remember(plan, model, answer) {
    const entries = loadHistory();
    const info = modelInfo(model);
    entries.unshift({ time: Date.now(), name: plan.name, model: model, label: answer.label,
                      notSure: Boolean(answer.not_sure), score: answer.top[0].score,
                      classes: info.classes, title: info.title, thumb: plan.thumb });
    try {
      window.localStorage.setItem(HISTORY_KEY, JSON.stringify(entries.slice(0, HISTORY_SIZE)));
    } catch (full) { /* storage full or blocked: history is a nicety */ }
    renderHistory();
  }

  function renderHistory() {
    const entries = loadHistory();
    history.section.classList.toggle("d-none", !entries.length);
    history.list.replaceChildren(...entries.map(function (entry) {
      const item = el("li", "history-item");
      const img = el("img");
      img.alt = entry.name;
      if (entry.thumb) img.src = entry.thumb;
      const when = new Date(entry.time);
      item.append(img,
        el("div", "small fw-semibold", entry.notSure ? "Not sure (" + pretty(entry.label) + ")"
          : verdict(entry.label, entry.classes)),
        el("div", "small text-secondary", entry.title + ", " + when.toLocaleString()));
      return item;
    }));
  }

  document.getElementById("clear-history").addEventListener("click", function () {
    try { window.localStorage.removeItem(HISTORY_KEY); } catch (ignored) { /* */ }
    renderHistory();
    announce("History cleared.");
  });

  renderHistory();
})();
