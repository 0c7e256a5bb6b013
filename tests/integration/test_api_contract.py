"""API contract: every operation of `/api/v1/openapi.json` answers as documented, against the real services.

schemathesis generates requests from the document (positive data: bodies and parameters that fit
it) and sends them to the gateway app in process (WSGI), which calls the five real services over
RabbitMQ. Checked for every answer: no 5xx, the status is documented, the content type is the
documented one, the body conforms to the documented schema (errors: the `Error` body). Signed in
as student affairs (institution scope) with the CSRF header; with bodies that break the document
(negative data); signed out, where every protected operation must answer 401 with the error body;
and as a student, who must get nothing of another student from any operation keyed by a number.

Bounded: a few derandomized examples per operation, no shrinking (~2 min in all).
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway import openapi
from gateway.app import create_app, rpc_pool
from services.catalog import SERVICES
from tests.harness import Cluster, national_id, populate

PASSWORD = "Contract@Xueji2026"
STAFF = "1000019"
PEER = "4133010002"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
EXAMPLES = 3

# Signed in, these would end the run's own session: they are tested signed out only.
ENDS_OWN_SESSION = {("DELETE", "/api/v1/session")}


@pytest.fixture(scope="module")
def cluster(amqp_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir: Path = tmp_path_factory.mktemp("contract")
    urls = {name: f"sqlite:///{workdir}/{name}.sqlite3" for name in SERVICES}
    running = Cluster(amqp_uri, urls, workdir).prepare()
    try:
        running.start()
        running.rpc("identity", "create_account", STAFF, "学生处 合同测试", "student_affairs", "institution", [],
                    PASSWORD)
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def students(cluster: Cluster) -> list[dict[str, Any]]:
    return populate(cluster, 12)


@pytest.fixture(scope="module")
def app(cluster: Cluster, students: list[dict[str, Any]]) -> Iterator[Flask]:
    made = create_app({"TESTING": True, "SECRET_KEY": "contract-tests", "XUEJI_AMQP_URI": cluster.amqp_uri,
                       "XUEJI_CONFIGURE_LOGGING": False, "XUEJI_RPC_TIMEOUT": 20.0,
                       # schemathesis tries the login many times: keep the limit out of the way here
                       # (gateway/tests/test_openapi.py tests it).
                       "XUEJI_LOGIN_ATTEMPTS": 100_000})
    yield made
    rpc_pool(made).close()


class SignedIn:
    """The run's own session: its cookies and the CSRF header, as a browser script would send them."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.headers: dict[str, str] = {}
        self.sign_in()

    def sign_in(self) -> None:
        client = self.app.test_client()
        answer = client.post("/api/v1/session", json={"username": STAFF, "password": PASSWORD})
        assert answer.status_code == 200, answer.get_json()
        session, csrf = client.get_cookie("xueji_session"), client.get_cookie("xueji_csrf")
        assert session is not None and csrf is not None
        self.cookies = {"xueji_session": session.value, "xueji_csrf": csrf.value}
        self.headers = {"X-CSRF-Token": csrf.value}

    def alive(self) -> bool:
        client = self.app.test_client()
        for key, value in self.cookies.items():
            client.set_cookie(key, value)
        return client.get("/api/v1/session").status_code == 200


def load_schema(app: Flask) -> Any:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # Our own cookie and header authenticate; generated values for them would only replace them.
    schema.config.generation.update(with_security_parameters=False, allow_x00=False)
    return schema


def run_operation(operation: Any, examples: int, send: Callable[[Any], None], **fixed: Any) -> str | None:
    """Run `examples` generated cases of one operation; the first failure's report, or None."""
    strategy = operation.as_strategy(**fixed)

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        send(case)

    try:
        run()
    except (AssertionError, BaseExceptionGroup) as exc:  # every operation is tried; all reported together
        return f"{operation.method.upper()} {operation.path}{' ' + str(fixed) if fixed else ''}: {exc}"[:3000]
    return None


def operations(schema: Any) -> list[Any]:
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 128
    return found


def is_protected(operation: Any) -> bool:
    return operation.definition.raw.get("security") != []


def error_code(response: Any) -> str:
    if response.status_code < 400 or "json" not in response.headers.get("content-type", [""])[0]:
        return ""
    return str(response.json()["error"]["code"])


@pytest.fixture(scope="module")
def transfer_id(cluster: Cluster, app: Flask) -> str:
    """A transfer filed through the API (its 201 answer checked against the document below)."""
    cluster.rpc("transfer", "save_peer", PEER, "浙江模拟学院", "33", "330000")
    client = app.test_client()
    assert client.post("/api/v1/session", json={"username": STAFF, "password": PASSWORD}).status_code == 200
    id_number = national_id(700001, "1")
    answer = client.post("/api/v1/transfers", headers={"X-Requested-With": "XMLHttpRequest"}, json={
        "student": {"name": "转入生", "gender": "1", "birth_date": f"{id_number[6:10]}-{id_number[10:12]}-"
                    f"{id_number[12:14]}", "id_type": "1", "id_number": id_number,
                    "outflow_student_number": "202303010001"},
        "peer_code": PEER, "transfer_kind": "inter_province", "reason": "监护人工作调动",
        "target_class_code": "2023010101", "out_of_term_reason": "随迁",
        "evidence": [{"filename": "转学申请表.pdf", "data": base64.b64encode(b"%PDF-1.4\n%\n").decode()}]})
    assert answer.status_code == 201, answer.get_json()
    return str(answer.get_json()["transfer_id"])


