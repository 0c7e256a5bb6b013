"""The operator commands, run as a process against a temporary SQLite database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from services.common.db import Database
from services.common.errors import Unauthenticated
from services.common.models import AuditEntry
from services.identity import handlers
from services.identity.tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[3]


def run_cli(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IDENTITY_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    # A new session has no terminal, so getpass falls back to reading stdin.
    return subprocess.run([sys.executable, "-m", "services.identity.cli", *args], input=stdin, env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60, start_new_session=True)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/identity.sqlite3"


def test_create_admin_migrates_and_creates_a_student_affairs_account(url: str) -> None:
    done = run_cli(url, "create-admin", "--username", "1000001", "--name", "系统管理员", "--password-stdin",
                   stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert "已创建学生处账号 1000001（系统管理员）" in done.stdout
    db = Database(url)
    try:
        answer = handlers.login(db, "1000001", PASSWORD)
        assert answer["caller"]["role"] == "student_affairs"
        assert answer["caller"]["scope"] == {"kind": "institution", "ids": []}
        assert answer["must_change_password"] is False
        with db.reading() as s:
            entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "account.create")).one()
        assert (entry.actor, entry.role, entry.target) == ("system:identity-cli", "system", "1000001")
    finally:
        db.dispose()


def test_create_admin_asks_for_the_password_twice(url: str) -> None:
    done = run_cli(url, "create-admin", "--username", "1000001", "--name", "系统管理员",
                   stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    mismatch = run_cli(url, "create-admin", "--username", "1000002", "--name", "管理员二",
                       stdin=f"{PASSWORD}\nOther-2027-pass\n")
    assert mismatch.returncode == 1
    assert "两次输入的密码不一致" in mismatch.stderr


def test_create_admin_refuses_bad_input_in_chinese(url: str) -> None:
    weak = run_cli(url, "create-admin", "--username", "1000001", "--name", "系统管理员", "--password-stdin",
                   stdin="short\n")
    assert weak.returncode == 1 and "密码长度不能少于10位" in weak.stderr
    bad_number = run_cli(url, "create-admin", "--username", "admin", "--name", "系统管理员", "--password-stdin",
                         stdin=PASSWORD + "\n")
    assert bad_number.returncode == 1 and "7位工号" in bad_number.stderr
    run_cli(url, "create-admin", "--username", "1000001", "--name", "系统管理员", "--password-stdin",
            stdin=PASSWORD + "\n")
    again = run_cli(url, "create-admin", "--username", "1000001", "--name", "系统管理员", "--password-stdin",
                    stdin=PASSWORD + "\n")
    assert again.returncode == 1 and "账号 1000001 已存在" in again.stderr


def test_set_password_replaces_the_password_and_unlocks(url: str) -> None:
    run_cli(url, "create-admin", "--username", "1000001", "--name", "系统管理员", "--password-stdin",
            stdin=PASSWORD + "\n")
    db = Database(url)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            handlers.login(db, "1000001", "Wrong-pass-2027")
    with pytest.raises(Unauthenticated, match="账号已锁定"):
        handlers.login(db, "1000001", PASSWORD)
    done = run_cli(url, "set-password", "--username", "1000001", "--password-stdin", stdin="New-admin-2028\n")
    assert done.returncode == 0, done.stderr
    assert "已为账号 1000001（系统管理员）设置新密码" in done.stdout
    try:
        assert handlers.login(db, "1000001", "New-admin-2028")["session_id"]
    finally:
        db.dispose()
    missing = run_cli(url, "set-password", "--username", "1000099", "--password-stdin", stdin="New-admin-2028\n")
    assert missing.returncode == 1 and "账号不存在" in missing.stderr
