// 住宿统计: a stacked bar chart of occupied and free beds per building (ECharts).
(function () {
  "use strict";

  function draw(box, report) {
    box.style.height = "360px";
    var chart = window.echarts.init(box);
    var names = report.buildings.map(function (b) { return b.name; });
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { data: ["已入住", "空床位"] },
      xAxis: { type: "category", data: names },
      yAxis: { type: "value", name: "床位" },
      series: [
        { name: "已入住", type: "bar", stack: "beds", data: report.buildings.map(function (b) { return b.occupied; }) },
        { name: "空床位", type: "bar", stack: "beds", data: report.buildings.map(function (b) { return b.free; }) }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
    box.setAttribute("data-drawn", "1");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("occupancy-chart");
    if (!box) { return; }
    if (!window.echarts) {
      box.textContent = "图表组件未加载（请运行 make assets）";
      return;
    }
    fetch(box.getAttribute("data-source"), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (report) { draw(box, report); })
      .catch(function () { box.textContent = "统计数据加载失败"; });
  });
})();
