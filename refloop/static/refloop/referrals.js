// Referral pages: select every row of a work queue for a bulk assignment; one submit per intake form.
// No inline scripts anywhere: the Content Security Policy forbids them.
document.addEventListener("change", (event) => {
  const all = event.target.closest(".select-all");
  if (!all) return;
  const form = all.closest("form");
  form.querySelectorAll("input[name=referral]").forEach((box) => {
    box.checked = all.checked;
  });
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.id !== "intake-form") return;
  // The idempotency key already makes a second submit harmless; this only spares the user a second wait.
  window.setTimeout(() => {
    form.querySelectorAll("button[type=submit]").forEach((button) => {
      button.disabled = true;
    });
  }, 0);
});
