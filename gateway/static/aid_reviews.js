// 批量审核: the "select all" box ticks every application on this page; the page works without it.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.hasAttribute || !box.hasAttribute("data-select-all")) { return; }
    var boxes = document.querySelectorAll("input[type=checkbox][name=" + box.getAttribute("data-select-all") + "]");
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = box.checked; }
  });
})();
