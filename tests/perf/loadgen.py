"""Closed-loop HTTP load generator for the gateway benchmarks (and the bare Flask baseline).

Runs in its own interpreter, outside the test session's eventlet monkey patching (which
would turn these threads into green threads of one hub). One thread per virtual user,
each with its own `requests.Session`: it logs in once (session cookie + CSRF cookie, as
the browser does), then loops over its weighted workload until the level's time is up.
Think time between requests is `think` seconds (0: back to back).

Input (JSON on stdin):
  {"base": URL, "levels": [50, 100, 200], "then": [300, 400], "below": [25, 10, 5], "stop_above_ms": 500,
   "warmup": 5, "duration": 25, "think": 0, "login_threads": 8,
   "users": [{"username", "password", "weights": {"search": 5, "view": 4, "edit": 1, "import": 0, "page": 0},
              "queries": [...], "students": [...], "imports": [base64, ...], "pages": [...]}, ...]}
`levels` always run; each of `then` runs while the p95 of the previous level is still under
`stop_above_ms`; each of `below` (descending) runs while no level so far was under it. A level
of n users uses the first n entries of `users` (a user without `username` never logs in: the
bare baseline). Requests count when they complete within the
level's window, after the warm-up.

A page that came with a part missing (`degraded_markers`, default "暂时无法显示") is an error
(status 1 in `error_samples`), as is a refused import or a transport failure (status 0).

Output (JSON on stdout): {"login_seconds", "levels": [{"users", "requests", "errors", "rps",
"p50_ms", "p95_ms", "p99_ms", "by_op": {op: {...}}, "error_samples": [...]}, ...]}

`bare_app()` is the baseline: a Flask app with one endpoint returning a small JSON, served
by gunicorn with the gateway's settings: `gunicorn 'tests.perf.loadgen:bare_app()'`.
"""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

OPS = ("search", "view", "edit", "import", "page")
CSRF_COOKIE = "xueji_csrf"
# Pages degrade instead of failing when a service does not answer in time (web.py `_part`, the
# dashboard's `missing`): such a page counts as an error, with this status.
DEGRADED_MARKERS = ("暂时无法显示",)
DEGRADED = 1


def bare_app() -> Any:
    from flask import Flask, jsonify

    app = Flask("bare")

    @app.get("/ping")
    def ping() -> Any:
        return jsonify({"ok": True, "service": "bare"})

    return app


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (values sorted)."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


class VirtualUser:
    def __init__(self, base: str, spec: dict[str, Any], index: int, degraded: tuple[str, ...] = ()) -> None:
        self.base = base
        self.degraded = degraded
        self.spec = spec
        self.session = requests.Session()
        # Each user is its own client behind the proxy (XUEJI_PROXY_COUNT=1): the gateway's per-address
        # login limit then counts users as in production, not the one load-generating host.
        self.session.headers["X-Forwarded-For"] = spec.get("client") or f"10.0.{index // 250}.{index % 250 + 1}"
        self.rng = random.Random(index)
        self.imports_sent = index  # alternates the user's import variants
        weights = spec.get("weights") or {"page": 1}
        self.ops = [op for op in OPS if weights.get(op)]
        self.weights = [weights[op] for op in self.ops]

    def login(self) -> None:
        if not self.spec.get("username"):
            return
        response = self.session.post(f"{self.base}/api/v1/session", timeout=120,
                                     json={"username": self.spec["username"], "password": self.spec["password"]})
        if response.status_code != 200:
            raise RuntimeError(f"login of {self.spec['username']} failed: {response.status_code} {response.text[:200]}")

    def _csrf(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.session.cookies.get(CSRF_COOKIE, "")}

    def request(self, op: str) -> requests.Response:
        spec, rng = self.spec, self.rng
        if op == "search":
            return self.session.get(f"{self.base}/students", params={"q": rng.choice(spec["queries"])}, timeout=60)
        if op == "view":
            return self.session.get(f"{self.base}/students/{rng.choice(spec['students'])}", timeout=60)
        if op == "edit":
            phone = f"139{rng.randrange(10 ** 8):08d}"
            return self.session.patch(f"{self.base}/api/v1/roster/students/{rng.choice(spec['students'])}",
                                      json={"values": {"phone": phone}}, headers=self._csrf(), timeout=60)
        if op == "import":
            content = spec["imports"][self.imports_sent % len(spec["imports"])]
            self.imports_sent += 1
            return self.session.post(f"{self.base}/api/v1/roster/import", headers=self._csrf(), timeout=120,
                                     json={"content": content, "update_existing": True})
        return self.session.get(f"{self.base}{rng.choice(spec['pages'])}", timeout=60)

    def run(self, until: float, think: float, samples: list[tuple[float, float, str, int]]) -> None:
        """Append (start, seconds, op, status) per request; status 0 for a transport error, 1 for a
        degraded page."""
        while True:
            start = time.monotonic()
            if start >= until:
                return
            op = self.rng.choices(self.ops, self.weights)[0]
            try:
                response = self.request(op)
                status = response.status_code
                if op == "import" and status == 200 and not response.json().get("written"):
                    status = 422  # a refused import is an error of the workload, not a success
                elif status == 200 and op in ("search", "view", "page") and any(
                        marker in response.text for marker in self.degraded):
                    status = DEGRADED  # the page came, but a service's part of it did not answer
            except requests.RequestException:
                status = 0
            samples.append((start, time.monotonic() - start, op, status))
            if think:
                time.sleep(think)


