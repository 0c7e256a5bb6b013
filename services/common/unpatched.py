"""Standard modules as they are without eventlet's monkey patching, for code that must not enter the
eventlet hub: a forked child (the hub belongs to the parent) and OS threads beside it."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def original(name: str) -> ModuleType:
    patcher = sys.modules.get("eventlet.patcher")  # only where eventlet is in use: nothing to undo elsewhere
    return patcher.original(name) if patcher is not None else importlib.import_module(name)
