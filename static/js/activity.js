// Activity chart: htmx fetches the series JSON (hx-swap="none"); this draws it with the vendored Chart.js.
(() => {
  const PALETTE = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#94a3b8"];

  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  function money(value) {
    if (value === 0) return "$0";
    if (Math.abs(value) >= 0.01) return "$" + value.toLocaleString(undefined, { maximumFractionDigits: 2 });
    return "$" + value.toPrecision(3);
  }

  function draw(payload) {
    const canvas = document.getElementById("activity-canvas");
    if (!canvas || !window.Chart) return;
    const text = cssVar("--muted") || "#6a7384";
    const grid = cssVar("--border") || "#e2e5eb";
    const isCost = payload.metric === "cost";
    const data = {
      labels: payload.labels,
      datasets: payload.series.map((s, i) => ({
        label: s.label,
        data: s.data,
        backgroundColor: PALETTE[i % PALETTE.length],
        borderWidth: 0,
        stack: "all",
      })),
    };
    const existing = window.Chart.getChart(canvas);
    if (existing) existing.destroy();
    new window.Chart(canvas, {
      type: "bar",
      data,
      options: {
        animation: false,
        maintainAspectRatio: false,
        responsive: true,
        plugins: {
          legend: { position: "bottom", labels: { color: text, boxWidth: 12 } },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${isCost ? money(c.parsed.y) : c.parsed.y.toLocaleString()}` } },
        },
        scales: {
          x: { stacked: true, ticks: { color: text, maxRotation: 0, autoSkip: true }, grid: { display: false } },
          y: { stacked: true, beginAtZero: true, ticks: { color: text, precision: isCost ? undefined : 0, callback: (v) => (isCost ? money(v) : v.toLocaleString()) }, grid: { color: grid } },
        },
      },
    });
    const box = document.getElementById("activity-chart");
    box.dataset.series = String(payload.series.length);
    box.dataset.points = String(payload.series.reduce((n, s) => n + s.data.filter((v) => v > 0).length, 0));
    box.dataset.buckets = String(payload.labels.length);
    box.classList.toggle("is-empty", payload.series.length === 0);
  }

  // The metric radios sit outside the form (beside the chart); send the checked one with the request.
  document.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.elt.id !== "activity-chart") return;
    const checked = document.querySelector(".metric-radio:checked");
    if (checked) event.detail.parameters.metric = checked.value;
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.elt.id !== "activity-chart" || !event.detail.successful) return;
    window.activitySeries = JSON.parse(event.detail.xhr.responseText);
    draw(window.activitySeries);
    const checked = document.querySelector(".metric-radio:checked");
    if (checked) {
      const url = new URL(window.location.href);
      url.searchParams.set("metric", checked.value);
      history.replaceState(null, "", url);
    }
  });

  // Re-colour axes when the theme changes (the toggle or the OS setting).
  document.addEventListener("themechange", () => window.activitySeries && draw(window.activitySeries));
})();
