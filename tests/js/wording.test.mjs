// static/js/wording.js: answers read the same as on the no-JavaScript pages
// (webapp/present.py), and the small print under an answer.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  answerFacts, kilobytes, notSureHeadline, percent, pretty, tone, verdict,
} from "../../static/js/wording.js";

test("labels in words", () => {
  assert.equal(pretty("not_hotdog"), "not hotdog");
  assert.equal(pretty("hot_dog_bun_x"), "hot dog bun x");
  assert.equal(pretty("menu"), "menu");
});

test("a yes/no model exclaims; a model of more classes names the class", () => {
  assert.equal(verdict("hotdog", 2), "Hotdog!");
  assert.equal(verdict("not_hotdog", 2), "Not hotdog!");
  assert.equal(verdict("menu", 5), "Menu");
  assert.equal(verdict("golden_retriever", 1000), "Golden retriever");
});

test("green for yes, red for a not_ class, blue for the best of many", () => {
  assert.equal(tone("hotdog", 2), "success");
  assert.equal(tone("not_hotdog", 2), "danger");
  assert.equal(tone("pizza", 2), "success");
  assert.equal(tone("not_pizza", 5), "primary");
  assert.equal(tone("food", 5), "primary");
});

test("scores as whole percents (the bar classes go from w-pct-0 to w-pct-100)", () => {
  assert.equal(percent(0), 0);
  assert.equal(percent(1), 100);
  assert.equal(percent(0.996094), 100);
  assert.equal(percent(0.004), 0);
  assert.equal(percent(0.625), 63);
  assert.equal(notSureHeadline("not_pizza", 0.5123), "Not sure. Maybe not pizza (51 %)");
});

test("file sizes as people read them", () => {
  assert.equal(kilobytes(0), "1 KB");
  assert.equal(kilobytes(54_321), "54 KB");
  assert.equal(kilobytes(999_999), "1000 KB");
  assert.equal(kilobytes(1_000_000), "1.0 MB");
  assert.equal(kilobytes(2_712_345), "2.7 MB");
});

const ONE = { model: { name: "hotdog", title: "Is it a hot dog?", version: "2026-11-30.001512" } };
const EVERY = { models: [{ name: "hotdog", version: "v1" }, { name: "pizza", version: "v2" }] };

test("the small print names the model and its version", () => {
  const plan = { shrunk: false, blob: { size: 50_000 }, original: 50_000 };
  assert.equal(answerFacts(ONE, false, plan), "Model: Is it a hot dog? (hotdog, version 2026-11-30.001512).");
  assert.equal(answerFacts(EVERY, true, plan), "hotdog v1, pizza v2.");
});

test("and, for a shrunk photo, how much less was sent", () => {
  const plan = { shrunk: true, blob: { size: 54_000 }, original: 2_700_000 };
  assert.equal(answerFacts(ONE, false, plan),
               "Model: Is it a hot dog? (hotdog, version 2026-11-30.001512). Sent 54 KB instead of 2.7 MB.");
});
