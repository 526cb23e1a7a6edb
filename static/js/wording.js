// How answers are worded and coloured: the same rules as webapp/present.py, so that an
// answer reads the same with and without JavaScript. No DOM (tests/js/wording.test.js).

// "not_hotdog" -> "not hotdog".
export function pretty(label) {
  return label.replace(/_/g, " ");
}

// "hotdog" -> "Hotdog!", "not_hotdog" -> "Not hotdog!" for a yes/no model (2 classes);
// the best class, capitalised, for a model of more classes ("Menu").
export function verdict(label, classes) {
  const words = pretty(label);
  const capital = words.charAt(0).toUpperCase() + words.slice(1);
  return classes === 2 ? capital + "!" : capital;
}

// Bootstrap colour of a verdict: green for yes, red for a `not_` class, blue for the
// best of many classes.
export function tone(label, classes) {
  if (classes !== 2) return "primary";
  return label.startsWith("not_") ? "danger" : "success";
}

// A score of 0-1 as a whole percent (also the .w-pct-N bar class of static/css/app.css).
export function percent(score) {
  return Math.round(100 * score);
}

// The headline of a close call: "Not sure. Maybe hotdog (62 %)".
export function notSureHeadline(label, score) {
  return "Not sure. Maybe " + pretty(label) + " (" + percent(score) + " %)";
}

// A file size as people read it: "2.7 MB", "54 KB" (never "0 KB").
export function kilobytes(bytes) {
  return bytes >= 1e6 ? (bytes / 1e6).toFixed(1) + " MB" : Math.max(1, Math.round(bytes / 1e3)) + " KB";
}

// The small print under an answer: which model (or models) and version answered, and
// how much less was sent when the photo was shrunk. `payload` is the classify answer;
// `all` whether every model was asked; `plan` what prepare.js sent.
export function answerFacts(payload, all, plan) {
  const models = all
    ? payload.models.map((model) => model.name + " " + model.version).join(", ")
    : "Model: " + payload.model.title + " (" + payload.model.name + ", version " + payload.model.version + ")";
  if (!plan.shrunk) return models + ".";
  return models + ". Sent " + kilobytes(plan.blob.size) + " instead of " + kilobytes(plan.original) + ".";
}
