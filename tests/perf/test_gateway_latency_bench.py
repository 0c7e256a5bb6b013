"""Benchmark (issue 9): p50/p95/p99 latency and requests per second of the student search page
and of a dashboard at 50 concurrent users, beside a bare Flask endpoint served the same way in
the same run; the gateway's overhead as ratios.

- search: counselors (one class each) on /students?q= (class code, number prefix or a name);
- dashboard: student-affairs officers on 数据看板 `/dashboard` (seven RPCs at once through
  `call_many`: roster's statistics by four dimensions and status-change counts, housing's occupancy
  report, transfer's counts by stage);
  on a gateway without it, the housing statistics page `/housing/reports`;
- bare: `tests.perf.loadgen:bare_app()` (one endpoint, a small JSON) under gunicorn with the
  gateway's worker settings (`-w 1 --threads 8`), hit by the same load generator.

Site and users as in test_load.py (`load_site`, `XUEJI_LOAD_STUDENTS`, default 5,000; PostgreSQL).
Each target: `XUEJI_BENCH_GATEWAY_USERS` (50) users back to back, `XUEJI_LOAD_WARMUP` s (5) of
warm-up, then `XUEJI_BENCH_GATEWAY_SECONDS` (20) measured. Run with `make bench`.
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
import requests

from tests.perf.conftest import (
    GUNICORN_THREADS,
    GUNICORN_WORKERS,
    LOAD_PASSWORD,
    gunicorn,
    officer_accounts,
    run_loadgen,
    staff_accounts,
)

pytestmark = [pytest.mark.perf, pytest.mark.timeout(3600)]

USERS = int(os.environ.get("XUEJI_BENCH_GATEWAY_USERS", "50"))
WARMUP = float(os.environ.get("XUEJI_LOAD_WARMUP", "5"))
SECONDS = float(os.environ.get("XUEJI_BENCH_GATEWAY_SECONDS", "20"))


def dashboard_path(url: str, username: str) -> str:
    """`/dashboard` if this gateway serves it to a student-affairs officer, else `/housing/reports`."""
    with requests.Session() as browser:
        browser.headers["X-Forwarded-For"] = "10.255.0.1"
        assert browser.post(f"{url}/api/v1/session", json={"username": username, "password": LOAD_PASSWORD},
                            timeout=60).status_code == 200
        for path in ("/dashboard", "/housing/reports"):
            response = browser.get(url + path, timeout=60)
            if response.status_code == 200:
                return path
    raise AssertionError("neither /dashboard nor /housing/reports answers a student-affairs officer")


def measure(base: str, users: list[dict[str, Any]]) -> dict[str, Any]:
    level = run_loadgen({"base": base, "levels": [len(users)], "warmup": WARMUP, "duration": SECONDS,
                         "users": users})["levels"][0]
    assert level["requests"] > 0 and level["errors"] <= 0.01 * level["requests"], level
    return level


def test_search_and_dashboard_beside_a_bare_flask_endpoint(load_site: dict[str, Any]) -> None:
    rows, url = load_site["rows"], load_site["url"]
    by_class: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_class.setdefault(row["class_code"], []).append(row)
    rng = random.Random(9)
    counselors = [a for a in staff_accounts(load_site, USERS * 2) if a["role"] == "counselor"][:USERS]
    searchers = []
    for account in counselors:
        klass = account["classes"][0]
        queries = [klass, klass[:8], *(r["name"] for r in rng.sample(by_class[klass], 3))]
        searchers.append({"username": account["username"], "password": account["password"], "weights": {"page": 1},
                          "pages": [f"/students?q={q}" for q in queries]})
    officers = officer_accounts(load_site, USERS)
    dashboard = dashboard_path(url, officers[0]["username"])
    viewers = [{"username": a["username"], "password": a["password"], "weights": {"page": 1}, "pages": [dashboard]}
               for a in officers]

    with gunicorn("tests.perf.loadgen:bare_app()", load_site["env"], load_site["workdir"] / "bare.log",
                  "/ping") as bare_url:
        bare = measure(bare_url, [{"weights": {"page": 1}, "pages": ["/ping"]} for _ in range(USERS)])
    search = measure(url, searchers)
    board = measure(url, viewers)

    print(f"\ngateway latency at {USERS} concurrent users ({len(rows)} students, PostgreSQL, "
          f"gunicorn -w {GUNICORN_WORKERS} --threads {GUNICORN_THREADS}, {WARMUP:.0f} s warm-up + {SECONDS:.0f} s "
          "each, no think time)")
    print(f"{'target':<28} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
          f" {'p50 ×bare':>10} {'req/s ÷bare':>12}")
    for name, lv in (("bare Flask /ping", bare), ("search /students?q=", search), (f"dashboard {dashboard}", board)):
        print(f"{name:<28} {lv['requests']:>9} {lv['errors']:>7} {lv['rps']:>8.1f} {lv['p50_ms']:>8.1f}"
              f" {lv['p95_ms']:>8.1f} {lv['p99_ms']:>8.1f} {lv['p50_ms'] / bare['p50_ms']:>10.1f}"
              f" {lv['rps'] / bare['rps']:>12.3f}")
    # A page behind RPCs cannot beat one JSON answer from the same server: if it does, something is off.
    assert search["p50_ms"] > bare["p50_ms"] and board["p50_ms"] > bare["p50_ms"]
    assert search["rps"] < bare["rps"] and board["rps"] < bare["rps"]
