// 资助报表: amounts by programme and by college, needy students by level (ECharts).
(function () {
  "use strict";

  function draw(box, s) {
    box.style.height = "360px";
    var chart = window.echarts.init(box);
    chart.setOption({
      tooltip: { trigger: "item" },
      legend: { top: 0 },
      grid: [{ left: "5%", width: "40%", top: 40 }],
      xAxis: [{ type: "category", gridIndex: 0, data: s.by_programme.map(function (p) { return p.programme_name; }) }],
      yAxis: [{ type: "value", gridIndex: 0, name: "金额（元）" }],
      series: [
        { name: "按项目金额", type: "bar", data: s.by_programme.map(function (p) { return p.amount; }) },
        { name: "按学院金额", type: "pie", radius: "28%", center: ["65%", "55%"],
          data: s.by_college.map(function (c) { return { name: c.college_code, value: c.amount }; }) },
        { name: "按认定级别人数", type: "pie", radius: "28%", center: ["88%", "55%"],
          data: s.by_level.map(function (l) { return { name: l.level, value: l.count }; }) }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
    box.setAttribute("data-drawn", "1");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("aid-chart");
    if (!box) { return; }
    if (!window.echarts) {
      box.textContent = "图表组件未加载（请运行 make assets）";
      return;
    }
    fetch(box.getAttribute("data-source"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) { if (!s.error) { draw(box, s); } });
  });
})();
