// Result cards on the upload page: one card per photo, "Looking…" until its answer
// comes, then the verdict with its score bars (one model, or every model side by side),
// "Why?" (where the model looked, laid over the photo) and "Was this right?"; or the
// error in plain words, with "Try again" when trying again can help.

import { el } from "./dom.js";
import { heatLayerUri } from "./heat.js";
import { answerFacts, notSureHeadline, percent, pretty, tone, verdict } from "./wording.js";

export const ALL_MODELS = "all";

// `modelInfo(name)` gives a model's {title, classes}; `feedbackControls(plan, name,
// answer)` makes the "Was this right?" box of one answer (feedback.js).
export function answerViews({ modelInfo, feedbackControls }) {
  // A card in `batch` for `file`, saying "Looking…"; the returned view is what the
  // functions below fill in. `every`: every model's answers. Those, and a batch of one
  // photo (its `data-photos`), get a card across the page, the verdict beside the
  // photo on a laptop. The photo's box has its size from the start (static/css/app.css),
  // so the verdict will replace "Looking…" where it is: the batch's first card is
  // brought into view now, and its answer appears in place, whatever the photo's
  // shape or when it loads.
  function resultCard(file, batch, every) {
    const first = !batch.children.length && batch.isConnected;
    const column = el("div", every || batch.dataset.photos === "1" ? "col-12" : "col-md-6");
    const card = el("article", "card shadow-sm result h-100");
    const layout = el("div", "result-layout" + (every ? " every-model" : ""));
    const stage = el("div", "photo-stage");
    const frame = el("div", "photo-frame");
    const img = el("img", "result-photo d-none");
    img.alt = "Your photo " + (file.name || "");
    const body = el("div", "card-body");
    const name = el("p", "small text-secondary text-truncate mb-1", file.name || "photo");
    const heading = el("p", "h4 verdict text-secondary", "Looking…");
    body.append(name, heading);
    frame.append(img);
    stage.append(frame);
    layout.append(stage, body);
    card.append(layout);
    column.append(card);
    batch.append(column);
    if (first) bringIntoView(heading, true);
    return { card, body, heading, frame, img, file };
  }

  // The photo shown is what was sent (a big photo's small copy decodes much faster);
  // one the browser cannot show (HEIC: no thumbnail) waits for the server's preview.
  function showPhoto(view, plan) {
    if (!plan.thumb) return;
    const url = URL.createObjectURL(plan.blob);
    view.img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
    view.img.src = url;
    view.img.classList.remove("d-none");
  }

  // One model's answer: its verdict (or "Not sure") and a bar per class.
  function answerSection(modelName, answer, compact) {
    const info = modelInfo(modelName);
    const section = el("section", "answer");
    section.dataset.model = modelName;
    section.dataset.label = answer.label;
    section.dataset.notSure = String(Boolean(answer.not_sure));
    const colour = tone(answer.label, info.classes);
    if (compact) section.append(el("h3", "h6 text-secondary mb-1", info.title));
    const size = compact ? "h5" : "h4";
    section.append(answer.not_sure
      ? el("p", size + " verdict verdict-unsure", notSureHeadline(answer.label, answer.top[0].score))
      : el("p", size + " verdict text-" + colour, verdict(answer.label, info.classes)));
    const list = el("ul", "list-unstyled mb-0");
    for (const item of answer.top) {
      const score = percent(item.score);
      const label = pretty(item.label);
      const row = el("div", "d-flex justify-content-between small");
      row.append(el("span", "", label), el("span", "", score + " %"));
      const bar = el("div", "progress");
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-label", label + " score");
      bar.setAttribute("aria-valuenow", String(score));
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "100");
      const winner = item.label === answer.label;
      bar.append(el("div", "progress-bar w-pct-" + score + " " +
        (winner ? (answer.not_sure ? "bg-warning" : "bg-" + colour) : "bg-secondary")));
      const li = el("li", "mb-2");
      li.append(row, bar);
      list.append(li);
    }
    section.append(list);
    return section;
  }

  // Fills a card with the classify answer `payload` for `model` (a name, or "all").
  // Returns the answers shown, [{model, answer}] in the card's order (every model's, or
  // the one), which is what the history keeps; the first is the one "Why?" explains.
  function showAnswers(view, plan, payload, model) {
    view.heading.remove();
    const result = payload.results[0];
    if (result.preview && view.img.classList.contains("d-none")) {
      view.img.src = result.preview;
      view.img.classList.remove("d-none");
      plan.thumb = plan.thumb || result.preview;
    }
    let shown;
    if (model === ALL_MODELS) {
      shown = payload.models.map(({ name }) => ({ model: name, answer: result.models[name] }));
      const grid = el("div", "answers-grid");
      for (const { model: name, answer } of shown) {
        const cell = el("div");
        cell.append(answerSection(name, answer, true), feedbackControls(plan, name, answer));
        grid.append(cell);
      }
      view.body.append(grid);
      view.card.dataset.label = "all";
    } else {
      shown = [{ model, answer: result }];
      view.body.append(answerSection(model, result, false), feedbackControls(plan, model, result));
      view.card.dataset.label = result.label;
    }
    const lead = shown[0];
    // The explanation came with the answer (explain=grid): "Why?" only draws it.
    if (lead.answer.explanation) view.body.append(whyButton(view, lead.answer.explanation));
    view.body.append(el("p", "small text-secondary mb-0 mt-2 sent-note",
                        answerFacts(payload, model === ALL_MODELS, plan)));
    // The first answer of a batch: its card was brought into view when it was made,
    // unless the page was too short then to scroll that far, or the person scrolled.
    const batch = view.card.closest(".batch");
    if (batch && !batch.dataset.shown) {
      batch.dataset.shown = "yes";
      bringIntoView(view.body.querySelector(".verdict"), false);
    }
    return shown;
  }

  // `problem.message` is already in plain words (api.js). `again` asks again.
  function showError(view, problem, again) {
    view.card.dataset.label = "error";
    view.heading.textContent = "No answer for this photo";
    view.heading.className = "h5 verdict text-danger";
    const alert = el("div", "alert alert-danger mb-0 small", problem.message);
    alert.setAttribute("role", "alert");
    if (problem.retry) {
      const retry = el("button", "btn btn-sm btn-outline-danger ms-2", "Try again");
      retry.type = "button";
      retry.addEventListener("click", () => {
        view.card.parentElement.remove();
        again();
      });
      alert.append(retry);
    }
    view.body.append(alert);
  }

  return { resultCard, showPhoto, showAnswers, showError };
}

// Scrolls `element` (a verdict, or "Looking…" where it will be) to the middle of the
// screen; `always` false: only when it is not already in the upper part of it.
function bringIntoView(element, always) {
  const box = element.getBoundingClientRect();
  const middle = (box.top + box.bottom) / 2;
  if (!always && box.top >= 0 && middle <= 0.65 * window.innerHeight) return;
  const still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  element.scrollIntoView({ behavior: still ? "auto" : "smooth", block: "center" });
}

// "Why?" switches the heat layer (drawn from the explanation's grid, heat.js) over the
// photo on and off; the layer is made the first time it is asked for.
function whyButton(view, explanation) {
  const button = el("button", "btn btn-sm btn-outline-primary mt-2 why-button", "Why?");
  button.type = "button";
  button.setAttribute("aria-pressed", "false");
  button.addEventListener("click", () => {
    const shown = view.card.classList.toggle("show-why");
    button.setAttribute("aria-pressed", String(shown));
    if (shown && !view.frame.querySelector(".heat")) {
      const heat = el("img", "heat");
      heat.src = explanation.overlay || heatLayerUri(explanation.grid);
      heat.alt = "Where the model saw " + pretty(explanation.label);
      view.frame.append(heat);
    }
  });
  return button;
}
