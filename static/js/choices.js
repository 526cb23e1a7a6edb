// The model chosen on the upload form: which one is checked, what the page says about
// each (its title and number of classes, from the radio buttons' data attributes), and
// the choice remembered in this browser for the next visit.

export const MODEL_KEY = "nothotdog.model";

export function modelChoices(form, storage) {
  const inputs = form.querySelectorAll("input[name=model]");

  // A link that names a model (/?model=digits, from the drawing page) wins over the
  // remembered choice.
  const named = new URLSearchParams(window.location.search).has("model");
  try {
    const remembered = storage && storage.getItem(MODEL_KEY);
    const input = remembered && document.getElementById("model-" + remembered);
    if (input && !named) input.checked = true;
  } catch (storageBlocked) { /* private mode: nothing is remembered */ }
  inputs.forEach((input) => {
    input.addEventListener("change", () => {
      try { storage.setItem(MODEL_KEY, input.value); } catch (ignored) { /* */ }
    });
  });

  return {
    chosen() {
      const checked = form.querySelector("input[name=model]:checked");
      return checked ? checked.value : inputs[0].value;
    },
    // {title, classes} of a model (classes 0 for "every model" and unknown names).
    info(name) {
      const input = document.getElementById("model-" + name);
      return input ? { title: input.dataset.title, classes: Number(input.dataset.classes) }
        : { title: name, classes: 0 };
    },
  };
}
