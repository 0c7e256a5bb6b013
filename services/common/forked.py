"""Pure CPU work in a forked child process, beside the caller's own: the second core of a machine
for one long request (the roster import checks half its rows there).

The child shares the parent's memory as it was at the fork (a parsed workbook is not parsed
again), runs one function and sends its pickled result through a pipe. It must never give the
eventlet hub a turn, or green threads it inherited (AMQP consumers, heartbeats) would run on
sockets the parent owns: so the function must be pure computation (no I/O, no sleep, no
database), the garbage collector is off (no finalizer of an inherited object runs there),
signals are back to their defaults, and it leaves by os._exit (no atexit, no cleanup).
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from services.common.unpatched import original

T = TypeVar("T")


class ChildFailed(RuntimeError):
    """The child raised, was killed, or its answer was lost; the caller does the work itself."""


class Forked(Generic[T]):
    """`fn()` started in a child process now; `result()` waits for its value."""

    def __init__(self, fn: Callable[[], T]) -> None:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, answer, leave
            os.close(read_end)
            _run_child(fn, write_end)
        os.close(write_end)
        self._pid, self._fd = pid, read_end

    def result(self) -> T:
        """The child's value; ChildFailed if it has none to give."""
        chunks = []
        try:
            # os.read is eventlet's under monkey patching: other green threads run while the child works.
            while chunk := os.read(self._fd, 1 << 20):
                chunks.append(chunk)
        finally:
            os.close(self._fd)
            _, status = os.waitpid(self._pid, 0)
        collecting = gc.isenabled()
        gc.disable()  # unpickling makes many containers at once: each would trigger collections of the whole heap
        try:
            ok, value = pickle.loads(b"".join(chunks))
        except (pickle.UnpicklingError, EOFError, ValueError):
            raise ChildFailed(f"child ended without an answer (wait status {status})") from None
        finally:
            if collecting:
                gc.enable()
        if not ok:
            raise ChildFailed(value)
        return value


def _run_child(fn: Callable[[], Any], write_end: int) -> None:
    code = 0
    try:
        gc.disable()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        try:
            answer = pickle.dumps((True, fn()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
            answer = pickle.dumps((False, f"{type(error).__name__}: {error}"))
        write = original("os").write  # eventlet's would wait in the hub, and the hub must never run here
        view = memoryview(answer)
        while view:
            view = view[write(write_end, view):]
    except BaseException:  # noqa: BLE001 - nothing may escape into the parent's code
        code = 1
    finally:
        os._exit(code)
