// The live camera on the upload page: where the browser can open a camera, the
// "Open the camera" button replaces the phone's capture picker; the panel takes a photo,
// or keeps asking (one frame a second at most, never two requests at once), the answer
// replacing the previous one in a single card. Refused or missing, the picker comes back.

import { el } from "./dom.js";
import { videoFrame } from "./prepare.js";

const LIVE_INTERVAL_MS = 1000;

// `classify(file, holder, model)` asks about one photo, its card in `holder`, and
// resolves once it is answered; `classifyAll(files)` asks about a batch; `chosenModel()`
// names the model; `results` holds the cards; `tell(message)` shows a message.
export function setUpCamera({ classify, classifyAll, chosenModel, results, tell, decodeFloor }) {
  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) return; // the picker stays
  const picker = document.getElementById("camera-file");
  const panel = document.getElementById("camera-panel");
  const video = document.getElementById("camera-video");
  const liveSwitch = document.getElementById("camera-live-mode");
  let stream = null;
  let timer = null;
  let busy = false;
  let liveHolder = null;

  picker.classList.add("d-none");
  document.getElementById("camera-live").classList.remove("d-none");

  async function open() {
    try {
      stream = await navigator.mediaDevices.getUserMedia(
        { video: { facingMode: "environment", width: { ideal: 1280 } }, audio: false });
    } catch (refused) {
      // No camera, or no permission: the file picker (which can also take a photo on a
      // phone) is the way left.
      picker.classList.remove("d-none");
      tell(refused && refused.name === "NotAllowedError"
        ? "The camera was not allowed. Allow it in your browser's site settings, or choose a photo instead."
        : "No camera could be opened. Choose a photo instead.");
      return;
    }
    video.srcObject = stream;
    await video.play();
    panel.classList.remove("d-none");
    panel.scrollIntoView({ behavior: "smooth", block: "nearest" });
    tell(null);
  }

  function close() {
    window.clearInterval(timer);
    liveSwitch.checked = false;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    panel.classList.add("d-none");
  }

  // One round of live mode; skipped while the previous round's answer is awaited.
  async function liveTick() {
    if (busy || !stream) return;
    busy = true;
    try {
      const file = await videoFrame(video, decodeFloor);
      if (!liveHolder || !liveHolder.isConnected) {
        liveHolder = el("div", "row g-3 mb-3 batch live");
        results.prepend(liveHolder);
      }
      const next = el("div", "row g-3");
      await classify(file, next, chosenModel());
      liveHolder.replaceChildren(...next.children);
    } finally {
      busy = false;
    }
  }

  document.getElementById("camera-open").addEventListener("click", open);
  document.getElementById("camera-close").addEventListener("click", close);
  document.getElementById("camera-shoot").addEventListener("click", async () => {
    classifyAll([await videoFrame(video, decodeFloor)]);
  });
  liveSwitch.addEventListener("change", () => {
    window.clearInterval(timer);
    if (liveSwitch.checked) {
      liveTick();
      timer = window.setInterval(liveTick, LIVE_INTERVAL_MS);
    }
  });
}