def summary(samples: list[tuple[float, float, str, int]], seconds: float) -> dict[str, Any]:
    latencies = sorted(s[1] * 1000 for s in samples)
    errors = [s for s in samples if not 200 <= s[3] < 300]
    return {"requests": len(samples), "errors": len(errors), "rps": round(len(samples) / seconds, 1),
            "p50_ms": round(percentile(latencies, 50), 1), "p95_ms": round(percentile(latencies, 95), 1),
            "p99_ms": round(percentile(latencies, 99), 1)}


def run_level(vus: list[VirtualUser], warmup: float, duration: float, think: float) -> dict[str, Any]:
    per_user: list[list[tuple[float, float, str, int]]] = [[] for _ in vus]
    begin = time.monotonic()
    window = (begin + warmup, begin + warmup + duration)
    threads = [threading.Thread(target=vu.run, args=(window[1], think, per_user[i]), daemon=True)
               for i, vu in enumerate(vus)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Counted by completion inside the window: under saturation a request may have started in the
    # warm-up, and requiring both ends inside would drop the slowest ones and understate throughput.
    counted = [s for user in per_user for s in user if window[0] <= s[0] + s[1] <= window[1]]
    level = {"users": len(vus), **summary(counted, duration), "by_op": {}}
    for op in OPS:
        mine = [s for s in counted if s[2] == op]
        if mine:
            level["by_op"][op] = summary(mine, duration)
    level["error_samples"] = sorted({f"{s[2]}:{s[3]}" for s in counted if not 200 <= s[3] < 300})[:10]
    return level


def main(config: dict[str, Any]) -> dict[str, Any]:
    levels, then = list(config["levels"]), list(config.get("then", []))
    biggest = max(levels + then)
    specs = config["users"]
    if len(specs) < biggest:
        raise SystemExit(f"{biggest} virtual users need as many user specs, got {len(specs)}")
    degraded = tuple(config.get("degraded_markers", DEGRADED_MARKERS))
    vus = [VirtualUser(config["base"], specs[i], i, degraded) for i in range(biggest)]
    started = time.monotonic()
    with ThreadPoolExecutor(config.get("login_threads", 8)) as pool:
        list(pool.map(VirtualUser.login, vus))
    login_seconds = time.monotonic() - started
    warmup, duration, think = float(config["warmup"]), float(config["duration"]), float(config.get("think", 0))
    results = []
    for n in levels:
        results.append(run_level(vus[:n], warmup, duration, think))
    limit = config.get("stop_above_ms", 500)
    for n in then:
        if results[-1]["p95_ms"] > limit:
            break
        results.append(run_level(vus[:n], warmup, duration, think))
    # Already over the limit at the first level: look below it for where the limit is crossed.
    for n in config.get("below", []):
        if min(r["p95_ms"] for r in results) <= limit or n >= min(r["users"] for r in results):
            break
        results.append(run_level(vus[:n], warmup, duration, think))
    return {"login_seconds": round(login_seconds, 1), "levels": results}


if __name__ == "__main__":
    json.dump(main(json.load(sys.stdin)), sys.stdout)
