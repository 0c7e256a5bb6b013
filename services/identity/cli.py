"""Operator commands for identity, run beside the service against its database.

    python -m services.identity.cli create-admin --username 1000001 --name 系统管理员
    python -m services.identity.cli set-password --username 1000001 --password-stdin

The database is migrated first (IDENTITY_DATABASE_URL, else the SQLite default). The
password is asked for twice without echo, or read as one line from stdin.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from services.common.caller import STUDENT_AFFAIRS, system_caller
from services.common.db import Database, database_url
from services.common.errors import XuejiError
from services.common.migrate import upgrade
from services.identity import handlers

CLI_CALLER = "identity-cli"


class CliError(Exception):
    pass


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise CliError("标准输入中没有密码")
        return password
    first = getpass.getpass("密码：")
    second = getpass.getpass("再次输入密码：")
    if first != second:
        raise CliError("两次输入的密码不一致")
    return first


def open_database() -> Database:
    url = database_url("identity")
    upgrade("identity", url)
    return Database(url)


def create_admin(args: argparse.Namespace) -> str:
    password = read_password(args.password_stdin)
    db = open_database()
    try:
        account = handlers.create_account(db, system_caller(CLI_CALLER), args.username, args.name,
                                          STUDENT_AFFAIRS, "institution", [], password)
    finally:
        db.dispose()
    return f"已创建学生处账号 {account['username']}（{account['display_name']}），数据范围：全校"


def set_password(args: argparse.Namespace) -> str:
    password = read_password(args.password_stdin)
    db = open_database()
    try:
        account = handlers.set_password(db, system_caller(CLI_CALLER), args.username, password)
    finally:
        db.dispose()
    return f"已为账号 {account['username']}（{account['display_name']}）设置新密码，账号已解锁，原有会话已结束"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m services.identity.cli", description="统一身份账号管理")
    commands = root.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin", help="创建学生处管理员账号（全校范围）")
    admin.add_argument("--username", required=True, help="7位工号")
    admin.add_argument("--name", required=True, help="姓名")
    admin.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码")
    admin.set_defaults(run=create_admin)
    reset = commands.add_parser("set-password", help="设置账号密码并解锁")
    reset.add_argument("--username", required=True)
    reset.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码")
    reset.set_defaults(run=set_password)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        print(args.run(args))
    except (CliError, XuejiError) as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
