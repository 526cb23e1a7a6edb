// static/js/api.js: what the pages send, and every failure turned into plain words
// (never the API's own message, which is for programmers), with a stand-in for fetch.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ApiError, UNREACHABLE, UNREACHABLE_MESSAGE, apiClient, classifyAddress, errorCode, isRetryable,
  plainWords,
} from "../../static/js/api.js";

// As the page gets them from the server (webapp/present.py), in part.
const MESSAGES = {
  unsupported_media_type: "That file is not a photo we can read.",
  corrupt_image: "That photo seems damaged or incomplete.",
  too_many_requests: "You sent a lot in a short time.",
  token_used: "You already told us about this answer. Thank you!",
  unknown: "Something went wrong on our side. Please try again in a moment.",
};
// The API's own messages, which must never reach people.
const FOR_PROGRAMMERS = "cannot identify image file: form field 'image' (PIL)";

// A fetch that records its calls and answers `status` with `body` (an object is sent
// as JSON, a string as it is).
function fakeFetch(status, body) {
  const calls = [];
  const fetch = async (url, options) => {
    calls.push({ url, options });
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return new Response(text, { status, headers: { "Content-Type": "application/json" } });
  };
  return { fetch, calls };
}

function apiError(code) {
  return { error: { code, message: FOR_PROGRAMMERS } };
}

test("error codes, their plain words, and which failures are worth a retry", () => {
  assert.equal(errorCode(apiError("corrupt_image")), "corrupt_image");
  assert.equal(errorCode(null), "unknown");
  assert.equal(errorCode({ error: "a string" }), "unknown");
  assert.equal(errorCode({ detail: "not ours" }), "unknown");
  assert.equal(plainWords(MESSAGES, "corrupt_image"), MESSAGES.corrupt_image);
  assert.equal(plainWords(MESSAGES, "a_code_from_a_newer_server"), MESSAGES.unknown);
  assert.deepEqual([400, 413, 415, 422, 429, 500, 503].map(isRetryable),
                   [false, false, false, false, true, true, true]);
});

test("the classify address carries the model and the options asked for", () => {
  assert.equal(classifyAddress("hotdog"), "/api/v1/classify?model=hotdog");
  assert.equal(classifyAddress("all", { explain: true }), "/api/v1/classify?model=all&explain=true");
  assert.equal(classifyAddress("all", { explain: "grid" }), "/api/v1/classify?model=all&explain=grid");
  assert.equal(classifyAddress("hotdog", { explain: true, preview: true }),
               "/api/v1/classify?model=hotdog&explain=true&preview=true");
  assert.equal(classifyAddress("digits", { topK: 10, input: true }),
               "/api/v1/classify?model=digits&top_k=10&input=true");
  assert.equal(classifyAddress("a&b"), "/api/v1/classify?model=a%26b");
});

test("a photo is posted as the multipart field `image`; the answer comes back", async () => {
  const answer = { results: [{ label: "hotdog", explanation: { overlay: "data:image/png;base64,x" } }] };
  const { fetch, calls } = fakeFetch(200, answer);
  const api = apiClient(MESSAGES, { fetch });
  const got = await api.classify(new Blob(["jpeg bytes"]), "lunch.jpg", "hotdog", { explain: true });
  assert.deepEqual(got, answer);
  assert.equal(calls.length, 1); // one request: the explanation came with the answer
  assert.equal(calls[0].url, "/api/v1/classify?model=hotdog&explain=true");
  assert.equal(calls[0].options.method, "POST");
  assert.equal(calls[0].options.headers.Accept, "application/json");
  const photo = calls[0].options.body.get("image");
  assert.equal(photo.name, "lunch.jpg");
  assert.equal(await photo.text(), "jpeg bytes");
});

test("a refused photo is an ApiError in plain words, not worth retrying as it is", async () => {
  const api = apiClient(MESSAGES, fakeFetch(415, apiError("unsupported_media_type")));
  const problem = await api.classify(new Blob(["text"]), "notes.jpg", "hotdog").catch((e) => e);
  assert.ok(problem instanceof ApiError);
  assert.equal(problem.message, MESSAGES.unsupported_media_type);
  assert.equal(problem.code, "unsupported_media_type");
  assert.equal(problem.status, 415);
  assert.equal(problem.retry, false);
});

