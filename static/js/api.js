// The JSON API's client, shared by the upload page and the drawing page. Every failure
// becomes an ApiError whose message is for people: the plain words the page was given
// by the server for each error code (webapp/present.py), never the API's own message,
// which names form fields and limits for programmers. No DOM: Node tests it with a
// stand-in for fetch (tests/js/api.test.js).

export const CLASSIFY_URL = "/api/v1/classify";
export const FEEDBACK_URL = "/api/v1/feedback";
export const MODELS_URL = "/api/v1/models";
// The code of an ApiError when no answer came at all (offline, server down).
export const UNREACHABLE = "unreachable";
export const UNREACHABLE_MESSAGE = "The server could not be reached. Check your connection and try again.";

export class ApiError extends Error {
  // `retry`: whether trying again as it is can help (the network, a busy or failing server).
  constructor(message, { code, status = 0, retry = false }) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    this.retry = retry;
  }
}

// The error code of an API error body ({"error": {"code": ...}}), or "unknown".
export function errorCode(payload) {
  return (payload && payload.error && typeof payload.error.code === "string") ? payload.error.code : "unknown";
}

// The plain words for an error code; the generic message (`unknown`) for any other.
export function plainWords(messages, code) {
  return messages[code] || messages.unknown;
}

// A server error or "too many requests" may pass; a refused photo will not.
export function isRetryable(status) {
  return status >= 500 || status === 429;
}

// The classify address with its query: `model`, then each option that is set
// (preview, input: true; explain: true, or "grid" for the grid without its heat layer;
// topK: a number).
export function classifyAddress(model, { explain = false, preview = false, input = false, topK = null } = {}) {
  const query = new URLSearchParams({ model });
  if (topK) query.set("top_k", String(topK));
  if (explain) query.set("explain", explain === "grid" ? "grid" : "true");
  if (preview) query.set("preview", "true");
  if (input) query.set("input", "true");
  return CLASSIFY_URL + "?" + query;
}

// An API client speaking to this site. `messages` maps error codes to plain words
// (with an `unknown` entry); `fetch` is there for tests.
export function apiClient(messages, { fetch: send = (...args) => globalThis.fetch(...args) } = {}) {
  // Posts a form; resolves with the JSON answer, rejects with an ApiError.
  async function post(url, data) {
    let response;
    try {
      response = await send(url, { method: "POST", body: data, headers: { Accept: "application/json" } });
    } catch (networkError) {
      throw new ApiError(UNREACHABLE_MESSAGE, { code: UNREACHABLE, retry: true });
    }
    let payload = null;
    try { payload = await response.json(); } catch (notJson) { /* a proxy's error page, say */ }
    if (!response.ok) {
      const code = errorCode(payload);
      throw new ApiError(plainWords(messages, code), { code, status: response.status,
                                                       retry: isRetryable(response.status) });
    }
    if (payload === null) { // a 200 that is not the API's (a captive portal's page, say)
      throw new ApiError(plainWords(messages, "unknown"), { code: "unknown", status: response.status,
                                                            retry: true });
    }
    return payload;
  }

  return {
    // The plain words for an error code, for a page's own checks (no photo chosen).
    messageFor(code) {
      return plainWords(messages, code);
    },

    // One photo (a Blob and its file name) to `model`, with classifyAddress's options.
    classify(blob, name, model, options) {
      const data = new FormData();
      data.append("image", blob, name);
      return post(classifyAddress(model, options), data);
    },

    // "Was this right?" for the answer whose token this is; with `photo` ({blob, name}),
    // the photo is shared too (the server checks that it is the one it answered).
    feedback({ token, correct, correction = null, photo = null }) {
      const data = new FormData();
      data.append("token", token);
      data.append("correct", String(correct));
      if (correction) data.append("correction", correction);
      data.append("consent", String(Boolean(photo)));
      if (photo) data.append("image", photo.blob, photo.name);
      return post(FEEDBACK_URL, data);
    },

    // Every model's card (GET /api/v1/models).
    async models() {
      const response = await send(MODELS_URL, { headers: { Accept: "application/json" } });
      return response.json();
    },
  };
}
