"""The real UI in headless Chromium, against real services and the gunicorn gateway."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness import ROOT, Cluster, clearance_body, populate, wait_for

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "Xueji@2026"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def site(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    cluster = make_cluster(fresh_amqp_uri)
    cluster.start()
    rows = populate(cluster, 60)  # classes 2023010101 (50) and 2023010102 (10)
    cluster.rpc("identity", "create_account", "1000004", "王老师", "counselor", "classes",
                ["2023010101"], PASSWORD)
    port = free_port()
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "4",
         "gateway.wsgi:app"], cwd=ROOT, env=cluster.env(),
        stdout=open(tmp_path / "gateway.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{url}/login", timeout=2).status_code == 200, timeout=60,
             what="gateway up")
    yield {"url": url, "cluster": cluster, "rows": rows}
    gateway.terminate()
    gateway.wait(timeout=20)


def browse(url: str, *steps: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the steps in Chromium (see drive.py); returns url, status and text per step."""
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("drive.py"))],
                            input=json.dumps({"base": url, "steps": list(steps)}),
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_counselor_logs_in_sees_own_classes_and_a_students_status_bed_and_account(
        site: dict[str, Any], tmp_path: Path) -> None:
    url = site["url"]
    wrong, home, students, student, _shot, outside = browse(
        url, {"login": ["1000004", "not-the-password"]}, {"login": ["1000004", PASSWORD]},
        {"goto": "/students"}, {"goto": "/students/202301010103"},
        {"screenshot": str(tmp_path / "student.png")}, {"goto": "/students/202301010201"})
    assert "用户名或密码错误" in wrong["text"]
    assert home["url"].rstrip("/") == url and "辅导员" in home["text"]
    assert "共 50 条" in students["text"]  # only the counselor's class, not 2023010102
    assert "202301010201" not in students["text"]
    assert "在读" in student["text"] and "B1号楼" in student["text"]
    assert "********" in student["text"]  # ID number masked for a counselor
    assert "初始密码未修改" in student["text"] or "正常" in student["text"]
    assert (tmp_path / "student.png").stat().st_size > 10_000
    # a student outside the scope is refused by the service: a Chinese error page
    assert outside["status"] == 403 and "无权" in outside["text"]


def test_graduation_shows_in_the_ui(site: dict[str, Any]) -> None:
    url, cluster = site["url"], site["cluster"]
    cluster.publish_clearance([clearance_body("202301010104")])
    wait_for(lambda: cluster.rpc("housing", "occupancy", "202301010104")["bed"] is None
             and not cluster.rpc("identity", "get_account", "202301010104")["active"],
             what="bed released and account deactivated")
    _, student = browse(url, {"login": ["1000004", PASSWORD]}, {"goto": "/students/202301010104"})
    assert "毕业" in student["text"] and "停用" in student["text"]
    assert "B1号楼" not in student["text"]
