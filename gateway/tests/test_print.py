"""Print views as PDF (issue 9, R20): 在校证明, 学籍卡 and the initial-password slips, against the real
identity and roster services (in-process nameko containers on a fresh vhost, SQLite).

pypdf is not installed, so the PDF's text is checked the way WeasyPrint lays it out: the HTML the route
rendered (caught with Flask's `template_rendered` signal) is laid out again with WeasyPrint's document API
and its text boxes read; the PDF bytes themselves are checked for the header, the embedded CJK font subsets
and the same page count.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, template_rendered
from flask.testing import FlaskClient
from sqlalchemy import select, update

from gateway import pdf, print_web
from gateway.tests.helpers import fresh_copies, migrated_templates, web_login
from services.common.caller import ACADEMIC_AFFAIRS, CONTEXT_KEY, STUDENT_AFFAIRS, system_caller
from services.common.db import Database
from services.common.testing import caller, wait_for
from services.common.topology import bindings_of, declare
from services.identity import handlers as identity
from services.identity.adapters.orm import Account
from services.identity.service import IdentityService
from services.identity.tests.factories import PASSWORD, SYSTEM, staff
from services.roster.adapters.orm import Student
from services.roster.service import RosterService
from services.roster.tests.factories import student

MINE, OTHER, ELSEWHERE = "2023010101", "2023010102", "2023020101"
COUNSELOR, IT = "2001001", "2001004"  # the counselor of MINE; an IT-centre officer
ME, CLASSMATE, LEAVER = f"{MINE}01", f"{MINE}02", f"{MINE}03"
MOVED = f"{OTHER}04"  # moved into MINE by a class move (the number stays)
NATIONAL_ID = student(1, born=date(2005, 3, 1))["national_id"]  # ME's, as the fixture registers it


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each service's database migrated once; every test gets a copy."""
    return migrated_templates(tmp_path_factory.mktemp("print"), "roster", "identity")