def known_values(students: list[dict[str, Any]], transfer_id: str) -> dict[str, str]:
    """Path parameters that exist, so GETs and writes reach the services' rules, not only 404s."""
    return {"student_number": students[0]["student_number"], "username": students[1]["student_number"],
            "code": "B1", "transfer_id": transfer_id}


@pytest.mark.timeout(600)  # ~1–2 min here; more on a loaded machine, with the cluster start-up
def test_every_operation_answers_as_documented(app: Flask, students: list[dict[str, Any]], transfer_id: str) -> None:
    me = SignedIn(app)
    schema = load_schema(app)
    values = known_values(students, transfer_id)
    failures = []
    answered: dict[str, int] = {}

    def send(case: Any) -> None:
        response = case.call_and_validate(headers=me.headers, cookies=me.cookies, checks=CHECKS)
        if is_protected(case.operation):  # (the login itself answers 401 to a wrong password)
            key = f"{response.status_code} {error_code(response)}".strip()
            answered[key] = answered.get(key, 0) + 1

    for operation in operations(schema):
        if (operation.method.upper(), operation.path) in ENDS_OWN_SESSION:
            continue
        failures.append(run_operation(operation, EXAMPLES, send))
        names = set(re.findall(r"{(\w+)}", operation.path))
        if names and names <= set(values):
            failures.append(run_operation(operation, 2, send,
                                          path_parameters={n: values[n] for n in names}))
        # Each operation ran signed in (a 401 would pass as documented and hide everything after).
        if not me.alive():
            failures.append(f"{operation.method.upper()} {operation.path}: ended the run's own session")
            me.sign_in()
    failures = [f for f in failures if f]
    assert not failures, f"{len(failures)} operations do not answer as documented:\n\n" + "\n\n".join(failures)
    # Signed in, the services' own rules were reached: hardly any 401, many successes.
    assert not answered.get("401 unauthenticated") and not answered.get("403 csrf_failed"), answered
    assert answered.get("200", 0) > 60, answered


def test_bodies_that_break_the_document_are_refused_with_the_error_body(app: Flask) -> None:
    """Negative data (wrong types, missing fields, extra values) for every operation with a body: a 4xx
    with the `Error` body, never a 5xx or an undocumented answer."""
    me = SignedIn(app)
    schema = load_schema(app)
    failures = []

    def send(case: Any) -> None:
        case.call_and_validate(headers=me.headers, cookies=me.cookies, checks=CHECKS)

    for operation in operations(schema):
        if "requestBody" not in operation.definition.raw or not is_protected(operation):
            continue
        failures.append(run_operation(operation, 2, send, generation_mode=GenerationMode.NEGATIVE))
        if not me.alive():
            failures.append(f"{operation.method.upper()} {operation.path}: ended the run's own session")
            me.sign_in()
    failures = [f for f in failures if f]
    assert not failures, f"{len(failures)} operations mishandle bad bodies:\n\n" + "\n\n".join(failures)


def test_signed_out_every_protected_operation_answers_401(app: Flask) -> None:
    schema = load_schema(app)
    failures = []
    for operation in operations(schema):
        protected = is_protected(operation)

        def send(case: Any, protected: bool = protected) -> None:
            response = case.call_and_validate(checks=CHECKS)
            if protected:
                assert response.status_code == 401, f"{response.status_code}: {response.text[:300]}"
                assert response.json()["error"]["code"] == "unauthenticated"

        failures.append(run_operation(operation, 2, send))
    failures = [f for f in failures if f]
    assert not failures, f"{len(failures)} operations fail signed out:\n\n" + "\n\n".join(failures)


def test_the_checks_catch_an_answer_that_differs_from_the_document(app: Flask,
                                                                    students: list[dict[str, Any]]) -> None:
    me = SignedIn(app)
    spec = copy.deepcopy(openapi.document(app))
    spec["components"]["schemas"]["Student"]["required"].append("not_in_the_answer")
    schema = schemathesis.openapi.from_dict(spec)
    operation = next(op for op in operations(schema)
                     if op.method == "get" and op.path == "/api/v1/students/{student_number}")

    def send(case: Any) -> None:
        case.call_and_validate(app=app, headers=me.headers, cookies=me.cookies, checks=CHECKS)

    failure = run_operation(operation, 1, send, path_parameters={"student_number": students[0]["student_number"]})
    assert failure is not None and "not_in_the_answer" in failure


def test_a_student_reads_nothing_of_another_student_through_any_operation(
        cluster: Cluster, app: Flask, students: list[dict[str, Any]]) -> None:
    """The authorization matrix through HTTP, for the widest door: every GET operation keyed by a student
    number answers a student about another student with 403/404, never with their data."""
    me, other = students[2]["student_number"], students[3]["student_number"]
    cluster.rpc("identity", "set_password", me, PASSWORD)
    client = app.test_client()
    assert client.post("/api/v1/session", json={"username": me, "password": PASSWORD}).status_code == 200
    spec = openapi.document(app)
    keyed = [path for path, item in spec["paths"].items()
             if "get" in item and re.findall(r"{(\w+)}", path) == ["student_number"]]
    assert len(keyed) >= 10
    outcomes = {}
    for path in keyed:
        theirs = client.get(path.replace("{student_number}", other))
        assert theirs.status_code in (403, 404), (path, theirs.status_code, theirs.get_json())
        assert theirs.get_json()["error"]["code"] in ("forbidden", "not_found"), path
        outcomes[path] = client.get(path.replace("{student_number}", me)).status_code
    # Their own record is theirs to read: the check above is about the number, not a blanket refusal.
    assert outcomes["/api/v1/students/{student_number}"] == 200
    assert outcomes["/api/v1/housing/occupancy/{student_number}"] == 200
