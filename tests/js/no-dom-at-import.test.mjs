// The pure modules can be imported where there is no page at all (Node, a worker):
// they touch no window, document, navigator or storage when they load. (The page's
// other modules need a browser and are tested in one: tests/browser/.)

import assert from "node:assert/strict";
import { test } from "node:test";

const PURE_MODULES = ["shrink.js", "wording.js", "history.js", "api.js"];
const BROWSER_GLOBALS = ["window", "document", "navigator", "localStorage", "location"];

test("importing the pure modules touches no browser global", async () => {
  const touched = [];
  // Node 21+ has a `navigator` of its own: kept aside, and put back after.
  const own = Object.fromEntries(
    BROWSER_GLOBALS.map((name) => [name, Object.getOwnPropertyDescriptor(globalThis, name)]));
  for (const name of BROWSER_GLOBALS) {
    Object.defineProperty(globalThis, name, {
      configurable: true,
      get() { touched.push(name); throw new Error(name + " touched at import"); },
    });
  }
  try {
    for (const module of PURE_MODULES) {
      const exports = await import(new URL("../../static/js/" + module, import.meta.url));
      assert.ok(Object.keys(exports).length, module);
    }
  } finally {
    for (const name of BROWSER_GLOBALS) {
      delete globalThis[name];
      if (own[name]) Object.defineProperty(globalThis, name, own[name]);
    }
  }
  assert.deepEqual(touched, []);
});
