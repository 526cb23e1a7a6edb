// The "Make a model" page: classes of photos (chosen, a folder, dropped, or taken with
// the camera) or one .zip go to /make/train; the answer (the estimate and the model
// itself, as a signed token) is kept in this browser, tried on new photos through
// /make/classify, and kept for everyone through /make/keep by a logged-in admin.

import { el } from "./dom.js";

const STORE = "nothotdog-made-model";
const MIN_CLASSES = 2;
const form = document.getElementById("make-form");
const classes = document.getElementById("make-classes");
const message = document.getElementById("make-message");
const zip = document.getElementById("make-zip");
let sent = []; // the photos of the last training, in the order the server numbered them

function tell(text, tone = "warning") {
  message.replaceChildren();
  if (text) message.append(el("div", "alert alert-" + tone + " mb-0 py-2", text));
}

// One class: its name, its photos (several ways to add them), how many it has.
function addClass(name = "") {
  const index = classes.children.length;
  const card = el("div", "col-md-6 make-class");
  const body = el("div", "card card-body h-100");
  const label = el("input", "form-control mb-2");
  label.placeholder = "Class name, e.g. " + (index ? "not lunch" : "lunch");
  label.value = name;
  label.setAttribute("aria-label", "Name of class " + (index + 1));
  const count = el("p", "small text-secondary mb-2", "No photos yet. Drop photos here too.");
  const files = [];
  const show = () => { count.textContent = files.length + " photo" + (files.length === 1 ? "" : "s"); };
  const add = (list) => {
    for (const file of list) if (file.type.startsWith("image/") || /\.(heic|heif)$/i.test(file.name)) files.push(file);
    show();
  };
  const picker = (text, options) => {
    const wrap = el("label", "btn btn-sm btn-outline-secondary me-1 mb-1", text);
    const input = el("input", "d-none");
    input.type = "file";
    input.accept = "image/*";
    input.multiple = true;
    Object.assign(input, options);
    if (options.capture) input.setAttribute("capture", options.capture);
    input.addEventListener("change", () => { add(input.files); input.value = ""; });
    wrap.append(input);
    return wrap;
  };
  const folder = picker("A folder", {});
  folder.querySelector("input").setAttribute("webkitdirectory", "");
  body.append(label, count, picker("Choose photos", {}), folder, picker("Take photos", { capture: "environment" }));
  body.addEventListener("dragover", (event) => { event.preventDefault(); });
  body.addEventListener("drop", async (event) => {
    event.preventDefault();
    const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry());
    if (entries.some((entry) => entry && entry.isDirectory)) add(await filesIn(entries));
    else add(event.dataTransfer.files);
  });
  card.append(body);
  card.photos = files;
  card.label = label;
  classes.append(card);
}

// Every file in dropped entries, folders read through (a dropped folder's own File is empty).
async function filesIn(entries) {
  const files = [];
  for (const entry of entries.filter(Boolean)) {
    if (entry.isFile) {
      files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (let batch = await readBatch(reader); batch.length; batch = await readBatch(reader)) {
        files.push(...await filesIn(batch));
      }
    }
  }
  return files;
}

function readBatch(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

function restore() {
  try {
    const kept = JSON.parse(localStorage.getItem(STORE) || "null");
    if (kept && kept.token) showResult(kept);
  } catch {
    localStorage.removeItem(STORE);
  }
}

async function post(url, body) {
  // Errors come as JSON ({"error": {"message"}}) when asked for (webapp/errors.py).
  const response = await fetch(url, { method: "POST", body, headers: { Accept: "application/json" } });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((payload.error && payload.error.message) || "Something went wrong; please try again.");
  return payload;
}

async function train(event) {
  event.preventDefault();
  const body = new FormData();
  body.append("title", document.getElementById("make-title").value);
  sent = [];
  if (zip.files.length) {
    body.append("archive", zip.files[0]);
  } else {
    const cards = [...classes.children];
    if (cards.filter((card) => card.photos.length).length < MIN_CLASSES) {
      tell("Give at least two classes their photos (5 or more each).");
      return;
    }
    cards.filter((card) => card.photos.length).forEach((card, index) => {
      body.append("class", card.label.value.trim());
      for (const file of card.photos) {
        body.append("photos-" + index, file);
        sent.push(file);
      }
    });
  }
  tell("Training… (a few seconds)", "info");
  try {
    const made = await post("/make/train", body);
    localStorage.setItem(STORE, JSON.stringify(made));
    tell(null);
    showResult(made);
  } catch (error) {
    tell(error.message, "danger");
  }
}

function showResult(made) {
  document.getElementById("make-result").classList.remove("d-none");
  const estimate = made.estimate;
  document.getElementById("make-accuracy").textContent =
    `"${made.title}": about ${Math.round(estimate.accuracy * 100)} % right on photos it was not given.` +
    (estimate.not_sure
      ? ` It would say "not sure" on ${Math.round(estimate.not_sure.not_sure_share * 100)} % of them, ` +
        `to keep its other answers ${Math.round(estimate.not_sure.given_accuracy * 100)} % right.`
      : "");
  const table = document.getElementById("make-confusion");
  const head = el("tr");
  head.append(el("th", "", "photos of ↓ answered as →"), ...made.classes.map((name) => el("th", "text-end", name)));
  table.replaceChildren(head, ...estimate.confusion_matrix.map((row, i) => {
    const line = el("tr");
    line.append(el("th", "", made.classes[i]), ...row.map((n) => el("td", "text-end", String(n))));
    return line;
  }));
  const wrong = document.getElementById("make-wrong");
  wrong.replaceChildren(...estimate.wrong.map((item) => {
    const figure = el("figure", "figure mb-0 make-wrong");
    const file = sent[item.index];
    if (file) {
      const image = el("img", "figure-img img-thumbnail");
      image.width = 96;
      image.src = URL.createObjectURL(file);
      image.alt = item.photo;
      figure.append(image);
    }
    figure.append(el("figcaption", "figure-caption small", `${item.photo}: ${item.class}, answered ${item.predicted}`));
    return figure;
  }));
  document.getElementById("make-wrong-box").classList.toggle("d-none", !estimate.wrong.length);
  document.getElementById("make-result").dataset.token = made.token;
}

async function tryIt(event) {
  const answers = document.getElementById("make-answers");
  const body = new FormData();
  body.append("token", document.getElementById("make-result").dataset.token);
  for (const file of event.target.files) body.append("image", file);
  try {
    const { results } = await post("/make/classify", body);
    answers.replaceChildren(...results.map((result) => el("li", "make-answer",
      `${result.filename}: ${result.not_sure ? "not sure, maybe " : ""}${result.label} ` +
      `(${Math.round(result.scores[result.label] * 100)} %)`)));
  } catch (error) {
    answers.replaceChildren(el("li", "text-danger", error.message));
  }
}

async function keep() {
  const box = document.getElementById("make-keep-form");
  const body = new FormData();
  body.append("token", document.getElementById("make-result").dataset.token);
  body.append("name", document.getElementById("make-name").value);
  body.append("description", document.getElementById("make-description").value);
  body.append("csrf_token", box.dataset.csrf);
  try {
    const { model } = await post("/make/keep", body);
    box.replaceChildren(el("p", "mb-0", `Kept: everyone can now use "${model.name}" on the photo page and through the API.`));
  } catch (error) {
    tell(error.message, "danger");
  }
}

addClass();
addClass();
document.getElementById("make-add-class").addEventListener("click", () => addClass());
form.addEventListener("submit", train);
document.getElementById("make-try").addEventListener("change", tryIt);
document.getElementById("make-keep")?.addEventListener("click", keep);
restore();
