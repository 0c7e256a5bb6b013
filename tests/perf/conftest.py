"""Benchmarks run only with `make bench` (pytest -m perf)."""

# --- the gateway under load (test_load.py, test_gateway_latency_bench.py) -----------------------
# One populated site per session, shared by both load benchmarks: PostgreSQL for every service,
# the services as `nameko run` processes on their own vhost, the gateway under gunicorn with the
# Procfile's settings, `XUEJI_LOAD_STUDENTS` students imported through roster's real import.

import base64  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402

LOAD_STUDENTS = int(os.environ.get("XUEJI_LOAD_STUDENTS", "5000"))
LOAD_PASSWORD = "Xueji@2026-load"
# Same worker model as deploy/Procfile (`-w 1 --threads 8`); tunable to measure alternatives.
GUNICORN_WORKERS = os.environ.get("XUEJI_LOAD_GUNICORN_WORKERS", "1")
GUNICORN_THREADS = os.environ.get("XUEJI_LOAD_GUNICORN_THREADS", "8")
LOADGEN = Path(__file__).with_name("loadgen.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(app: str, env: dict[str, str], log: Path, probe: str) -> Iterator[str]:
    """`app` served by gunicorn (the Procfile's worker settings) on a free port; yields its URL."""
    from tests.harness import ROOT, wait_for

    port = _free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", GUNICORN_WORKERS,
             "--threads", GUNICORN_THREADS, app], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(url + probe, timeout=2).status_code < 500, timeout=60, what=f"{app} up")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_loadgen(config: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
    """tests/perf/loadgen.py in its own interpreter (no eventlet patching); its JSON answer."""
    from tests.harness import ROOT

    result = subprocess.run([sys.executable, str(LOADGEN)], input=json.dumps(config), capture_output=True,
                            text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def import_workbook(rows: list[dict[str, Any]]) -> str:
    """An import workbook in the template's layout (base64), as an operator would fill it in."""
    from openpyxl import Workbook

    from services.roster import importing
    from services.roster.domain.codes import CodeBook

    cols = importing.columns(CodeBook.standard())
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("学生信息")
    ws.append([c.header for c in cols])
    for row in rows:
        ws.append([row.get(c.key) for c in cols])
    buffer = io.BytesIO()
    wb.save(buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _populate(cluster: Any, count: int) -> list[dict[str, Any]]:
    """`count` full records through roster's import (events reach every consumer), a bed for each."""
    from tests.harness import wait_for
    from tests.perf.test_roster_import_bench import generated_rows, org_units

    rows = generated_rows(count)
    cluster.rpc("roster", "upsert_org_units", org_units(), timeout=300)
    for i in range(0, count, 2500):
        content = import_workbook(rows[i:i + 2500])
        result = cluster.rpc("roster", "import_students", content, False, False, timeout=600)
        assert result["ok"] and result["imported"] == len(rows[i:i + 2500]), result["errors"][:3]
    per_gender = count // 2 + 100
    beds = [{"building_code": f"{g}{n // 1000}", "building_name": f"{g}{n // 1000}号楼", "gender_policy": g,
             "room_no": str(100 + (n % 1000) // 4), "capacity": 4, "bed_no": str(n % 4 + 1)}
            for g in ("M", "F") for n in range(per_gender)]
    for i in range(0, len(beds), 2000):
        cluster.rpc("housing", "create_beds", beds[i:i + 2000], timeout=300)
    wait_for(lambda: cluster.rpc("housing", "health", timeout=30)["students_known"] >= count, timeout=600,
             what="housing knows every student")
    placed = cluster.rpc("housing", "allocate_intake", {"entry_year": "2026"}, True, timeout=600)
    assert placed["placed"] == count, placed["unplaced"][:3]
    wait_for(lambda: cluster.rpc("identity", "health")["accounts"] >= count, timeout=600,
             what="identity has every student's account")
    return rows


@pytest.fixture(scope="session")
def load_site(pg_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A populated site behind gunicorn: {"url", "cluster", "rows", "env", "workdir", "seconds"}."""
    import time

    from conftest import make_vhost
    from services.catalog import SERVICES
    from tests.harness import Cluster

    workdir = tmp_path_factory.mktemp("load")
    amqp_uri, drop_vhost = make_vhost()
    cluster = Cluster(amqp_uri, {name: pg_database(name) for name in SERVICES}, workdir).prepare()
    try:
        started = time.perf_counter()
        cluster.start()
        rows = _populate(cluster, LOAD_STUDENTS)
        env = {**cluster.env(), "XUEJI_ENV": "production", "XUEJI_SECRET_KEY": "load-" + "k" * 40,
               # Plain HTTP on loopback (TLS ends at the proxy in production); the load generator plays
               # that proxy, giving each user its own X-Forwarded-For address.
               "XUEJI_COOKIE_SECURE": "0", "XUEJI_PROXY_COUNT": "1"}
        with gunicorn("gateway.wsgi:app", env, workdir / "gateway.log", "/login") as url:
            yield {"url": url, "cluster": cluster, "rows": rows, "env": env, "workdir": workdir,
                   "seconds": time.perf_counter() - started}
    finally:
        cluster.close()
        drop_vhost()


def staff_accounts(site: dict[str, Any], count: int, *, every: int = 5) -> list[dict[str, Any]]:
    """`count` staff accounts (made once per site): every `every`-th one student affairs (institution
    scope), the others counselors of one class each. Returns [{"username", "role", "classes"}]."""
    made: list[dict[str, Any]] = site.setdefault("accounts", [])
    classes = sorted({r["class_code"] for r in site["rows"]})
    for i in range(len(made), count):
        username = f"9{i:06d}"
        if i % every == every - 1:
            role, kind, ids = "student_affairs", "institution", []
        else:
            role, kind, ids = "counselor", "classes", [classes[i % len(classes)]]
        site["cluster"].rpc("identity", "create_account", username, f"压测{i:03d}", role, kind, ids, LOAD_PASSWORD,
                            timeout=300)
        made.append({"username": username, "password": LOAD_PASSWORD, "role": role, "classes": ids})
    return made[:count]


def officer_accounts(site: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """`count` student-affairs accounts (institution scope), made once per site."""
    made: list[dict[str, Any]] = site.setdefault("officers", [])
    for i in range(len(made), count):
        username = f"8{i:06d}"
        site["cluster"].rpc("identity", "create_account", username, f"学工{i:03d}", "student_affairs", "institution",
                            [], LOAD_PASSWORD, timeout=300)
        made.append({"username": username, "password": LOAD_PASSWORD, "role": "student_affairs", "classes": []})
    return made[:count]
