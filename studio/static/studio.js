() => {
  // Diffusion Studio's keyboard shortcuts and typed-value guard (passed to launch(js=...)).

  // Ctrl+Enter (Cmd+Enter on a Mac) runs the visible tab's Generate; Esc presses its Stop.
  const visible = (selector) =>
    [...document.querySelectorAll(selector)].find((el) => el.offsetParent !== null);
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      const run = visible(".studio-generate");
      if (run) {
        event.preventDefault();
        event.stopPropagation();
        if (!run.disabled) run.click();
      }
    } else if (event.key === "Escape" && !event.defaultPrevented) {
      if (event.target.closest && event.target.closest('[aria-expanded="true"]')) return;  // closing a list
      const stop = visible(".studio-stop");
      if (stop) stop.click();
    }
  }, true);

  // A studio slider (class studio-field) keeps a typed value even when it is outside the slider's range
  // or between its steps: Gradio would clamp it as the box loses focus. The server then refuses it with
  // an error naming the field, rather than running with a value nobody typed.
  const outOfRange = (input) => {
    if (input.value === "") return true;
    const value = Number(input.value), low = Number(input.min), high = Number(input.max);
    const step = Number(input.step);
    if (!Number.isFinite(value) || value < low || value > high) return true;
    if (step > 0) {
      const steps = (value - low) / step;
      return Math.abs(steps - Math.round(steps)) > 1e-6;
    }
    return false;
  };
  const guard = (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "number") return;
    if (!input.closest(".studio-field")) return;
    const bad = outOfRange(input);
    input.classList.toggle("studio-out-of-range", bad);
    if (bad) event.stopImmediatePropagation();
  };
  window.addEventListener("blur", guard, true);
  window.addEventListener("focusout", guard, true);
}
