"""Roster events as aid receives them, and callers of each role (shared builders)."""

from services.common.testing import caller, registered, status_changed

__all__ = ["caller", "registered", "status_changed"]
