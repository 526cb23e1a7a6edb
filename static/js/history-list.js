// "Your earlier photos" on the upload page: the answers kept in this browser
// (history.js), newest first, each with its thumbnail; hidden while there are none.
// A photo asked of every model at once is one entry with every model's verdict.

import { el } from "./dom.js";
import { entryDetails, entryVerdict, entryVerdicts, forgetHistory, readHistory, rememberAnswer } from "./history.js";

// `storage` is localStorage (or null where it is blocked); `announce` speaks to screen
// readers. Returns `remember(entry)`, which adds an answer and shows the list again.
export function historyList(storage, announce) {
  const section = document.getElementById("history");
  const list = document.getElementById("history-list");

  function render() {
    const entries = readHistory(storage);
    section.classList.toggle("d-none", !entries.length);
    list.replaceChildren(...entries.map((entry) => {
      const item = el("li", "history-item");
      const img = el("img");
      img.alt = entry.name;
      if (entry.thumb) img.src = entry.thumb;
      if (!entry.verdicts) {
        item.append(img, el("div", "small fw-semibold", entryVerdict(entry)),
                    el("div", "small text-secondary", entryDetails(entry)));
        return item;
      }
      item.classList.add("every-model");
      const verdicts = el("ul", "list-unstyled small mb-1 verdicts");
      for (const { title, verdict } of entryVerdicts(entry)) {
        const line = el("li");
        line.append(el("span", "text-secondary", title + " "), el("span", "fw-semibold", verdict));
        verdicts.append(line);
      }
      const words = el("div");
      words.append(verdicts, el("div", "small text-secondary", entryDetails(entry)));
      item.append(img, words);
      return item;
    }));
  }

  document.getElementById("clear-history").addEventListener("click", () => {
    forgetHistory(storage);
    render();
    announce("History cleared.");
  });
  render();

  return function remember(entry) {
    rememberAnswer(storage, entry);
    render();
  };
}
