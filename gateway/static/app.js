// Confirmations (系统提示 dialog) and the page-size selector; pages work without it.
(function () {
  "use strict";

  function confirmThen(message, proceed) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(message)) { proceed(); }
      return;
    }
    dialog.querySelector(".dialog-message").textContent = message;
    dialog.returnValue = "";
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue === "ok") { proceed(); }
    });
    dialog.showModal();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute("data-confirm");
    if (!message) { return; }
    event.preventDefault();
    var button = event.submitter;
    confirmThen(message, function () {
      // form.submit() leaves out the clicked button: carry its name and value (同意 / 退回 …) along.
      if (button && button.name) {
        var carried = document.createElement("input");
        carried.type = "hidden";
        carried.name = button.name;
        carried.value = button.value;
        form.appendChild(carried);
      }
      form.submit();
    });
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.hasAttribute || !select.hasAttribute("data-autosubmit")) { return; }
    var jump = select.form.querySelector("input[name=page]");
    if (jump) { jump.value = "1"; }
    select.form.submit();
  });
})();
