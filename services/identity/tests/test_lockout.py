"""Failed-login limits (I3): 5 failures lock the account for 15 minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.identity.domain.lockout import LOCK_DURATION, MAX_FAILURES, LoginGuard, locked_message

NOW = datetime(2027, 9, 1, 8, 0, tzinfo=UTC)


def fail(guard: LoginGuard, times: int, now: datetime = NOW) -> LoginGuard:
    for _ in range(times):
        guard = guard.after_failure(now)
    return guard


def test_limits_are_five_failures_and_fifteen_minutes() -> None:
    assert MAX_FAILURES == 5
    assert LOCK_DURATION == timedelta(minutes=15)


def test_four_failures_do_not_lock() -> None:
    guard = fail(LoginGuard(), 4)
    assert guard.failed_logins == 4
    assert not guard.is_locked(NOW)


def test_the_fifth_failure_locks_for_fifteen_minutes() -> None:
    guard = fail(LoginGuard(), 5)
    assert guard.locked_until == NOW + timedelta(minutes=15)
    assert guard.is_locked(NOW)
    assert guard.is_locked(NOW + timedelta(minutes=14, seconds=59))
    assert not guard.is_locked(NOW + timedelta(minutes=15))
    assert guard.failed_logins == 0  # counting starts again once the lock ends


def test_minutes_left_round_up() -> None:
    guard = fail(LoginGuard(), 5)
    assert guard.minutes_left(NOW) == 15
    assert guard.minutes_left(NOW + timedelta(minutes=14, seconds=1)) == 1
    assert guard.minutes_left(NOW + timedelta(minutes=10, seconds=30)) == 5
    assert guard.minutes_left(NOW + timedelta(minutes=16)) == 0
    assert LoginGuard().minutes_left(NOW) == 0


def test_success_clears_the_count() -> None:
    guard = fail(LoginGuard(), 4).after_success()
    assert guard == LoginGuard()
    assert fail(guard, 4).failed_logins == 4


def test_after_the_lock_five_more_failures_lock_again() -> None:
    later = NOW + timedelta(minutes=20)
    guard = fail(fail(LoginGuard(), 5), 4, later)
    assert not guard.is_locked(later)
    guard = guard.after_failure(later)
    assert guard.locked_until == later + LOCK_DURATION


def test_locked_message() -> None:
    assert locked_message(15) == "账号已锁定，请在15分钟后重试"
