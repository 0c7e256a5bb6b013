// 数据看板: draws each area's charts (ECharts) from the page's JSON block; clicking a bar or a
// slice opens the list behind it (every data item carries the `link` the server built).
(function () {
  "use strict";

  function follow(params) {
    var link = params && params.data && params.data.link;
    if (link) { window.location.assign(link); }
  }

  function bars(names, series, yName) {
    return {
      tooltip: { trigger: "axis" },
      legend: series.length > 1 ? { type: "scroll" } : undefined,
      grid: { containLabel: true, left: 8, right: 8, bottom: 8 },
      xAxis: { type: "category", data: names, axisLabel: { interval: 0, rotate: names.length > 8 ? 30 : 0 } },
      yAxis: { type: "value", name: yName, minInterval: 1 },
      series: series
    };
  }

  function bar(rows, label, value, yName) {
    return bars(rows.map(label), [{
      type: "bar", name: yName,
      data: rows.map(function (r) { return { value: value(r), link: r.link }; })
    }], yName);
  }

  function pie(rows, label, value) {
    return {
      tooltip: { trigger: "item", formatter: "{b}：{c}（{d}%）" },
      legend: { type: "scroll", bottom: 0 },
      series: [{
        type: "pie", radius: ["35%", "65%"],
        data: rows.map(function (r) { return { name: label(r), value: value(r), link: r.link }; })
      }]
    };
  }

  function statusChanges(area) {
    // One stacked series per kind, one bar per month; a missing (month, kind) is an empty cell.
    var series = area.kinds.map(function (k) {
      var cells = {};
      area.rows.forEach(function (r) { if (r.kind === k.kind) { cells[r.month] = r; } });
      return {
        type: "bar", stack: "changes", name: k.label,
        data: area.months.map(function (m) {
          var r = cells[m];
          return r ? { value: r.count, link: r.link } : { value: 0 };
        })
      };
    });
    return bars(area.months, series, "条");
  }

  function occupancyBuildings(area) {
    var names = area.buildings.map(function (b) { return b.name; });
    return bars(names, [
      { type: "bar", stack: "beds", name: "已入住",
        data: area.buildings.map(function (b) { return { value: b.occupied, link: b.link }; }) },
      { type: "bar", stack: "beds", name: "空床位",
        data: area.buildings.map(function (b) { return { value: b.free }; }) }
    ], "床位");
  }

  function transfers(area) {
    var states = [];
    area.rows.forEach(function (r) { if (states.indexOf(r.state_label) < 0) { states.push(r.state_label); } });
    var directions = {};
    area.rows.forEach(function (r) { (directions[r.direction_label] = directions[r.direction_label] || {})[r.state_label] = r; });
    var series = Object.keys(directions).map(function (d) {
      return {
        type: "bar", name: d,
        data: states.map(function (s) {
          var r = directions[d][s];
          return r ? { value: r.count, link: r.link } : { value: 0 };
        })
      };
    });
    return bars(states, series, "件");
  }

  var BUILDERS = {
    "enrolment.college": function (a) { return bar(a.by.college.rows, function (r) { return r.label; }, function (r) { return r.count; }, "人"); },
    "enrolment.grade": function (a) { return bar(a.by.grade.rows, function (r) { return r.label; }, function (r) { return r.count; }, "人"); },
    "enrolment.gender": function (a) { return pie(a.by.gender.rows, function (r) { return r.label; }, function (r) { return r.count; }); },
    "enrolment.ethnicity": function (a) { return bar(a.by.ethnicity.rows, function (r) { return r.label; }, function (r) { return r.count; }, "人"); },
    "status_changes": statusChanges,
    "occupancy.buildings": occupancyBuildings,
    "occupancy.colleges": function (a) { return bar(a.colleges, function (r) { return r.college_code; }, function (r) { return r.residents; }, "人"); },
    "aid.by_programme": function (a) { return bar(a.by_programme, function (r) { return r.programme_name; }, function (r) { return r.count; }, "人"); },
    "aid.by_level": function (a) { return pie(a.by_level, function (r) { return r.level; }, function (r) { return r.count; }); },
    "transfers": transfers
  };

  document.addEventListener("DOMContentLoaded", function () {
    var block = document.getElementById("dashboard-data");
    if (!block) { return; }
    var data = JSON.parse(block.textContent);
    var boxes = document.querySelectorAll("[data-chart]");
    var charts = [];
    Array.prototype.forEach.call(boxes, function (box) {
      var name = box.getAttribute("data-chart");
      var area = data.areas[name.split(".")[0]];
      if (!area || !BUILDERS[name]) { return; }
      if (!window.echarts) {
        box.textContent = "图表组件未加载（请运行 make assets），请展开下方数据表查看。";
        return;
      }
      box.style.height = "320px";
      var chart = window.echarts.init(box);
      chart.setOption(BUILDERS[name](area));
      chart.on("click", follow);
      charts.push(chart);
      box.setAttribute("data-drawn", "1");
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  });
})();
