"""Upload progress (issues 4 and 9): an import form marked `data-progress` goes by XMLHttpRequest
(static/app.js), shows a <progress> bar while the file uploads, then 正在校验… until the server
answers; the answer replaces the page. Real Chromium, gunicorn gateway and services."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import pytest
import requests

from gateway.security import FORM_FIELD
from tests.browser.test_web_ui import PASSWORD, browse, free_port
from tests.harness import ROOT, Cluster, wait_for

pytestmark = pytest.mark.browser
REGISTRAR = "1000009"

# Notes every state of the progress box and what the form sent, in sessionStorage: the answer
# replaces the document, the storage stays.
WATCH = """(() => {
  sessionStorage.setItem("seen", "[]");
  sessionStorage.setItem("sent", "[]");
  const note = () => {
    const box = document.querySelector(".upload-progress");
    if (!box) { return; }
    const bar = box.querySelector("progress");
    const seen = JSON.parse(sessionStorage.getItem("seen"));
    seen.push({text: box.textContent.trim(), value: bar.hasAttribute("value") ? bar.value : null});
    sessionStorage.setItem("seen", JSON.stringify(seen));
  };
  new MutationObserver(note).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (data) {
    sessionStorage.setItem("sent", JSON.stringify(Array.from(data.keys())));
    return send.call(this, data);
  };
  return document.querySelectorAll("form[data-progress]").length;
})()"""


@pytest.fixture
def site(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str, tmp_path: Path) -> Iterator[str]:
    cluster = make_cluster(fresh_amqp_uri)
    cluster.start()
    cluster.rpc("identity", "create_account", REGISTRAR, "学生处 李老师", "student_affairs", "institution", [],
                PASSWORD)
    template = base64.b64decode(cluster.rpc("roster", "import_template")["content"])
    book = openpyxl.load_workbook(io.BytesIO(template))
    sheet = book.worksheets[0]
    for row in range(2, 402):  # a sheet of bad rows: every one refused, nothing imported
        sheet.cell(row=row, column=1, value=f"X{row}")
    book.save(tmp_path / "students.xlsx")
    port = free_port()
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "4",
         "gateway.wsgi:app"], cwd=ROOT, env=cluster.env(),
        stdout=open(tmp_path / "gateway.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{url}/login", timeout=2).status_code == 200, timeout=60, what="gateway up")
    yield url
    gateway.terminate()
    gateway.wait(timeout=20)


def test_import_shows_upload_progress_then_checking_then_the_answer(site: str, tmp_path: Path) -> None:
    _login, page, watched, _upload, _click, answer, seen, sent, address = browse(
        site, {"login": [REGISTRAR, PASSWORD]}, {"goto": "/roster/import"}, {"evaluate": WATCH},
        {"upload": ["form[data-progress] input[type=file]", str(tmp_path / "students.xlsx")]},
        {"click": "form[data-progress] button[type=submit]"},
        {"wait_text": "未导入任何数据", "timeout": 60},
        {"evaluate": "sessionStorage.getItem('seen')"}, {"evaluate": "sessionStorage.getItem('sent')"},
        {"evaluate": "window.location.pathname"})
    assert page["status"] == 200 and watched["value"] == 1
    states = json.loads(seen["value"])
    texts = [s["text"] for s in states]
    assert texts[0].startswith("正在上传") and states[0]["value"] == 0, states
    checking = [s for s in states if s["text"] == "正在校验…"]
    assert checking and checking[0]["value"] is None, states  # an indeterminate bar while the server checks
    assert texts.index("正在校验…") > 0
    assert FORM_FIELD in json.loads(sent["value"]) and "file" in json.loads(sent["value"])  # CSRF field sent as-is
    # the server's page replaced the form's: the outcome of the check, at the same address
    assert "发现" in answer["text"] and "处错误" in answer["text"]
    assert address["value"] == "/roster/import"
