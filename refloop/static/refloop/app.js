// Small behaviours htmx does not cover. No inline scripts anywhere: the Content Security Policy forbids them.
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    const results = document.getElementById("search-results");
    if (results) results.innerHTML = "";
  }
});
document.addEventListener("click", (event) => {
  const results = document.getElementById("search-results");
  if (results && !event.target.closest(".search")) results.innerHTML = "";
});
