"""学号换发 (R3) and photos (R15) through the gateway, against the real roster and identity services
(in-process nameko containers on a fresh vhost, SQLite): pages, API, the student page and the record card."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, template_rendered
from flask.testing import FlaskClient
from openpyxl import Workbook
from sqlalchemy import select

from gateway.tests.helpers import fresh_copies, migrated_templates, web_login
from services.common.caller import CONTEXT_KEY, system_caller
from services.common.db import Database
from services.common.testing import wait_for
from services.common.topology import bindings_of, declare
from services.identity.adapters.orm import Account
from services.identity.service import IdentityService
from services.identity.tests.factories import PASSWORD, staff
from services.roster.service import RosterService
from services.roster.tests.factories import student
from services.roster.tests.test_photos import jpeg

CLASS = "2023010101"
REGISTRAR, COUNSELOR = "2001002", "2001001"
EXAM = "23110101150001"
NEW = f"{CLASS}01"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return migrated_templates(tmp_path_factory.mktemp("numbers"), "roster", "identity")


@pytest.fixture
def env(fresh_amqp_uri: str, tmp_path: Path, migrated: dict[str, Path], container_factory: Any,
        make_app: Callable[..., Flask]) -> Iterator[dict[str, Any]]:
    from nameko.standalone.rpc import ClusterRpcProxy

    urls = fresh_copies(migrated, tmp_path)
    identity_db = Database(urls["identity"])
    staff(identity_db, REGISTRAR, "student_affairs", name="刘老师")
    staff(identity_db, COUNSELOR, "counselor", "classes", (CLASS,), name="陈老师")
    declare(fresh_amqp_uri, bindings_of([RosterService, IdentityService]))
    for service, cls in (("roster", RosterService), ("identity", IdentityService)):
        container_factory(cls, {"AMQP_URI": fresh_amqp_uri, f"{service.upper()}_DATABASE_URL": urls[service]}).start()
    with ClusterRpcProxy({"AMQP_URI": fresh_amqp_uri}, timeout=30,
                         context_data={CONTEXT_KEY: system_caller("test").to_header()}) as rpc:
        rpc.roster.upsert_org_units([
            {"code": "01", "name": "计算机学院", "kind": "college"},
            {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
            {"code": CLASS, "name": "计科2301", "kind": "class", "parent_code": "0101"},
        ])
        rpc.roster.register_students([{**student(1, klass=CLASS), "student_number": EXAM, "exam_number": EXAM}])
    wait_for(lambda: _account(identity_db, EXAM))
    yield {"client": make_app(fresh_amqp_uri, XUEJI_RPC_TIMEOUT=10.0).test_client(), "identity_db": identity_db}
    identity_db.dispose()


def _account(db: Database, username: str) -> bool:
    with db.reading() as s:
        return s.scalar(select(Account.username).where(Account.username == username)) is not None


def csrf(client: FlaskClient) -> str:
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return token.value


def mapping_sheet(*rows: tuple[str, str, str]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["考生号", "学号", "姓名"])
    for row in rows:
        ws.append(list(row))
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def test_number_mapping_page_preview_apply_and_history(env: dict[str, Any]) -> None:
    client = env["client"]
    web_login(client, COUNSELOR, PASSWORD)
    assert client.get("/roster/numbers").status_code == 403
    client.post("/logout", data={"csrf_token": csrf(client)})

    web_login(client, REGISTRAR, PASSWORD)
    page = client.get("/roster/numbers").get_data(as_text=True)
    assert "学号换发" in page and "下载模板" in page
    template = client.get("/roster/numbers/template.xlsx")
    assert template.status_code == 200 and template.data.startswith(b"PK")

    bad = client.post("/roster/numbers", content_type="multipart/form-data", data={
        "csrf_token": csrf(client), "action": "preview",
        "file": (io.BytesIO(mapping_sheet((EXAM, "202301010201", "学生零一"))), "对照表.xlsx")}).get_data(as_text=True)
    assert "不能执行" in bad and "下载标注错误的文件" in bad

    preview = client.post("/roster/numbers", content_type="multipart/form-data", data={
        "csrf_token": csrf(client), "action": "preview",
        "file": (io.BytesIO(mapping_sheet((EXAM, NEW, "学生零一"))), "对照表.xlsx")}).get_data(as_text=True)
    assert "全部正确" in preview and "确认执行（1 人）" in preview
    token = preview.split('name="token" value="')[1].split('"')[0]
    done = client.post("/roster/numbers", data={"csrf_token": csrf(client), "action": "apply", "token": token,
                                                "reason": "教务〔2026〕12号"}).get_data(as_text=True)
    assert "执行完成：1 名学生已换发学号" in done
    history = client.get(f"/roster/numbers?student_number={EXAM}").get_data(as_text=True)
    assert f"现学号：<a href=\"/students/{NEW}\">{NEW}</a>" in history and "教务〔2026〕12号" in history
    wait_for(lambda: _account(env["identity_db"], NEW))  # identity renamed the account
    student_page = client.get(f"/students/{NEW}").get_data(as_text=True)
    assert "曾用学号" in student_page and EXAM in student_page

    api = client.get(f"/api/v1/roster/students/{EXAM}/number-changes").get_json()
    assert api["student_number"] == NEW and api["former_numbers"] == [EXAM]
    again = client.post("/api/v1/roster/number-mapping/apply", headers={"X-CSRF-Token": csrf(client)}, json={
        "content": base64.b64encode(mapping_sheet((EXAM, NEW, "学生零一"))).decode(), "reason": "重复提交"}).get_json()
    assert again["ok"] and again["changes"] == 0 and again["unchanged"] == 1


def test_photo_upload_view_zip_import_and_record_card(env: dict[str, Any]) -> None:
    client = env["client"]
    web_login(client, COUNSELOR, PASSWORD)
    bad = client.post(f"/roster/students/{EXAM}/photo", content_type="multipart/form-data", data={
        "csrf_token": csrf(client), "photo": (io.BytesIO(jpeg((295, 413))), "p.jpg")}).get_data(as_text=True)
    assert "照片尺寸须为 154×189 像素" in bad
    photo = jpeg(quality=80)
    ok = client.post(f"/roster/students/{EXAM}/photo", content_type="multipart/form-data", data={
        "csrf_token": csrf(client), "photo": (io.BytesIO(photo), "p.jpg")}).get_data(as_text=True)
    assert "照片已保存" in ok
    served = client.get(f"/roster/students/{EXAM}/photo.jpg")
    assert served.status_code == 200 and served.mimetype == "image/jpeg" and served.data == photo
    assert f'src="/roster/students/{EXAM}/photo.jpg"' in client.get(f"/students/{EXAM}").get_data(as_text=True)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{student(1, klass=CLASS)['national_id']}.jpg", jpeg(quality=70))
        zf.writestr("无名.jpg", photo)
    result = client.post("/roster/photos", content_type="multipart/form-data", data={
        "csrf_token": csrf(client), "file": (io.BytesIO(buffer.getvalue()), "照片.zip")}).get_data(as_text=True)
    assert "共 2 张，2 张不合格，未保存任何照片" in result and "文件名须为身份证件号" in result
    assert "已有照片" in result  # R12: the counselor cannot replace the photo
    assert client.get("/roster/photos").status_code == 200

    pages: list[str] = []

    def record(_sender: Flask, template: Any, context: dict[str, Any], **_extra: Any) -> None:
        if template.name == "print_record.html":
            pages.append(template.render(context))

    template_rendered.connect(record, client.application)
    try:
        card = client.get(f"/print/record/{EXAM}.pdf")
    finally:
        template_rendered.disconnect(record, client.application)
    assert card.status_code == 200 and card.mimetype == "application/pdf"
    assert f'src="data:image/jpeg;base64,{base64.b64encode(photo).decode()}"' in pages[0]


def test_photo_zip_over_the_api_with_the_pages_limits(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON (base64) and multipart give the same answer; each is refused past the page's own size limit,
    and any request body past the gateway's with 413."""
    client = env["client"]
    web_login(client, REGISTRAR, PASSWORD)
    headers = {"X-CSRF-Token": csrf(client)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{student(1, klass=CLASS)['national_id']}.jpg", jpeg(quality=80))
    archive = buffer.getvalue()
    as_json = client.post("/api/v1/roster/photos/import", headers=headers,
                          json={"content": base64.b64encode(archive).decode()}).get_json()
    as_file = client.post("/api/v1/roster/photos/import", headers=headers, content_type="multipart/form-data",
                          data={"file": (io.BytesIO(archive), "照片.zip")}).get_json()
    assert as_json["ok"] and as_json["saved"] == 1 and as_json["files"][0]["student_number"] == EXAM
    assert as_file["ok"] and as_file["unchanged"] == 1  # the same photo again

    monkeypatch.setattr("gateway.roster_web.MAX_PHOTO_ZIP_MB", 0)
    refused = client.post("/api/v1/roster/photos/import", headers=headers,
                          json={"content": base64.b64encode(archive).decode()})
    assert refused.status_code == 400 and refused.get_json()["error"]["message"] == "压缩包不能超过 0 MB"
    refused = client.post("/api/v1/roster/photos/import", headers=headers, content_type="multipart/form-data",
                          data={"file": (io.BytesIO(archive), "照片.zip")})
    assert refused.status_code == 400 and refused.get_json()["error"]["message"] == "压缩包不能超过 0 MB"
    photo = client.put(f"/api/v1/roster/students/{EXAM}/photo", headers=headers,
                       json={"content": base64.b64encode(b"\xff" * (1024 * 1024 + 1)).decode()})
    assert photo.status_code == 400 and photo.get_json()["error"]["message"] == "照片须小于 60 KB"

    client.application.config["MAX_CONTENT_LENGTH"] = 1024
    too_large = client.post("/api/v1/roster/photos/import", headers=headers, json={"content": "A" * 2048})
    assert too_large.status_code == 413 and too_large.get_json()["error"]["code"] == "too_large"
