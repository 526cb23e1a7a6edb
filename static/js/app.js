// Not Hotdog upload page, progressively enhanced. Without this script the form
// posts to the server and a result page comes back; with it, photos can be
// dropped, pasted or picked several at a time, previewed at once, and each is
// classified through the JSON API without reloading the page.
(function () {
  "use strict";

  const form = document.getElementById("upload-form");
  if (!form || !window.fetch || !window.FormData) {
    return; // the plain form keeps working
  }
  const dropZone = document.getElementById("drop-zone");
  const fileInputs = form.querySelectorAll("input[type=file]");
  const results = document.getElementById("results");
  const status = document.getElementById("status");
  const modelSelect = document.getElementById("model-select");
  const API = "/api/v1/classify";

  dropZone.classList.remove("d-none");

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function verdict(label) {
    const words = label.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1) + "!";
  }

  function announce(message) {
    status.textContent = message;
  }

  // One card per photo: preview now, verdict and bars when the answer comes.
  function resultCard(file) {
    const column = el("div", "col-md-6");
    const card = el("div", "card shadow-sm result");
    const img = el("img", "card-img-top result-photo");
    img.alt = "Your photo " + file.name;
    const url = URL.createObjectURL(file);
    img.src = url;
    img.addEventListener("load", function () { URL.revokeObjectURL(url); });
    img.addEventListener("error", function () { // e.g. HEIC, which browsers cannot show
      URL.revokeObjectURL(url);
      img.remove();
    });
    const body = el("div", "card-body");
    const heading = el("h2", "h4 verdict text-secondary", "Looking…");
    const name = el("p", "small text-secondary text-truncate mb-2", file.name || "pasted photo");
    body.append(heading, name);
    card.append(img, body);
    column.append(card);
    results.prepend(column);
    return { card: card, body: body, heading: heading };
  }

  function showScores(view, result) {
    const positive = Object.keys(result.scores)[0];
    view.card.dataset.label = result.label;
    view.heading.textContent = verdict(result.label);
    view.heading.className = "h4 verdict " + (result.label === positive ? "text-success" : "text-danger");
    const list = el("ul", "list-unstyled mb-0");
    result.top.forEach(function (item) {
      const percent = Math.round(item.score * 100);
      const name = item.label.replace(/_/g, " ");
      const li = el("li", "mb-2");
      const row = el("div", "d-flex justify-content-between small");
      row.append(el("span", "", name), el("span", "", percent + " %"));
      const bar = el("div", "progress");
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-label", name + " score");
      bar.setAttribute("aria-valuenow", String(percent));
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "100");
      const fill = el("div", "progress-bar w-pct-" + percent + " " +
        (item.label === result.label ? "bg-success" : "bg-secondary"));
      bar.append(fill);
      li.append(row, bar);
      list.append(li);
    });
    view.body.append(list);
    announce(view.heading.textContent + " " + (result.filename || ""));
  }

  function showError(view, message) {
    view.card.dataset.label = "error";
    view.heading.textContent = "Could not read this photo";
    view.heading.className = "h5 verdict text-danger";
    const alert = el("div", "alert alert-danger mb-0 small", message);
    alert.setAttribute("role", "alert");
    view.body.append(alert);
  }

  async function classify(file) {
    const view = resultCard(file);
    const data = new FormData();
    data.append("image", file, file.name || "pasted.png");
    let url = API;
    if (modelSelect) url += "?model=" + encodeURIComponent(modelSelect.value);
    try {
      const response = await fetch(url, { method: "POST", body: data,
                                          headers: { Accept: "application/json" } });
      let payload = null;
      try { payload = await response.json(); } catch (ignored) { /* not JSON */ }
      if (!response.ok) {
        const message = payload && payload.error ? payload.error.message
          : "The server answered " + response.status + ".";
        showError(view, message);
        return;
      }
      showScores(view, payload.results[0]);
    } catch (networkError) {
      showError(view, "The server could not be reached. Check the connection and try again.");
    }
  }

  function classifyAll(files) {
    const images = Array.from(files || []);
    if (!images.length) return;
    announce("Classifying " + images.length + " photo(s)…");
    images.forEach(classify);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const files = [];
    fileInputs.forEach(function (input) { Array.prototype.push.apply(files, input.files); });
    if (!files.length) {
      announce("Choose a photo first.");
      fileInputs[0].focus();
      return;
    }
    classifyAll(files);
    form.reset();
  });

  // Picking files classifies them straight away.
  fileInputs.forEach(function (input) {
    input.addEventListener("change", function () {
      classifyAll(input.files);
      input.value = "";
    });
  });

  dropZone.addEventListener("click", function () { fileInputs[0].click(); });
  dropZone.addEventListener("keydown", function (event) {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      fileInputs[0].click();
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
})();
