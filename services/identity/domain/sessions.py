"""Login sessions: their ids, idle expiry, and how often their last use is written down."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

# Writing last_seen_at on every request would make each page view a write.
TOUCH_INTERVAL = timedelta(minutes=1)
DEFAULT_IDLE_TIMEOUT = timedelta(hours=8)


def new_session_id() -> str:
    """32 random bytes, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def is_idle_expired(last_seen_at: datetime, now: datetime, idle_timeout: timedelta) -> bool:
    return now - last_seen_at >= idle_timeout


def needs_touch(last_seen_at: datetime, now: datetime) -> bool:
    return now - last_seen_at >= TOUCH_INTERVAL
