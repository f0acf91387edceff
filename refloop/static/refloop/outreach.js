// The activity form: when a practice is chosen its attendee checkboxes are swapped in, and the per-physician
// ledger preview is asked for again; one submit per form. No inline scripts: the Content Security Policy.
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target.id !== "attendees") return;
  const fields = document.getElementById("activity-fields");
  if (fields) fields.dispatchEvent(new Event("change", { bubbles: true }));
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.id !== "activity-form") return;
  window.setTimeout(() => {
    form.querySelectorAll("button[type=submit]").forEach((button) => {
      button.disabled = true;
    });
  }, 0);
});
