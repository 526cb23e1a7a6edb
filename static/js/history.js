// This browser's earlier answers: what an entry holds, how the list is kept in storage
// (localStorage on the page; anything with getItem / setItem / removeItem in tests) and
// how an entry is worded. No DOM: history-list.js shows the list
// (tests/js/history.test.js).

import { pretty, verdict } from "./wording.js";

export const HISTORY_KEY = "nothotdog.history";
export const HISTORY_SIZE = 24;

// The entry for one answer. `info` is the model's {title, classes}; `thumb` the photo's
// small data: URL (or null); `time` milliseconds since 1970.
export function historyEntry({ time, name, model, answer, info, thumb }) {
  return { time, name, model, ...verdictOf(answer, info), thumb };
}

// The entry for "Everything at once": one photo, every model's verdict. `answers` are
// [{model, answer, info}] in the page's order; `title` what the page calls the choice.
export function everyModelEntry({ time, name, answers, title, thumb }) {
  return { time, name, model: "all", title, thumb,
           verdicts: answers.map(({ model, answer, info }) => ({ model, ...verdictOf(answer, info) })) };
}

// What an entry keeps of an answer: the verdict, not the scores of every class or the
// explanation (localStorage holds a few MB at most).
function verdictOf(answer, info) {
  return { label: answer.label, notSure: Boolean(answer.not_sure), score: answer.top[0].score,
           classes: info.classes, title: info.title };
}

// The list with `entry` first, the oldest dropped past `size`.
export function withEntry(entries, entry, size = HISTORY_SIZE) {
  return [entry, ...entries].slice(0, size);
}

// The list stored as text, or [] for nothing, damaged text or anything but a list.
export function parseHistory(text) {
  try {
    const entries = JSON.parse(text || "[]");
    return Array.isArray(entries) ? entries.filter(wellFormed) : [];
  } catch (damaged) {
    return [];
  }
}

// One model's verdict, or every model's (a list of them, none damaged).
function wellFormed(entry) {
  if (!entry) return false;
  if (Array.isArray(entry.verdicts)) {
    return entry.verdicts.length > 0 && entry.verdicts.every((one) => one && typeof one.label === "string");
  }
  return typeof entry.label === "string";
}

// Storage can be missing or refuse (private mode, full, blocked): history is a nicety,
// so each of these then does nothing, or reads an empty list.
export function readHistory(storage) {
  try { return parseHistory(storage.getItem(HISTORY_KEY)); } catch (blocked) { return []; }
}

export function writeHistory(storage, entries) {
  try { storage.setItem(HISTORY_KEY, JSON.stringify(entries)); } catch (fullOrBlocked) { /* */ }
}

export function forgetHistory(storage) {
  try { storage.removeItem(HISTORY_KEY); } catch (blocked) { /* */ }
}

// Adds an answer's entry to the stored list; returns the list now stored.
export function rememberAnswer(storage, entry) {
  const entries = withEntry(readHistory(storage), entry);
  writeHistory(storage, entries);
  return entries;
}

// What an entry says: "Hotdog!", "Menu", or "Not sure (hotdog)". (One model's verdict.)
export function entryVerdict(entry) {
  return entry.notSure ? "Not sure (" + pretty(entry.label) + ")" : verdict(entry.label, entry.classes);
}

// Every verdict of an entry, each with the title of the model that gave it:
// [{title: "Is it a hot dog?", verdict: "Not hotdog!"}, ...]; one for a single model.
export function entryVerdicts(entry) {
  return (entry.verdicts || [entry]).map((one) => ({ title: one.title, verdict: entryVerdict(one) }));
}

// Which model (or "Everything at once") and when: "Is it a hot dog?, 04/12/2026, 16:05:00"
// (in the reader's locale).
export function entryDetails(entry, locale) {
  return entry.title + ", " + new Date(entry.time).toLocaleString(locale);
}
