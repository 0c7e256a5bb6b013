"""Roster events as aid receives them, callers of each role, and valid ID numbers (shared builders)."""

from services.common.testing import caller, registered, status_changed

__all__ = ["caller", "id_number", "registered", "status_changed"]


def id_number(serial: int, born: str = "20050101") -> str:
    """A resident ID number (GB 11643) with a correct check digit."""
    body = f"110101{born}{serial % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
