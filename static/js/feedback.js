// "Was this right?" under each answer: Yes / No, and for a model of more than two
// classes, what the photo really shows (its class names offered as one types); the
// photo itself is shared only when the box is ticked. Sent to /api/v1/feedback; the
// no-JavaScript result page has the same form (templates/_feedback.html).

import { UNREACHABLE } from "./api.js";
import { el } from "./dom.js";

// `api` is api.js's client; `modelInfo(name)` a model's {title, classes}. Returns
// `feedbackControls(plan, modelName, answer)`, which makes one answer's box.
export function feedbackForms({ api, modelInfo }) {
  let boxCount = 0; // for unique ids (a checkbox's label needs one)
  const classLists = {};

  // A large model's class names, fetched once, offered while a correction is typed.
  function offerClasses(modelName) {
    if (classLists[modelName]) return;
    classLists[modelName] = api.models().then((body) => {
      const card = body.models.find((m) => m.name === modelName);
      const list = el("datalist");
      list.id = "classes-" + modelName;
      for (const label of card.classes) {
        const option = el("option");
        option.value = label;
        list.append(option);
      }
      document.body.append(list);
    });
  }

  return function feedbackControls(plan, modelName, answer) {
    const info = modelInfo(modelName);
    const box = el("div", "feedback border-top pt-2 mt-2 small");
    const yes = el("button", "btn btn-sm btn-outline-success me-1", "Yes");
    const no = el("button", "btn btn-sm btn-outline-danger", "No");
    yes.type = no.type = "button";
    const consent = el("div", "form-check mt-1");
    const tick = el("input", "form-check-input");
    tick.type = "checkbox";
    tick.id = "consent-" + (++boxCount);
    const tickLabel = el("label", "form-check-label",
                         "Share my photo to improve the model (its metadata, such as location, is removed)");
    tickLabel.htmlFor = tick.id;
    consent.append(tick, tickLabel);
    box.append(el("p", "fw-semibold mb-1", "Was this right?"), yes, no, consent);

    async function submit(correct, correction) {
      const shared = tick.checked;
      try {
        // The server checks that a shared photo is the one it answered: the bytes it saw.
        const stored = await api.feedback({ token: answer.feedback_token, correct, correction,
                                            photo: shared ? plan : null });
        const photoWords = !shared ? "" : stored.photo_stored ? " Your photo helps train the next version."
          : " " + (stored.photo_note || "Your photo itself was not kept.");
        box.replaceChildren(el("p", "mb-0 text-success", "Thank you!" + photoWords));
      } catch (problem) {
        if (problem.code === UNREACHABLE) {
          // The buttons stay: the person can send it again.
          box.append(el("p", "text-danger mb-0", "The server could not be reached; try again."));
        } else {
          box.replaceChildren(el("p", "mb-0 text-danger", problem.message));
        }
      }
    }

    yes.addEventListener("click", () => submit(true, null));
    no.addEventListener("click", () => {
      if (info.classes === 2) { submit(false, null); return; } // the other class
      const pick = el("input", "form-control form-control-sm mt-1");
      pick.setAttribute("list", "classes-" + modelName);
      pick.setAttribute("aria-label", "What the photo really shows");
      pick.placeholder = "What is it really?";
      const sendButton = el("button", "btn btn-sm btn-primary mt-1", "Send");
      sendButton.type = "button";
      sendButton.addEventListener("click", () => { if (pick.value) submit(false, pick.value); });
      no.disabled = yes.disabled = true;
      box.insertBefore(pick, consent);
      box.insertBefore(sendButton, consent);
      offerClasses(modelName);
      pick.focus();
    });
    return box;
  };
}
