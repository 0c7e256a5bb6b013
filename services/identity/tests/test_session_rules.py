"""Session ids, idle expiry and how often a session's last use is written."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from services.identity.domain.sessions import is_idle_expired, needs_touch, new_session_id

NOW = datetime(2027, 9, 1, 8, 0, tzinfo=UTC)


def test_session_ids_are_32_random_urlsafe_bytes() -> None:
    ids = {new_session_id() for _ in range(200)}
    assert len(ids) == 200
    sample = ids.pop()
    assert len(base64.urlsafe_b64decode(sample + "=")) == 32


def test_last_seen_is_written_at_most_once_a_minute() -> None:
    assert not needs_touch(NOW - timedelta(seconds=59), NOW)
    assert needs_touch(NOW - timedelta(seconds=60), NOW)


def test_idle_sessions_expire() -> None:
    idle = timedelta(hours=8)
    assert not is_idle_expired(NOW - timedelta(hours=7, minutes=59), NOW, idle)
    assert is_idle_expired(NOW - timedelta(hours=8), NOW, idle)
