// The upload page, progressively enhanced: this module wires the others together.
// Without JavaScript (or without module support) the form posts to the server and a
// result page comes back. With it: photos can be dropped, pasted, picked several at a
// time or taken with the live camera (camera.js); big photos are shrunk here before
// they are sent (prepare.js, shrink.js); each answer appears in view with its bars, a
// "not sure" when the model is unsure, "Why?" and "Was this right?" (answers.js,
// feedback.js); the model chosen and the answers are remembered in this browser
// (choices.js, history.js).

import { apiClient } from "./api.js";
import { ALL_MODELS, answerViews } from "./answers.js";
import { setUpCamera } from "./camera.js";
import { modelChoices } from "./choices.js";
import { el, notices } from "./dom.js";
import { feedbackForms } from "./feedback.js";
import { entryVerdicts, everyModelEntry, historyEntry } from "./history.js";
import { historyList } from "./history-list.js";
import { preparePhoto } from "./prepare.js";
import { DEFAULT_DECODE_FLOOR } from "./shrink.js";

// localStorage, or null where even looking at it throws (some privacy settings).
function browserStorage() {
  try { return window.localStorage; } catch (blocked) { return null; }
}

function start(form) {
  const dropZone = document.getElementById("drop-zone");
  const picker = document.getElementById("image-input");
  const fileInputs = form.querySelectorAll("input[type=file]");
  const results = document.getElementById("results");
  const clearResults = document.getElementById("clear-results");
  const storage = browserStorage();
  // The plain words for each error code, from the server (webapp/present.py).
  const api = apiClient(JSON.parse(form.dataset.messages));
  const { announce, tell } = notices(document.getElementById("status"),
                                     document.getElementById("form-message"));
  const choices = modelChoices(form, storage);
  const views = answerViews({ modelInfo: choices.info,
                              feedbackControls: feedbackForms({ api, modelInfo: choices.info }) });
  const remember = historyList(storage, announce);
  const preparing = {
    shrinking: new URLSearchParams(window.location.search).get("shrink") !== "off", // for comparisons
    decodeFloor: Number(form.dataset.decodeFloor) || DEFAULT_DECODE_FLOOR,
  };
  let lastBatch = [];

  dropZone.classList.remove("d-none");

  // One photo: its card in `batch`, then its answer (or error) in the card.
  async function classify(file, batch, model) {
    const view = views.resultCard(file, batch, model === ALL_MODELS);
    try {
      const plan = await preparePhoto(file, preparing);
      views.showPhoto(view, plan);
      // The explanation comes with the answer as its grid of values (explain=grid:
      // next to no work for the server), so that "Why?" only draws it (heat.js): no
      // second upload, no second inference. A photo the browser cannot show (no
      // thumbnail: HEIC) gets the server's preview too.
      const payload = await api.classify(plan.blob, plan.name, model,
                                         { explain: "grid", preview: !plan.thumb });
      const shown = views.showAnswers(view, plan, payload, model);
      const entry = model === ALL_MODELS
        ? everyModelEntry({ time: Date.now(), name: plan.name, title: choices.info(model).title, thumb: plan.thumb,
                            answers: shown.map((one) => ({ ...one, info: choices.info(one.model) })) })
        : historyEntry({ time: Date.now(), name: plan.name, model, answer: shown[0].answer,
                         info: choices.info(model), thumb: plan.thumb });
      remember(entry);
      announce("Answer ready for " + (file.name || "your photo") + ": " +
               entryVerdicts(entry).map((one) => one.verdict).join(", "));
    } catch (problem) {
      views.showError(view, problem, () => classifyAll([file]));
    }
  }

  // A batch of photos: in the order chosen, above earlier batches, brought into view.
  function classifyAll(files) {
    const photos = Array.from(files || []);
    if (!photos.length) return;
    lastBatch = photos;
    tell(null);
    const model = choices.chosen();
    const holder = el("div", "row g-3 mb-3 batch");
    holder.dataset.photos = String(photos.length);
    results.prepend(holder);
    clearResults.classList.remove("d-none");
    announce("Asking about " + photos.length + " photo(s)…");
    photos.forEach((file) => classify(file, holder, model));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const files = [];
    fileInputs.forEach((input) => files.push(...input.files));
    fileInputs.forEach((input) => { input.value = ""; });
    if (files.length) {
      classifyAll(files);
    } else if (lastBatch.length) {
      classifyAll(lastBatch); // ask again, with the model chosen now
    } else {
      tell(api.messageFor("missing_image"));
      picker.focus();
    }
  });

  // Picking files asks at once; the button asks again (say, with another model).
  fileInputs.forEach((input) => {
    input.addEventListener("change", () => {
      classifyAll(input.files);
      input.value = "";
    });
  });

  clearResults.addEventListener("click", () => {
    results.replaceChildren();
    clearResults.classList.add("d-none");
    announce("Results cleared.");
  });

  // Dropped anywhere on the page, or pasted.
  dropZone.addEventListener("click", () => picker.click());
  dropZone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      picker.click();
    }
  });
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    document.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.remove("dragging");
    });
  }
  document.addEventListener("drop", (event) => {
    if (event.dataTransfer) classifyAll(event.dataTransfer.files);
  });
  document.addEventListener("paste", (event) => {
    const files = event.clipboardData ? event.clipboardData.files : [];
    if (files.length) {
      event.preventDefault();
      classifyAll(files);
    }
  });

  setUpCamera({ classify, classifyAll, chosenModel: choices.chosen, results, tell,
                decodeFloor: preparing.decodeFloor });
}

const form = document.getElementById("upload-form");
if (form) start(form);
