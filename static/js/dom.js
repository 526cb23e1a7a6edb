// Small DOM helpers shared by the page's modules: making elements, and the two places
// the upload page speaks from (a message under the form, and a hidden live region that
// screen readers announce).

// A new element with its classes and text (textContent: never parsed as HTML).
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// `announce(text)` says something to screen readers (through `status`, an aria-live
// region); `tell(text, tone)` shows a Bootstrap alert in `messageBox`, and
// `tell(null)` takes it away.
export function notices(status, messageBox) {
  return {
    announce(message) {
      status.textContent = message;
    },
    tell(message, tone = "warning") {
      messageBox.replaceChildren();
      if (message) messageBox.append(el("div", "alert alert-" + tone + " mb-0 py-2", message));
    },
  };
}
