"""组织机构 (`/roster/org`) and `/api/v1/roster/org-units` against the real roster service (identity is
the stand-in): the tree with codes and counts, adding units with their R6 codes assembled, errors beside
the field, renaming, 调整上级, deleting only empty units; read-only for academic affairs."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from gateway.tests import cluster
from gateway.tests.helpers import api_login, web_login
from services.common.caller import ACADEMIC_AFFAIRS, CONTEXT_KEY, Scope, system_caller
from services.common.db import Database
from services.common.migrate import upgrade
from services.roster.adapters.orm import OrgUnit, Student
from services.roster.service import RosterService
from services.roster.tests.test_org_units import sheet

XHR = {"X-Requested-With": "XMLHttpRequest"}
CLASS = "2023010101"
EMPTY_CLASS = "2023010102"
ACADEMIC = "2001005"


@pytest.fixture
def site(fresh_amqp_uri: str, tmp_path: Any, start_services: Callable[..., dict[str, Any]],
         container_factory: Any, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from nameko.standalone.rpc import ClusterRpcProxy

    monkeypatch.setitem(cluster.ACCOUNTS, ACADEMIC, {"display_name": "教务处王老师", "role": ACADEMIC_AFFAIRS,
                                                     "scope": Scope("institution")})
    url = f"sqlite:///{tmp_path}/roster.sqlite3"
    upgrade("roster", url)
    start_services(fresh_amqp_uri, "identity")
    container_factory(RosterService, {"AMQP_URI": fresh_amqp_uri, "ROSTER_DATABASE_URL": url}).start()
    with ClusterRpcProxy({"AMQP_URI": fresh_amqp_uri}, timeout=30,
                         context_data={CONTEXT_KEY: system_caller("test").to_header()}) as rpc:
        rpc.roster.upsert_org_units([
            {"code": "01", "name": "计算机学院", "kind": "college"},
            {"code": "0101", "name": "计科", "kind": "major", "parent_code": "01"},
            {"code": CLASS, "name": "计科2301", "kind": "class", "parent_code": "0101"},
            {"code": EMPTY_CLASS, "name": "计科2302", "kind": "class", "parent_code": "0101"},
        ])
    db = Database(url)
    now = datetime.now(UTC)
    with db.transaction() as s:  # two on campus, one graduated: the class counts 2 and is not empty
        for seat, status in ((1, "enrolled"), (2, "enrolled"), (3, "graduated")):
            s.add(Student(student_number=f"{CLASS}{seat:02d}", name=f"学生{seat}", gender="1", college_code="01",
                          class_code=CLASS, status=status, created_at=now, updated_at=now, major_code="0101"))
    yield make_app(fresh_amqp_uri, XUEJI_RPC_TIMEOUT=30.0).test_client(), db
    db.dispose()


def csrf(client: FlaskClient) -> str:
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return token.value


def post(client: FlaskClient, path: str = "/roster/org", **data: str) -> Any:
    return client.post(path, data={"csrf_token": csrf(client), **data})


def rows(page: str) -> list[tuple[str, str, str]]:
    """(code, kind, on-campus count) of each row of the tree, in order."""
    return re.findall(r"<td>(\d+)</td>\s*<td>(学院|专业|班级)</td>\s*<td>(\d+)</td>", page)


def units(db: Database) -> dict[str, tuple[str, str | None]]:
    with db.reading() as s:
        return {u.code: (u.name, u.parent_code) for u in s.query(OrgUnit)}


def menu_labels(html: str) -> list[str]:
    return re.findall(r'class="menu-item[^"]*"\s+href="[^"]*">([^<]+)</a>', html)


def test_the_tree_with_codes_and_counts_and_units_added_with_assembled_codes(site: Any) -> None:
    client, db = site
    web_login(client, "2001002")  # student affairs
    page = client.get("/roster/org").get_data(as_text=True)
    labels = menu_labels(page)
    assert labels[labels.index("学号换发") + 1] == "组织机构"
    assert rows(page) == [("01", "学院", "2"), ("0101", "专业", "2"), (CLASS, "班级", "2"), (EMPTY_CLASS, "班级", "0")]

    response = post(client, form="college", code="02", name="数学学院")
    assert response.status_code == 302 and "saved=02" in response.headers["Location"]
    assert "已保存：02" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert post(client, form="major", parent_code="02", major_no="01", name="数学").status_code == 302
    assert post(client, form="class", parent_code="0201", entry_year="2025", class_no="03",
                name="数学2503").status_code == 302
    assert units(db)["0201"] == ("数学", "02") and units(db)["2025020103"] == ("数学2503", "0201")
    page = client.get("/roster/org").get_data(as_text=True)
    assert [r[0] for r in rows(page)][-3:] == ["02", "0201", "2025020103"]


def test_a_refused_unit_shows_the_error_beside_its_field_and_saves_nothing(site: Any) -> None:
    client, db = site
    web_login(client, "2001002")
    before = units(db)
    page = post(client, form="class", parent_code="0101", entry_year="2025", class_no="3",
                name="计科253").get_data(as_text=True)
    assert re.search(r'name="class_no" value="3"[^>]*></label><span class="tag tag-danger field-error" '
                     r'role="alert">[^<]*班级代码应为 10 位数字', page)
    assert "提交的代码：<strong>202501013</strong>" in page
    page = post(client, form="major", parent_code="01", major_no="02", name="").get_data(as_text=True)
    assert re.search(r'name="name" value=""[^>]*></label><span class="tag tag-danger field-error"[^>]*>'
                     r'[^<]*请填写名称', page)
    page = post(client, form="major", parent_code="01", major_no="01", name="新专业").get_data(as_text=True)
    assert re.search(r'name="major_no" value="01"[^>]*></label><span class="tag tag-danger field-error"[^>]*>'
                     r'代码 0101 已被专业“计科”使用', page)
    assert units(db) == before


def test_rename_and_move_keep_the_code_and_the_move_asks_first(site: Any) -> None:
    client, db = site
    web_login(client, "2001002")
    post(client, form="college", code="02", name="数学学院")
    post(client, form="major", parent_code="02", major_no="01", name="数学")
    page = client.get(f"/roster/org?edit={CLASS}").get_data(as_text=True)
    confirm = re.search(r'value="move" class="btn"\s+data-confirm="([^"]+)"', page)
    assert confirm is not None and f"班级 {CLASS} 计科2301 将从 计科（0101）" in confirm.group(1)
    assert "代码与学生学号保持不变" in confirm.group(1)

    assert post(client, form="edit", code=CLASS, name="计科2301班", action="rename").status_code == 302
    assert units(db)[CLASS] == ("计科2301班", "0101")
    assert post(client, form="edit", code=CLASS, name="数学2301", parent_code="0201", action="move").status_code == 302
    assert units(db)[CLASS] == ("数学2301", "0201")
    page = client.get("/roster/org").get_data(as_text=True)
    assert rows(page) == [("01", "学院", "0"), ("0101", "专业", "0"), (EMPTY_CLASS, "班级", "0"),
                          ("02", "学院", "2"), ("0201", "专业", "2"), (CLASS, "班级", "2")]


def test_only_empty_units_offer_delete_and_a_refused_delete_says_why(site: Any) -> None:
    client, db = site
    web_login(client, "2001002")
    page = client.get("/roster/org").get_data(as_text=True)
    offered = re.findall(r'action="/roster/org/(\d+)/delete"[^>]*\s+data-confirm="([^"]+)"', page)
    assert offered == [(EMPTY_CLASS, f"确定删除班级 {EMPTY_CLASS} 计科2302 吗？")]
    page = post(client, f"/roster/org/{CLASS}/delete").get_data(as_text=True)
    assert "有 3 名学生的学籍记录" in page and CLASS in units(db)
    response = post(client, f"/roster/org/{EMPTY_CLASS}/delete")
    assert response.status_code == 302 and EMPTY_CLASS not in units(db)
    assert f"已删除：{EMPTY_CLASS}" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_academic_affairs_reads_it_and_changes_nothing_a_counselor_has_no_page(site: Any) -> None:
    client, db = site
    web_login(client, ACADEMIC)
    page = client.get("/roster/org").get_data(as_text=True)
    assert len(rows(page)) == 4 and "新增学院" not in page and "/delete" not in page and "修改</a>" not in page
    page = post(client, form="college", code="02", name="数学学院").get_data(as_text=True)
    assert "无权" in page and "02" not in units(db)

    web_login(client, "2001001")  # counselor of 2023010101
    assert client.get("/roster/org").status_code == 403
    assert "组织机构" not in menu_labels(client.get("/").get_data(as_text=True))


def test_api_lists_in_scope_saves_all_or_nothing_and_deletes_empty_units(site: Any) -> None:
    client, db = site
    api_login(client, "2001001")  # a counselor sees their class and what is above it
    listed = client.get("/api/v1/roster/org-units").get_json()
    assert [(r["code"], r["students"]) for r in listed["items"]] == [("01", 2), ("0101", 2), (CLASS, 2)]
    assert client.put("/api/v1/roster/org-units", json={"units": [{"code": "02", "name": "数学学院",
                                                                   "kind": "college"}]}, headers=XHR).status_code == 403

    api_login(client, "2001002")
    response = client.put("/api/v1/roster/org-units", headers=XHR, json={"units": [
        {"code": "02", "name": "数学学院", "kind": "college"},
        {"code": "0301", "name": "英语", "kind": "major", "parent_code": "03"}]})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == "parent_code" and "0301 上级单位 03 不存在" in error["message"]
    assert "02" not in units(db)
    assert client.put("/api/v1/roster/org-units", json={"units": []}, headers=XHR).status_code == 400
    response = client.put("/api/v1/roster/org-units", headers=XHR, json={"units": [
        {"code": "0201", "name": "数学", "kind": "major", "parent_code": "02"},
        {"code": "02", "name": "数学学院", "kind": "college"}]})
    assert response.status_code == 200 and response.get_json() == {"saved": 2}

    assert client.delete("/api/v1/roster/org-units/0101", headers=XHR).status_code == 409
    assert client.delete("/api/v1/roster/org-units/0909", headers=XHR).status_code == 404
    response = client.delete("/api/v1/roster/org-units/0201", headers=XHR)
    assert response.status_code == 200 and response.get_json() == {"deleted": "0201"}
    assert "0201" not in units(db)


def workbook(*rows: tuple[str, str, str, str | None]) -> io.BytesIO:
    return io.BytesIO(base64.b64decode(sheet(*rows)))


def upload(client: FlaskClient, *rows: tuple[str, str, str, str | None]) -> str:
    response = client.post("/roster/org/import", content_type="multipart/form-data", data={
        "csrf_token": csrf(client), "action": "preview", "file": (workbook(*rows), "组织机构.xlsx")})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_import_by_sheet_previews_marks_errors_and_applies_on_confirmation(site: Any) -> None:
    client, db = site
    web_login(client, "2001002")
    template = client.get("/roster/org/template.xlsx")
    assert load_workbook(io.BytesIO(template.data)).worksheets[0]["B1"].value == "代码"

    page = upload(client, ("学院", "02", "数学学院", None), ("专业", "0201", "数学", "02"),
                  ("班级", "2025020201", "数学2501", "0201"))
    assert "发现 1 处错误（1 行），不能导入" in page and "第 5–8 位应为所属专业的代码 0201" in page
    link = re.search(r'href="(/roster/org/import/result/[^"]+\.xlsx)"', page)
    assert link is not None
    annotated = load_workbook(io.BytesIO(client.get(link.group(1)).data))
    assert annotated.worksheets[0]["B4"].comment is not None and "02" not in units(db)

    page = upload(client, ("学院", "02", "数学学院", None), ("专业", "0201", "数学", "02"),
                  ("班级", "2025020101", "数学2501", "0201"), ("班级", CLASS, "计科2301", "0101"))
    assert "全部正确（新增 3，修改 0，无变化 1）" in page and "02" not in units(db)
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None and 'data-confirm="确认导入吗？将新增 3 个、修改 0 个组织单位' in page
    page = post(client, "/roster/org/import", action="apply", token=token.group(1)).get_data(as_text=True)
    assert "导入完成：新增 3 个，修改 0 个，无变化 1 个" in page
    assert units(db)["2025020101"] == ("数学2501", "0201")
    assert ("2025020101", "班级", "0") in rows(page)
