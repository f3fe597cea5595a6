// Draws what the server rendered: each chart's option is JSON beside its element (no inline script, so the
// page's Content-Security-Policy allows scripts from this server only).
(function () {
  document.querySelectorAll("script.chart-option").forEach(function (holder) {
    var element = holder.previousElementSibling;
    if (!element || typeof echarts === "undefined") return;
    var chart = echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(JSON.parse(holder.textContent));
    window.addEventListener("resize", function () { chart.resize(); });
  });
  if (typeof mermaid !== "undefined") {
    mermaid.initialize({ startOnLoad: false, securityLevel: "strict", flowchart: { htmlLabels: false } });
    mermaid.run({ querySelector: "pre.mermaid" }).then(function () {
      document.body.setAttribute("data-diagrams", "drawn");
    });
  }
  document.body.setAttribute("data-charts", "drawn");
})();
