// Confirmations (系统提示 dialog), upload progress (forms marked data-progress) and the page-size
// selector; pages work without it.
(function () {
  "use strict";

  // The clicked button's name/value: neither form.submit() nor FormData(form) carries it alone.
  function carryButton(form, button) {
    if (!button || !button.name) { return null; }
    var carried = document.createElement("input");
    carried.type = "hidden";
    carried.name = button.name;
    carried.value = button.value;
    form.appendChild(carried);
    return carried;
  }

  function progressBox(form) {
    var box = form.querySelector(".upload-progress");
    if (!box) {
      box = document.createElement("div");
      box.className = "upload-progress";
      box.setAttribute("role", "status");
      box.innerHTML = '<progress max="100" value="0"></progress> <span class="upload-progress-text"></span>';
      form.appendChild(box);
    }
    return box;
  }

  function showProgress(box, percent, message) {
    var bar = box.querySelector("progress");
    if (percent === null) { bar.removeAttribute("value"); } else { bar.value = percent; }
    box.querySelector(".upload-progress-text").textContent = message;
  }

  function saveBlob(blob, disposition) {
    var match = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(disposition || "");
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = match ? decodeURIComponent(match[1] || match[2]) : "download";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
  }

  // Long imports: send the form by XMLHttpRequest so the page can show the upload (<progress>) and
  // then "正在校验…" until the server answers; the answer then replaces the page, as a normal submit
  // would (a redirect is followed; a workbook is saved). The CSRF field goes along as a form field.
  function sendWithProgress(form, button) {
    var carried = carryButton(form, button);
    var data = new FormData(form);
    if (carried) { carried.remove(); }  // a retry after a failure must not send it twice
    var buttons = form.querySelectorAll("button, input[type=submit]");
    var box = progressBox(form);
    var xhr = new XMLHttpRequest();
    // getAttribute: a control named "action" (预览 / 确认) would shadow form.action.
    var action = new URL(form.getAttribute("action") || window.location.href, window.location.href).href;
    var done = false;
    function settle(message) {
      done = true;
      buttons.forEach(function (b) { b.disabled = false; });
      box.classList.add("upload-failed");
      showProgress(box, 0, message);
    }
    buttons.forEach(function (b) { b.disabled = true; });
    box.classList.remove("upload-failed");
    showProgress(box, 0, "正在上传… 0%");
    xhr.open((form.getAttribute("method") || "get").toUpperCase(), action);
    xhr.responseType = "blob";
    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable || done) { return; }
      var percent = Math.round(event.loaded / event.total * 100);
      showProgress(box, percent, "正在上传… " + percent + "%");
    });
    xhr.upload.addEventListener("load", function () {
      if (!done) { showProgress(box, null, "正在校验…"); }
    });
    xhr.addEventListener("load", function () {
      var type = xhr.getResponseHeader("Content-Type") || "";
      var disposition = xhr.getResponseHeader("Content-Disposition") || "";
      if (/attachment/i.test(disposition) || type.indexOf("text/html") < 0) {
        saveBlob(xhr.response, disposition);
        settle("已下载处理结果");
        box.classList.remove("upload-failed");
        return;
      }
      done = true;
      var target = xhr.responseURL || action;
      xhr.response.text().then(function (html) {
        // Redirected: the page already fetched (a second GET would lose its one-time message), at its address.
        if (target !== action) { window.history.replaceState(null, "", target); }
        document.open();
        document.write(html);
        document.close();
      });
    });
    xhr.addEventListener("error", function () { settle("上传失败，请检查网络后重试"); });
    xhr.addEventListener("abort", function () { settle("上传已取消"); });
    xhr.send(data);
  }

  function submitForm(form, button) {
    if (form.hasAttribute("data-progress") && window.FormData && window.XMLHttpRequest) {
      sendWithProgress(form, button);
      return;
    }
    carryButton(form, button);
    form.submit();
  }

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
    var button = event.submitter;
    // A button may carry its own confirmation (报送 beside 校验并导出 in one form).
    var message = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (!message) {
      if (form.hasAttribute("data-progress")) {
        event.preventDefault();
        submitForm(form, button);
      }
      return;
    }
    event.preventDefault();
    // Carries the clicked button's name and value (同意 / 退回 …) along.
    confirmThen(message, function () { submitForm(form, button); });
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.hasAttribute || !select.hasAttribute("data-autosubmit")) { return; }
    var jump = select.form.querySelector("input[name=page]");
    if (jump) { jump.value = "1"; }
    select.form.submit();
  });
})();
