// Rankings: a 100%-stacked bar per day of each top model's token share (data inlined by json_script).
(() => {
  const PALETTE = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#94a3b8"];
  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  function draw() {
    const canvas = document.getElementById("rankings-canvas");
    const source = document.getElementById("rankings-share");
    if (!canvas || !source || !window.Chart) return;
    const share = JSON.parse(source.textContent);
    if (!share.series.length) return;
    const text = cssVar("--muted");
    const existing = window.Chart.getChart(canvas);
    if (existing) existing.destroy();
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: share.labels,
        datasets: share.series.map((s, i) => ({ label: s.label, data: s.data, backgroundColor: PALETTE[i % PALETTE.length], stack: "all" })),
      },
      options: {
        animation: false, maintainAspectRatio: false,
        plugins: { legend: { position: "bottom", labels: { color: text, boxWidth: 12 } },
                   tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.parsed.y}%` } } },
        scales: {
          x: { stacked: true, ticks: { color: text, maxRotation: 0, autoSkip: true }, grid: { display: false } },
          y: { stacked: true, max: 100, ticks: { color: text, callback: (v) => `${v}%` }, grid: { color: cssVar("--border") } },
        },
      },
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("themechange", draw);
})();
