// Draws the plotly figures a page carries as JSON (see refloop/lib/charts.py). plotly.js is loaded only on pages
// that have a chart, from our own static files. A point whose customdata is a path drills down to it on click.
(function () {
  const PLOTLY_SRC = document.currentScript ? document.currentScript.dataset.plotly : null;
  let loading = null;

  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!loading) {
      loading = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = PLOTLY_SRC;
        script.onload = () => resolve(window.Plotly);
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  function drillTarget(point) {
    const data = point && point.customdata;
    const path = Array.isArray(data) ? data[0] : data;
    return typeof path === "string" && path.startsWith("/") ? path : null;
  }

  function draw(root) {
    const charts = root.querySelectorAll("[data-chart]:not([data-drawn])");
    if (!charts.length) return;
    loadPlotly().then((Plotly) => {
      charts.forEach((element) => {
        const source = document.getElementById(element.dataset.chart);
        if (!source) return;
        const spec = JSON.parse(source.textContent);
        element.dataset.drawn = "1";
        Plotly.newPlot(element, spec.data, spec.layout, { responsive: true, displaylogo: false }).then(() => {
          element.dataset.ready = "1";
          element.on("plotly_click", (event) => {
            const target = drillTarget(event.points && event.points[0]);
            if (target) window.location.assign(target);
          });
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => draw(document));
  document.addEventListener("htmx:afterSettle", (event) => draw(event.target));
})();