@pytest.fixture
def env(fresh_amqp_uri: str, tmp_path: Path, migrated: dict[str, Path], container_factory: Any,
        make_app: Callable[..., Flask]) -> Iterator[dict[str, Any]]:
    """roster and identity running; students in three classes, each with an account from student.registered;
    the counselor of MINE and an IT-centre officer; ME may log in with PASSWORD."""
    from nameko.standalone.rpc import ClusterRpcProxy

    urls = fresh_copies(migrated, tmp_path)
    identity_db, roster_db = Database(urls["identity"]), Database(urls["roster"])
    staff(identity_db, COUNSELOR, "counselor", "classes", (MINE,), name="陈老师")
    staff(identity_db, IT, "it_centre", name="周老师")
    declare(fresh_amqp_uri, bindings_of([RosterService, IdentityService]))
    for service, cls in (("roster", RosterService), ("identity", IdentityService)):
        container_factory(cls, {"AMQP_URI": fresh_amqp_uri, f"{service.upper()}_DATABASE_URL": urls[service]}).start()
    students = [student(seat, klass=klass, born=date(2005, 3, 1 + n))
                for n, klass in enumerate((MINE, OTHER, ELSEWHERE)) for seat in (1, 2, 3)]
    students.append(student(4, klass=OTHER, born=date(2005, 4, 4)))
    students[0]["name"] = "王小明"
    system = {CONTEXT_KEY: system_caller("test").to_header()}
    with ClusterRpcProxy({"AMQP_URI": fresh_amqp_uri}, timeout=30, context_data=system) as rpc:
        rpc.roster.upsert_org_units([
            {"code": "01", "name": "计算机学院", "kind": "college"},
            {"code": "02", "name": "外国语学院", "kind": "college"},
            {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
            {"code": "0201", "name": "英语", "kind": "major", "parent_code": "02"},
            {"code": MINE, "name": "计科2301", "kind": "class", "parent_code": "0101"},
            {"code": OTHER, "name": "计科2302", "kind": "class", "parent_code": "0101"},
            {"code": ELSEWHERE, "name": "英语2301", "kind": "class", "parent_code": "0201"},
        ])
        rpc.roster.register_students(students)
    with roster_db.transaction() as s:
        s.execute(update(Student).values(entry_month="2023-09"))
    wait_for(lambda: _accounts(identity_db) == len(students))
    identity.set_password(identity_db, SYSTEM, ME, PASSWORD)  # set by the system: no forced change
    yield {"client": make_app(fresh_amqp_uri, XUEJI_RPC_TIMEOUT=10.0).test_client(), "uri": fresh_amqp_uri,
           "identity_db": identity_db, "roster_db": roster_db}
    identity_db.dispose()
    roster_db.dispose()


def _accounts(db: Database) -> int:
    with db.reading() as s:
        return len(s.scalars(select(Account.username).where(Account.role == "student")).all())


def as_role(env: dict[str, Any], role: str, *ids: str) -> Any:
    """A nameko RPC proxy calling as `role` (for the changes a test needs beforehand)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    who = caller(role, "classes", *ids) if ids else caller(role)
    return ClusterRpcProxy({"AMQP_URI": env["uri"]}, timeout=30, context_data={CONTEXT_KEY: who.to_header()})


@pytest.fixture
def printed(env: dict[str, Any]) -> Iterator[list[str]]:
    """The HTML of every print page the app renders during the test."""
    pages: list[str] = []

    def record(_sender: Flask, template: Any, context: dict[str, Any], **_extra: Any) -> None:
        if template.name.startswith("print_"):
            pages.append(template.render(context))

    app = env["client"].application
    template_rendered.connect(record, app)
    yield pages
    template_rendered.disconnect(record, app)


def pdf_checked(response: Any, html: str) -> str:
    """Check a PDF response against the page it was made from; returns the page's laid-out text."""
    from weasyprint import HTML

    data = response.data
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert data.startswith(b"%PDF-")
    # Objects sit in compressed object streams: inflate every stream to look at the fonts.
    inflated = [data]
    for stream in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            inflated.append(zlib.decompressobj().decompress(stream.group(1)))
        except zlib.error:
            pass
    objects = b"\n".join(inflated)
    assert re.search(rb"/FontFile[23]?\b", objects), "no embedded font program"
    subsets = re.findall(rb"/BaseFont\s*/[A-Z]{6}\+([\w-]+)", objects)
    assert any(b"CJK-SC" in name for name in subsets), subsets  # a subset of a Chinese font, not a fallback
    document = HTML(string=html).render()
    assert len(re.findall(rb"/Type\s*/Page\b", objects)) == len(document.pages)
    return "".join(box.text for page in document.pages for box in page._page_box.descendants()
                   if hasattr(box, "text"))


def text_of(response: Any) -> str:
    return response.get_data(as_text=True)


def csrf(client: FlaskClient) -> str:
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return token.value


# -- 在校证明 -------------------------------------------------------------------------------------------


def test_a_student_prints_their_own_certificate_and_record_card_only(env: dict[str, Any],
                                                                     printed: list[str]) -> None:
    client = env["client"]
    with as_role(env, ACADEMIC_AFFAIRS) as rpc:
        rpc.roster.apply_status_change(ME, "suspend", "2026-03-01", "因病休学", "教学〔2026〕1号")
        rpc.roster.apply_status_change(ME, "resume", "2026-09-01", "病愈复学", "教学〔2026〕9号")
    assert web_login(client, ME, PASSWORD).status_code == 302

    page = text_of(client.get(f"/students/{ME}"))
    assert f'href="/print/certificate/{ME}.pdf"' in page and f'href="/print/record/{ME}.pdf"' in page
    response = client.get(f"/print/certificate/{ME}.pdf")
    text = pdf_checked(response, printed[-1])
    assert "在校证明" in text and "王小明" in text and ME in text
    assert NATIONAL_ID in text  # one's own ID number in full
    assert "计算机学院" in text and "计科2301" in text and "2023年9月" in text and "在读" in text
    assert "示例大学" in text and re.search(rf"ZX\d{{8}}{ME}[0-9A-F]{{4}}", text)
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("inline;") and f"filename*=UTF-8''{quote('在校证明_王小明_' + ME + '.pdf')}" \
        in disposition and f'filename="certificate-{ME}.pdf"' in disposition

    response = client.get(f"/print/record/{ME}.pdf")
    text = pdf_checked(response, printed[-1])
    assert "学生学籍卡" in text and "王小明" in text and ME in text
    assert text.index("病愈复学") < text.index("因病休学")  # newest change first
    assert "暂无调班记录" in text

    for path in (f"/print/certificate/{CLASSMATE}.pdf", f"/print/record/{CLASSMATE}.pdf"):
        response = client.get(path)
        assert response.status_code == 403 and "学生只能打印本人的在校证明和学籍卡" in text_of(response)
        assert not response.data.startswith(b"%PDF")


def test_staff_print_in_scope_masked_and_no_certificate_for_a_student_who_left(env: dict[str, Any],
                                                                               printed: list[str]) -> None:
    client = env["client"]
    with as_role(env, ACADEMIC_AFFAIRS) as rpc:
        rpc.roster.apply_status_change(LEAVER, "withdraw", "2026-10-08", "本人申请退学", "教学〔2026〕12号")
    with as_role(env, STUDENT_AFFAIRS) as rpc:
        rpc.roster.move_class(MOVED, MINE, "本人申请调入计科2301")
    web_login(client, COUNSELOR, PASSWORD)

    text = pdf_checked(client.get(f"/print/certificate/{CLASSMATE}.pdf"), printed[-1])
    assert "学生零二" in text and CLASSMATE in text and "计算机科学与技术" in text  # the major's name for staff
    national_id = student(2, born=date(2005, 3, 1))["national_id"]
    assert national_id not in text and national_id[:6] + "********" + national_id[-4:] in text

    response = client.get(f"/print/certificate/{LEAVER}.pdf")
    assert response.status_code == 409 and not response.data.startswith(b"%PDF")
    assert "学籍状态为“退学”，已离校，不能开具在校证明" in text_of(response)
    # The record card of a student who left still prints, with the change that made them leave.
    text = pdf_checked(client.get(f"/print/record/{LEAVER}.pdf"), printed[-1])
    assert "退学" in text and "本人申请退学" in text and "教学〔2026〕12号" in text

    text = pdf_checked(client.get(f"/print/record/{MOVED}.pdf"), printed[-1])
    assert "计科2302" in text and "本人申请调入计科2301" in text and "暂无学籍异动记录" in text

    for path in (f"/print/certificate/{ELSEWHERE}01.pdf", f"/print/record/{OTHER}01.pdf"):
        response = client.get(path)
        assert response.status_code == 403 and "不在您的数据权限范围内" in text_of(response), path


# -- 初始密码分发单 ------------------------------------------------------------------------------------


def request_slips(client: FlaskClient, class_code: str, **form: str) -> Any:
    return client.post("/accounts/initial-passwords", data={"csrf_token": csrf(client), "class_code": class_code,
                                                            "format": "pdf", **form})


def test_the_counselor_prints_password_slips_for_their_class_once(env: dict[str, Any], printed: list[str]) -> None:
    client = env["client"]
    web_login(client, COUNSELOR, PASSWORD)
    page = text_of(client.get("/accounts/initial-passwords"))
    assert 'name="format" value="pdf"' in page and "打印分发单（PDF" in page

    response = request_slips(client, OTHER)  # not the counselor's class: nothing issued
    assert response.status_code == 403 and "不在您的数据权限范围内" in text_of(response)

    response = request_slips(client, MINE)
    text = pdf_checked(response, printed[-1])
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert quote(f"学生初始密码分发单_{MINE}.pdf") in response.headers["Content-Disposition"]
    assert text.count("首次登录须修改密码") == 2 and "共 2 人" in text
    # Every student of the class without a password, no one else: ME has one already.
    for number in (CLASSMATE, LEAVER):
        assert number in text
    for number in (ME, f"{OTHER}01", f"{ELSEWHERE}01"):
        assert number not in text
    # The printed password is the one identity stored: it logs the student in, who must change it.
    password = re.search(rf"{CLASSMATE}\s*初始密码：\s*(\S+?)\s*首次登录", text)
    assert password is not None
    answer = identity.login(env["identity_db"], CLASSMATE, password.group(1), "127.0.0.1")
    assert answer["must_change_password"] is True

    # Issued once: the next sheet has nobody on it.
    text = pdf_checked(request_slips(client, MINE), printed[-1])
    assert "没有尚未生成初始密码的学生" in text and "共 0 人" in text

    web_login(client, IT, PASSWORD)  # not a counselor: no such page
    response = request_slips(client, MINE)
    assert response.status_code == 403 and "您没有权限访问该页面" in text_of(response)


def test_no_password_is_issued_when_no_pdf_can_be_made(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    client = env["client"]
    web_login(client, COUNSELOR, PASSWORD)
    monkeypatch.setattr(pdf, "FONTS", ("Noto Serif CJK SC", "无此字体 Xueji"))  # as on a machine without it
    pdf._check_fonts.cache_clear()
    try:
        response = request_slips(client, MINE)
    finally:
        pdf._check_fonts.cache_clear()
    assert response.status_code == 503 and "PDF 打印组件不可用" in text_of(response)
    with env["identity_db"].reading() as s:
        issued = s.scalars(select(Account.username).where(Account.password_hash.is_not(None),
                                                          Account.role == "student")).all()
    assert issued == [ME]


# -- plain helpers -------------------------------------------------------------------------------------


def test_refusal_dates_and_certificate_numbers() -> None:
    on_campus = {"name": "张三", "student_number": ME, "status_label": "在读", "on_campus": True, "left": False}
    assert print_web.certificate_refusal(on_campus) is None
    assert print_web.certificate_refusal({**on_campus, "status_label": "休学", "on_campus": False}) \
        == f"张三（{ME}）学籍状态为“休学”，当前不在校，不能开具在校证明"
    assert "已离校" in (print_web.certificate_refusal(
        {**on_campus, "status_label": "毕业", "on_campus": False, "left": True}) or "")
    assert print_web.chinese_month("2023-09") == "2023年9月" and print_web.chinese_month("") == ""
    assert print_web.chinese_date(date(2026, 3, 5)) == "2026年3月5日"
    day = date(2026, 11, 24)
    number = print_web.certificate_number(ME, day, "secret")
    assert re.fullmatch(rf"ZX20261124{ME}[0-9A-F]{{4}}", number)
    assert number == print_web.certificate_number(ME, day, "secret")
    assert number != print_web.certificate_number(ME, day, "another secret")
    assert print_web.slip_rows([{"n": i} for i in range(5)]) == [[{"n": 0}, {"n": 1}], [{"n": 2}, {"n": 3}],
                                                                  [{"n": 4}]]
    assert pdf.content_disposition("在校证明.pdf", "c.pdf", download=True) \
        == "attachment; filename=\"c.pdf\"; filename*=UTF-8''%E5%9C%A8%E6%A0%A1%E8%AF%81%E6%98%8E.pdf"
    assert pdf.content_disposition('x"\r\n.pdf', 'p-1"\r\n;.pdf', download=False) \
        == "inline; filename=\"p-1____.pdf\"; filename*=UTF-8''x%22%0D%0A.pdf"
