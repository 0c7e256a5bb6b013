"""Drives headless Chromium through a list of steps and prints what each page showed (JSON).

Runs in its own interpreter: Playwright's sync API does not work under eventlet's monkey
patching, which the test session applies. Usage (JSON on stdin):
  {"base": "http://…", "steps": [{"login": ["user", "password"]}, {"goto": "/students"},
                                 {"screenshot": "a.png"}]}
Steps (one action each; a step may add "timeout" in seconds):
  login [user, password]      goto path                 screenshot path (full page)
  fill [selector, value]      select [selector, value]  check selector
  upload [selector, path]     click selector            click + "navigate": true waits for the next page
                              (or for the answer an upload form's XMLHttpRequest writes over this one)
  confirm selector            click a submit button of a `data-confirm` form, then 确定 in the 系统提示
                              dialog (static/app.js) and wait for the next page; "value" is the message
  download [selector, path]   click a link, save what it downloads; "value" is the suggested file name
  wait_text text              until the page shows it; + "reload": true reloads until then (events settle)
  wait selector               until it is in the page (e.g. a chart marked drawn)
  evaluate expression         JavaScript in the page; its result is the step's "value"
Output: [{"url", "status", "text", "value"?}, ...] — one entry per step; a step that fails ends
the run with {"error", "step", "url", "text"} as the last entry (exit status 1).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# The middle of a bar, in page coordinates, from the chart's own axis conversion.
CHART_POINT = """([selector, series, index]) => {
  const box = document.querySelector(selector);
  box.scrollIntoView();
  const chart = window.echarts.getInstanceByDom(box);
  const item = chart.getOption().series[series].data[index];
  const value = typeof item === "object" ? item.value : item;
  const [x, y] = chart.convertToPixel({seriesIndex: series}, [index, value / 2]);
  const rect = box.getBoundingClientRect();
  return {x: rect.left + x, y: rect.top + y, value: value};
}"""


def new_page_after(page: Page, act: Callable[[], None], ms: float) -> None:
    """Do `act`, then wait until the document is replaced: a navigation, or the answer an upload form
    sent by XMLHttpRequest writes over the page (static/app.js, forms marked data-progress)."""
    page.evaluate("document.documentElement.setAttribute('data-drive-old', '')")
    act()
    page.wait_for_function("() => document.documentElement && !document.documentElement.hasAttribute('data-drive-old')",
                           timeout=ms)
    page.wait_for_load_state(timeout=ms)


def perform(page: Page, base: str, step: dict[str, Any]) -> dict[str, Any]:
    """Run one step; returns what it adds to the page's record (status, value)."""
    ms = float(step.get("timeout", 30)) * 1000
    if "login" in step:
        username, password = step["login"]
        page.goto(f"{base}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        with page.expect_navigation(timeout=ms):
            page.click("button[type=submit]")
    elif "goto" in step:
        response = page.goto(f"{base}{step['goto']}", timeout=ms)
        return {"status": response.status if response else None}
    elif "screenshot" in step:
        page.screenshot(path=step["screenshot"], full_page=True)
    elif "fill" in step:
        page.fill(*step["fill"], timeout=ms)
    elif "select" in step:
        page.select_option(*step["select"], timeout=ms)
    elif "check" in step:
        page.check(step["check"], timeout=ms)
    elif "upload" in step:
        page.set_input_files(*step["upload"], timeout=ms)
    elif "click" in step:
        if step.get("navigate"):
            new_page_after(page, lambda: page.click(step["click"], timeout=ms), ms)
        else:
            page.click(step["click"], timeout=ms)
    elif "confirm" in step:
        page.click(step["confirm"], timeout=ms)
        dialog = page.locator("#confirm-dialog[open]")
        dialog.wait_for(timeout=ms)
        message = dialog.locator(".dialog-message").inner_text()
        new_page_after(page, dialog.locator("button[value=ok]").click, ms)
        return {"value": message}
    elif "download" in step:
        selector, path = step["download"]
        with page.expect_download(timeout=ms) as info:
            page.click(selector, timeout=ms)
        info.value.save_as(path)
        return {"value": info.value.suggested_filename}
    elif "wait_text" in step:
        deadline = time.monotonic() + ms / 1000
        while step["wait_text"] not in page.inner_text("body"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never showed {step['wait_text']!r}")
            time.sleep(0.5)
            if step.get("reload"):
                page.reload()
    elif "wait" in step:
        page.wait_for_selector(step["wait"], timeout=ms)
    elif "click_chart" in step:
        # A real mouse click on one bar of an ECharts bar chart: [selector, series index, data index].
        # Returns the bar's value so the test can compare it with the list the click opens.
        page.wait_for_timeout(1200)  # ECharts grows the bars for 1 s; an earlier click can miss them
        where = page.evaluate(CHART_POINT, step["click_chart"])
        new_page_after(page, lambda: page.mouse.click(where["x"], where["y"]), ms)
        return {"value": where["value"]}
    elif "evaluate" in step:
        return {"value": page.evaluate(step["evaluate"])}
    else:
        raise ValueError(f"unknown step {step!r}")
    return {}


def run(base: str, steps: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    seen: list[dict[str, Any]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN",
                                accept_downloads=True)
        page.on("dialog", lambda d: d.accept())  # window.confirm where <dialog> is missing
        for index, step in enumerate(steps):
            try:
                added = perform(page, base, step)
            except Exception as exc:  # noqa: BLE001 - reported to the test with the page it was on
                seen.append({"error": f"{type(exc).__name__}: {exc}", "step": index, "url": page.url,
                             "text": page.inner_text("body") if page.url.startswith("http") else ""})
                browser.close()
                return seen, False
            seen.append({"url": page.url, "status": None, "text": page.inner_text("body"), **added})
        browser.close()
    return seen, True


if __name__ == "__main__":
    request = json.load(sys.stdin)
    result, ok = run(request["base"], request["steps"])
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.exit(0 if ok else 1)
