"""Failed-login limits (I3): after 5 consecutive failures the account locks for 15 minutes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_FAILURES = 5
LOCK_DURATION = timedelta(minutes=15)


@dataclass(frozen=True)
class LoginGuard:
    """An account's failed-login counter and lock."""

    failed_logins: int = 0
    locked_until: datetime | None = None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def minutes_left(self, now: datetime) -> int:
        """Whole minutes until the lock ends, rounded up (0 when not locked)."""
        if not self.is_locked(now):
            return 0
        assert self.locked_until is not None
        return max(1, math.ceil((self.locked_until - now).total_seconds() / 60))

    def after_failure(self, now: datetime) -> LoginGuard:
        """The guard after one more wrong password; the failure that reaches the limit locks
        the account and starts the count again for when the lock ends."""
        failed = self.failed_logins + 1
        if failed >= MAX_FAILURES:
            return LoginGuard(failed_logins=0, locked_until=now + LOCK_DURATION)
        return LoginGuard(failed_logins=failed, locked_until=self.locked_until)

    def after_success(self) -> LoginGuard:
        return LoginGuard()


def locked_message(minutes: int) -> str:
    return f"账号已锁定，请在{minutes}分钟后重试"
