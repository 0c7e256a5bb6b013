"""`forked.Forked`: a child's value comes back, its failures are ChildFailed, and while it works the
parent's green threads run (this test process is monkey patched, as the services are) but none of
them ever runs in the child."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import eventlet
import pytest

from services.common import unpatched
from services.common.forked import ChildFailed, Forked


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds  # pure CPU: a sleep would hand the hub a turn
    while time.perf_counter() < end:
        pass


def test_the_childs_value_comes_back() -> None:
    rows = [{"n": i, "text": f"行{i}", "none": None} for i in range(50_000)]  # > a pipe's buffer
    assert Forked(lambda: [r for r in rows if r["n"] % 2]).result() == rows[1::2]


def test_an_exception_in_the_child_is_child_failed() -> None:
    def fail() -> None:
        raise ValueError("坏数据")

    with pytest.raises(ChildFailed, match="ValueError: 坏数据"):
        Forked(fail).result()


def test_a_killed_child_is_child_failed() -> None:
    with pytest.raises(ChildFailed, match="without an answer"):
        Forked(lambda: os.kill(os.getpid(), signal.SIGKILL)).result()


def test_green_threads_run_in_the_parent_only(tmp_path: Path) -> None:
    ticks = tmp_path / "ticks"

    def tick() -> None:
        for _ in range(100):
            with ticks.open("a") as out:
                out.write(f"{os.getpid()}\n")
            eventlet.sleep(0.005)

    ticker = eventlet.spawn(tick)
    eventlet.sleep(0)
    child = Forked(lambda: (busy(0.3), os.getpid())[1])
    child_pid = child.result()
    ticker.kill()
    pids = ticks.read_text().split()
    assert len(pids) >= 10  # the parent's ticker went on while the child worked
    assert set(pids) == {str(os.getpid())} and str(child_pid) not in pids


def test_the_child_answers_through_the_unpatched_os() -> None:
    # eventlet's os.write waits in the hub even on a writable pipe: in the child that would run inherited
    # green threads on the parent's sockets.
    real = eventlet.patcher.original("os").write
    assert os.write is not real and unpatched.original("os").write is real
    assert unpatched.original("_thread").start_new_thread is eventlet.patcher.original("_thread").start_new_thread