test("a busy or failing server can be tried again", async () => {
  for (const [status, body, message] of [[429, apiError("too_many_requests"), MESSAGES.too_many_requests],
                                         [503, "<html>Bad gateway</html>", MESSAGES.unknown],
                                         [500, apiError("internal"), MESSAGES.unknown]]) {
    const api = apiClient(MESSAGES, fakeFetch(status, body));
    const problem = await api.classify(new Blob(["x"]), "x.jpg", "hotdog").catch((e) => e);
    assert.equal(problem.message, message);
    assert.equal(problem.retry, true);
  }
});

test("no answer at all: the server could not be reached", async () => {
  const fetch = async () => { throw new TypeError("Failed to fetch"); };
  const problem = await apiClient(MESSAGES, { fetch }).classify(new Blob(["x"]), "x.jpg", "hotdog")
    .catch((e) => e);
  assert.equal(problem.code, UNREACHABLE);
  assert.equal(problem.message, UNREACHABLE_MESSAGE);
  assert.equal(problem.retry, true);
});

test("a success that is not the API's answer is no answer", async () => {
  const api = apiClient(MESSAGES, fakeFetch(200, "<html>Sign in to the Wi-Fi</html>"));
  const problem = await api.classify(new Blob(["x"]), "x.jpg", "hotdog").catch((e) => e);
  assert.equal(problem.message, MESSAGES.unknown);
});

test("no message for people is ever the API's own", async () => {
  for (const status of [400, 413, 415, 422, 429, 500]) {
    for (const code of ["missing_image", "corrupt_image", "bad_request", undefined]) {
      const api = apiClient(MESSAGES, fakeFetch(status, { error: { code, message: FOR_PROGRAMMERS } }));
      const problem = await api.classify(new Blob(["x"]), "x.jpg", "hotdog").catch((e) => e);
      assert.ok(problem.message && !problem.message.includes("form field"), problem.message);
    }
  }
});

test("feedback sends the token and the verdict; the photo only when shared", async () => {
  const { fetch, calls } = fakeFetch(200, { stored: true });
  const api = apiClient(MESSAGES, { fetch });
  await api.feedback({ token: "t1", correct: true });
  await api.feedback({ token: "t2", correct: false, correction: "menu",
                       photo: { blob: new Blob(["photo"]), name: "lunch.jpg" } });
  const [kept, shared] = calls.map((call) => call.options.body);
  const fields = (form) => ["token", "correct", "consent", "correction"].map((name) => form.get(name));
  assert.equal(calls[0].url, "/api/v1/feedback");
  assert.deepEqual(fields(kept), ["t1", "true", "false", null]);
  assert.equal(kept.get("image"), null);
  assert.deepEqual(fields(shared), ["t2", "false", "true", "menu"]);
  assert.equal(shared.get("image").name, "lunch.jpg");
});

test("feedback already given is said in plain words", async () => {
  const api = apiClient(MESSAGES, fakeFetch(409, apiError("token_used")));
  const problem = await api.feedback({ token: "t", correct: true }).catch((e) => e);
  assert.equal(problem.message, MESSAGES.token_used);
  assert.equal(problem.retry, false);
});

test("the page's own checks get the same plain words", () => {
  const api = apiClient({ ...MESSAGES, missing_image: "Choose a photo first." });
  assert.equal(api.messageFor("missing_image"), "Choose a photo first.");
  assert.equal(api.messageFor("nothing_like_it"), MESSAGES.unknown);
});

test("the models list", async () => {
  const { fetch, calls } = fakeFetch(200, { models: [{ name: "imagenet", classes: ["tench"] }] });
  const body = await apiClient(MESSAGES, { fetch }).models();
  assert.equal(body.models[0].name, "imagenet");
  assert.equal(calls[0].url, "/api/v1/models");
});
