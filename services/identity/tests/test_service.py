"""IdentityService in a real nameko container over a real RabbitMQ vhost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook

from services.common.caller import CONTEXT_KEY, Caller
from services.common.db import Database
from services.common.errors import Forbidden, Unauthenticated
from services.common.testing import publish, wait_for
from services.common.topology import bindings_of, declare
from services.identity import handlers
from services.identity.adapters.orm import Account
from services.identity.service import IdentityService
from services.identity.tests.factories import PASSWORD, registered, staff, status_changed


def config(amqp_uri: str, db: Database) -> dict[str, Any]:
    return {"AMQP_URI": amqp_uri, "IDENTITY_DATABASE_URL": db.url}



def test_login_over_the_broker(amqp_uri: str, container_factory: Any,
                               migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("identity")
    staff(db, "1000001", name="学生处管理员")
    container = container_factory(IdentityService, config(amqp_uri, db))
    container.start()

    with entrypoint_hook(container, "health") as health:
        assert health() == {"service": "identity", "status": "ok", "db": "ok", "outbox_backlog": 0,
                            "accounts": 1}
    with entrypoint_hook(container, "login") as login:
        answer = login("1000001", PASSWORD, "10.0.0.8")
        with pytest.raises(Unauthenticated, match="用户名或密码错误"):
            login("1000001", "Wrong-pass-2027")
    assert answer["caller"]["role"] == "student_affairs"
    session_id = answer["session_id"]

    # Through real RPC: errors arrive as their own types; the caller travels in context data.
    rpc_config = {"AMQP_URI": amqp_uri}
    with ServiceRpcProxy("identity", rpc_config) as identity:
        who = identity.resolve_session(session_id)
        assert (who["username"], who["session_id"]) == ("1000001", session_id)
        with pytest.raises(Unauthenticated, match="用户名或密码错误"):
            identity.login("1000999", PASSWORD)
    context = {CONTEXT_KEY: Caller.from_dict(who).to_header()}
    with ServiceRpcProxy("identity", rpc_config, context_data=context) as identity:
        assert identity.get_account("1000001")["role_label"] == "学生处"
        created = identity.create_account("1000004", "王老师", "counselor", "classes", ["2023010101"], PASSWORD)
        assert created["must_change_password"] is True
        reset = identity.set_password("1000004", "Reset-2027-pw")
        assert reset["must_change_password"] is True
    counselor = Caller.from_dict(handlers.login(db, "1000004", "Reset-2027-pw")["caller"])
    with ServiceRpcProxy("identity", rpc_config,
                         context_data={CONTEXT_KEY: counselor.to_header()}) as identity:
        with pytest.raises(Forbidden):
            identity.get_account("1000001")
        identity.logout(counselor.session_id)
        with pytest.raises(Unauthenticated, match="会话已失效"):
            identity.resolve_session(counselor.session_id)


def test_roster_events_create_and_deactivate_accounts(fresh_amqp_uri: str, container_factory: Any,
                                                      migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("identity")
    declare(fresh_amqp_uri, bindings_of([IdentityService]))
    container = container_factory(IdentityService, config(fresh_amqp_uri, db))
    container.start()

    def active(number: str) -> bool | None:
        with db.reading() as s:
            row = s.get(Account, number)
            return None if row is None else row.active

    publish(fresh_amqp_uri, registered("202301010105", name="李娜"))
    wait_for(lambda: active("202301010105") is True)
    publish(fresh_amqp_uri, status_changed("202301010105", 7, "graduated", left=True))
    wait_for(lambda: active("202301010105") is False)

    # A change published before its registration is retried until the account exists.
    publish(fresh_amqp_uri, status_changed("202301010106", 8, "withdrawn", left=True))
    publish(fresh_amqp_uri, registered("202301010106", name="赵磊"))
    wait_for(lambda: active("202301010106") is False)

    publish(fresh_amqp_uri, status_changed("202301010105", 9, "enrolled", left=False,
                                           old_status="graduated", revokes=7))
    wait_for(lambda: active("202301010105") is True)
    with entrypoint_hook(container, "health") as health:
        assert health()["accounts"] == 2


def test_a_student_number_change_renames_the_account(fresh_amqp_uri: str, container_factory: Any,
                                                     migrated_db: Callable[[str], Database]) -> None:
    from services.identity.tests.test_renames import NEW, OLD, number_changed

    db = migrated_db("identity")
    declare(fresh_amqp_uri, bindings_of([IdentityService]))
    container = container_factory(IdentityService, config(fresh_amqp_uri, db))
    container.start()

    def exists(number: str) -> bool:
        with db.reading() as s:
            return s.get(Account, number) is not None

    event = number_changed()
    publish(fresh_amqp_uri, event)  # before the registration: retried until it can apply
    publish(fresh_amqp_uri, registered(OLD, name="李娜"))
    wait_for(lambda: exists(NEW) and not exists(OLD))
    publish(fresh_amqp_uri, event)  # the same event again changes nothing
    publish(fresh_amqp_uri, registered("202301010106", name="赵磊"))
    wait_for(lambda: exists("202301010106"))
    assert exists(NEW) and not exists(OLD)
