"""Drives headless Chromium through a list of steps and prints what each page showed (JSON).

Runs in its own interpreter: Playwright's sync API does not work under eventlet's monkey
patching, which the test session applies. Usage (JSON on stdin):
  {"steps": [{"login": ["user", "password"]}, {"goto": "/students"}, {"screenshot": "a.png"}]}
Output: [{"url", "status", "text"}, ...] — one entry per step.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def run(base: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
        for step in steps:
            status = None
            if "login" in step:
                username, password = step["login"]
                page.goto(f"{base}/login")
                page.fill("input[name=username]", username)
                page.fill("input[name=password]", password)
                with page.expect_navigation():
                    page.click("button[type=submit]")
            elif "goto" in step:
                response = page.goto(f"{base}{step['goto']}")
                status = response.status if response else None
            elif "screenshot" in step:
                page.screenshot(path=step["screenshot"], full_page=True)
            seen.append({"url": page.url, "status": status, "text": page.inner_text("body")})
        browser.close()
    return seen


if __name__ == "__main__":
    request = json.load(sys.stdin)
    json.dump(run(request["base"], request["steps"]), sys.stdout, ensure_ascii=False)
