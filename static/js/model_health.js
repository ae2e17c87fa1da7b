// Model page: per-endpoint hourly uptime, latency and throughput (data inlined by json_script), drawn
// with the vendored Chart.js. Null hours stay gaps: no traffic is not a zero.
(() => {
  const PALETTE = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#94a3b8"];
  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const METRICS = [
    ["uptime", "%", { min: 0, max: 100 }],
    ["latency", " ms", { beginAtZero: true }],
    ["throughput", " tok/s", { beginAtZero: true }],
  ];

  function draw() {
    const source = document.getElementById("model-health");
    if (!source || !window.Chart) return;
    const health = JSON.parse(source.textContent);
    const text = cssVar("--muted");
    const grid = cssVar("--border");
    for (const [metric, unit, scale] of METRICS) {
      const canvas = document.getElementById(`health-${metric}-canvas`);
      if (!canvas) continue;
      const existing = window.Chart.getChart(canvas);
      if (existing) existing.destroy();
      const datasets = health.endpoints.map((ep, i) => ({
        label: !ep.tag || ep.provider === ep.tag ? ep.provider || ep.tag || "(unknown)" : `${ep.provider} (${ep.tag})`,
        data: ep[metric],
        borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length],
        pointRadius: 2,
        borderWidth: 2,
        spanGaps: false,
      }));
      new window.Chart(canvas, {
        type: "line",
        data: { labels: health.labels, datasets },
        options: {
          animation: false, maintainAspectRatio: false,
          plugins: {
            legend: { position: "bottom", labels: { color: text, boxWidth: 12 } },
            tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.parsed.y.toLocaleString()}${unit}` } },
          },
          scales: {
            x: { ticks: { color: text, maxRotation: 0, autoSkip: true, maxTicksLimit: 6 }, grid: { display: false } },
            y: { ...scale, ticks: { color: text }, grid: { color: grid } },
          },
        },
      });
      const box = document.getElementById(`health-${metric}`);
      box.dataset.points = String(datasets.reduce((n, d) => n + d.data.filter((v) => v !== null).length, 0));
    }
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("themechange", draw);
})();
