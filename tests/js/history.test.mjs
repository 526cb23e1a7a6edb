// static/js/history.js: this browser's earlier answers, as kept in storage and worded.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  HISTORY_KEY, HISTORY_SIZE, entryDetails, entryVerdict, entryVerdicts, everyModelEntry, forgetHistory,
  historyEntry, parseHistory, readHistory, rememberAnswer, withEntry, writeHistory,
} from "../../static/js/history.js";

// localStorage's interface over a Map.
function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
    items,
  };
}

// Storage that refuses everything (blocked, or full).
const REFUSING = {
  getItem() { throw new Error("SecurityError"); },
  setItem() { throw new Error("QuotaExceededError"); },
  removeItem() { throw new Error("SecurityError"); },
};

const HOTDOG = { title: "Is it a hot dog?", classes: 2 };

function entry(label, { time = 0, notSure = false } = {}) {
  return historyEntry({ time, name: label + ".jpg", model: "hotdog", info: HOTDOG, thumb: null,
                        answer: { label, not_sure: notSure, top: [{ label, score: 0.9 }],
                                  explanation: { overlay: "data:image/png;base64,big" } } });
}

test("an entry keeps the verdict, not the whole answer", () => {
  assert.deepEqual(entry("hotdog", { time: 1764864000000 }), {
    time: 1764864000000, name: "hotdog.jpg", model: "hotdog", label: "hotdog", notSure: false,
    score: 0.9, classes: 2, title: "Is it a hot dog?", thumb: null,
  });
});

test("the newest first, at most HISTORY_SIZE", () => {
  let entries = [];
  for (let i = 0; i < HISTORY_SIZE + 5; i += 1) entries = withEntry(entries, entry("hotdog", { time: i }));
  assert.equal(entries.length, HISTORY_SIZE);
  assert.equal(entries[0].time, HISTORY_SIZE + 4);
  assert.equal(entries.at(-1).time, 5);
  assert.deepEqual(withEntry([], entry("menu"), 1).map((e) => e.label), ["menu"]);
});

test("damaged or foreign storage reads as no history", () => {
  for (const text of [null, "", "not json", "{\"a\": 1}", "42", "null"]) {
    assert.deepEqual(parseHistory(text), []);
  }
  assert.deepEqual(parseHistory(JSON.stringify([null, { no: "label" }, entry("menu")])).map((e) => e.label),
                   ["menu"]);
});

test("stored, read back and forgotten", () => {
  const storage = memoryStorage();
  assert.deepEqual(readHistory(storage), []);
  rememberAnswer(storage, entry("hotdog", { time: 1 }));
  const entries = rememberAnswer(storage, entry("not_hotdog", { time: 2 }));
  assert.deepEqual(entries.map((e) => e.label), ["not_hotdog", "hotdog"]);
  assert.deepEqual(readHistory(storage), entries);
  assert.deepEqual(JSON.parse(storage.items.get(HISTORY_KEY)), entries);
  forgetHistory(storage);
  assert.deepEqual(readHistory(storage), []);
  writeHistory(storage, [entry("menu")]);
  assert.equal(readHistory(storage).length, 1);
});

test("storage that is missing or refuses is no error: history is a nicety", () => {
  for (const storage of [null, undefined, REFUSING]) {
    assert.deepEqual(readHistory(storage), []);
    assert.doesNotThrow(() => writeHistory(storage, [entry("hotdog")]));
    assert.doesNotThrow(() => forgetHistory(storage));
    assert.equal(rememberAnswer(storage, entry("hotdog")).length, 1);
  }
});

test("each entry's words", () => {
  assert.equal(entryVerdict(entry("hotdog")), "Hotdog!");
  assert.equal(entryVerdict(entry("not_hotdog")), "Not hotdog!");
  assert.equal(entryVerdict(entry("not_hotdog", { notSure: true })), "Not sure (not hotdog)");
  assert.equal(entryVerdict({ label: "ambience", classes: 5, notSure: false }), "Ambience");
  const details = entryDetails(entry("hotdog", { time: Date.UTC(2026, 11, 4, 12) }), "en-GB");
  assert.match(details, /^Is it a hot dog\?, 0?4\/12\/2026/);
});

// "Everything at once": one photo, every model's answer, as the page gets them.
function everyModel(time = 0) {
  const answer = (label, score, notSure = false) => ({
    label, not_sure: notSure, top: [{ label, score }], explanation: { overlay: "data:image/png;base64,big" },
  });
  return everyModelEntry({
    time, name: "tray.jpg", title: "Everything at once", thumb: "data:image/jpeg;base64,small",
    answers: [
      { model: "hotdog", answer: answer("not_hotdog", 0.97), info: HOTDOG },
      { model: "pizza", answer: answer("pizza", 0.61, true), info: { title: "Is it a pizza?", classes: 2 } },
      { model: "phototype", answer: answer("food", 0.99), info: { title: "What does this upload show?", classes: 5 } },
    ],
  });
}

test("every model at once is one entry with every model's verdict", () => {
  assert.deepEqual(everyModel(1764864000000), {
    time: 1764864000000, name: "tray.jpg", model: "all", title: "Everything at once",
    thumb: "data:image/jpeg;base64,small",
    verdicts: [
      { model: "hotdog", label: "not_hotdog", notSure: false, score: 0.97, classes: 2, title: "Is it a hot dog?" },
      { model: "pizza", label: "pizza", notSure: true, score: 0.61, classes: 2, title: "Is it a pizza?" },
      { model: "phototype", label: "food", notSure: false, score: 0.99, classes: 5,
        title: "What does this upload show?" },
    ],
  });
  assert.deepEqual(entryVerdicts(everyModel()), [
    { title: "Is it a hot dog?", verdict: "Not hotdog!" },
    { title: "Is it a pizza?", verdict: "Not sure (pizza)" },
    { title: "What does this upload show?", verdict: "Food" },
  ]);
  assert.match(entryDetails(everyModel(Date.UTC(2026, 11, 4, 12)), "en-GB"), /^Everything at once, 0?4\/12\/2026/);
  // One model's entry: its one verdict.
  assert.deepEqual(entryVerdicts(entry("hotdog")), [{ title: "Is it a hot dog?", verdict: "Hotdog!" }]);
});

test("every model's entry is stored and read back beside single ones; damaged ones are dropped", () => {
  const storage = memoryStorage();
  rememberAnswer(storage, entry("hotdog", { time: 1 }));
  rememberAnswer(storage, everyModel(2));
  assert.deepEqual(readHistory(storage).map((e) => e.model), ["all", "hotdog"]);
  assert.equal(readHistory(storage)[0].verdicts.length, 3);
  const damaged = [{ model: "all", verdicts: [] }, { model: "all", verdicts: [null] },
                   { model: "all", verdicts: [{ no: "label" }] }, { model: "all", verdicts: "hotdog" }];
  assert.deepEqual(parseHistory(JSON.stringify([...damaged, everyModel()])).map((e) => e.model), ["all"]);
});
