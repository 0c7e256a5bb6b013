"""学籍异动 pages and API (issue 5) against the real roster and housing services (in-process nameko
containers on a fresh vhost, SQLite); identity is the stand-in, with the roles these pages need."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from gateway.tests import cluster
from gateway.tests.helpers import api_login, fresh_copies, migrated_templates, web_login
from services.common.caller import (
    ACADEMIC_AFFAIRS,
    AUTHORITY,
    CONTEXT_KEY,
    COUNSELOR,
    DEPUTY_SECRETARY,
    Scope,
    system_caller,
)
from services.common.db import Database
from services.common.testing import wait_for
from services.common.topology import bindings_of, declare
from services.housing.service import HousingService
from services.housing.tests.factories import room_beds
from services.roster.adapters.orm import Student
from services.roster.service import RosterService
from services.roster.tests.factories import student

XHR = {"X-Requested-With": "XMLHttpRequest"}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
MINE = "2023010101"  # the stand-in counselor 2001001's class
OTHER = "2023010102"  # same college, another counselor's
ELSEWHERE = "2023020101"  # another college
STAFF = {
    "2001003": {"display_name": "教务处孙老师", "role": ACADEMIC_AFFAIRS, "scope": Scope("institution")},
    "2001005": {"display_name": "教育局吴科长", "role": AUTHORITY, "scope": Scope("area", ("110101",))},
    "2001006": {"display_name": "计算机学院郑书记", "role": DEPUTY_SECRETARY, "scope": Scope("college", ("01",))},
    "2001007": {"display_name": "辅导员冯老师", "role": COUNSELOR, "scope": Scope("classes", (OTHER,))},
}
AA, AUTH, DEPUTY, SA, MY_COUNSELOR, IT = "2001003", "2001005", "2001006", "2001002", "2001001", "2001004"
BED_HOLDER = f"{MINE}01"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each service's database migrated once; every test gets a copy."""
    return migrated_templates(tmp_path_factory.mktemp("status-web"), "roster", "housing")


@pytest.fixture
def env(fresh_amqp_uri: str, tmp_path: Path, migrated: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        start_services: Callable[..., dict[str, Any]], container_factory: Any,
        make_app: Callable[..., Flask]) -> Iterator[dict[str, Any]]:
    """identity (stand-in), roster and housing running; students in three classes, one holding a bed."""
    from nameko.standalone.rpc import ClusterRpcProxy

    for username, account in STAFF.items():
        monkeypatch.setitem(cluster.ACCOUNTS, username, account)
    urls = fresh_copies(migrated, tmp_path)
    declare(fresh_amqp_uri, bindings_of([RosterService, HousingService]))
    start_services(fresh_amqp_uri, "identity")
    containers = {
        "roster": container_factory(RosterService, {"AMQP_URI": fresh_amqp_uri, "ROSTER_DATABASE_URL": urls["roster"]}),
        "housing": container_factory(HousingService, {"AMQP_URI": fresh_amqp_uri,
                                                      "HOUSING_DATABASE_URL": urls["housing"]}),
    }
    for container in containers.values():
        container.start()
    students = [student(seat, klass=klass, born=date(2005, 3, 1 + n))
                for n, klass in enumerate((MINE, OTHER, ELSEWHERE)) for seat in (1, 2, 3)]
    system = {CONTEXT_KEY: system_caller("test").to_header()}
    with ClusterRpcProxy({"AMQP_URI": fresh_amqp_uri}, timeout=30, context_data=system) as rpc:
        rpc.roster.upsert_org_units([
            {"code": "01", "name": "计算机学院", "kind": "college"},
            {"code": "02", "name": "外国语学院", "kind": "college"},
            {"code": "0101", "name": "计科", "kind": "major", "parent_code": "01"},
            {"code": "0201", "name": "英语", "kind": "major", "parent_code": "02"},
            {"code": MINE, "name": "计科2301", "kind": "class", "parent_code": "0101"},
            {"code": OTHER, "name": "计科2302", "kind": "class", "parent_code": "0101"},
            {"code": ELSEWHERE, "name": "英语2301", "kind": "class", "parent_code": "0201"},
        ])
        rpc.roster.register_students(students)
        wait_for(lambda: rpc.housing.health()["students_known"] == len(students))
        rpc.housing.create_beds(room_beds("B1", "1号楼", "M", "101"))
        rpc.housing.assign_bed(BED_HOLDER, "1号楼-101-1")
    roster_db = Database(urls["roster"])
    yield {"client": make_app(fresh_amqp_uri, XUEJI_RPC_TIMEOUT=10.0).test_client(), "containers": containers,
           "uri": fresh_amqp_uri, "roster_db": roster_db}
    roster_db.dispose()


def text_of(response: Any) -> str:
    return response.get_data(as_text=True)


def csrf(client: FlaskClient) -> str:
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return token.value


def post(client: FlaskClient, path: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf(client), **data}, content_type="multipart/form-data")


def status_of(env: dict[str, Any], number: str) -> str:
    with env["roster_db"].reading() as s:
        return s.scalar(select(Student.status).where(Student.student_number == number)) or ""


# -- 办理异动 with evidence, the timeline, 撤销 ------------------------------------------------------------


def test_status_form_applies_a_change_with_a_pdf_and_the_timeline_links_it(env: dict[str, Any]) -> None:
    client = env["client"]
    number = f"{MINE}02"
    web_login(client, AA)
    page = text_of(client.get(f"/roster/status/{number}"))
    assert "办理异动" in page and "学籍状态" in page and "暂无异动记录" in page
    kinds = re.findall(r'<option value="(\w+)"', page)
    assert "suspend" in kinds and "withdraw" in kinds and "resume" not in kinds  # from 在读 only

    # Evidence is required: refused inline, in Chinese, and what was typed stays in the form.
    page = text_of(post(client, f"/roster/status/{number}", action="apply", kind="withdraw",
                        effective_on="2027-03-01", reason="本人申请退学"))
    assert "退学须有证明材料：上传附件或填写文号" in page and 'value="本人申请退学"' in page
    page = text_of(post(client, f"/roster/status/{number}", action="apply", kind="suspend",
                        effective_on="2027-03-01", reason="病休", files=(io.BytesIO(b"hello"), "说明.txt")))
    assert "应为 PDF、JPEG 或 PNG 文件" in page
    assert status_of(env, number) == "enrolled"

    response = post(client, f"/roster/status/{number}", action="apply", kind="suspend", effective_on="2027-03-01",
                    reason="因病休学", until="2028-02-28", files=[(io.BytesIO(PDF), "诊断证明.pdf")])
    page = text_of(response)
    assert response.status_code == 200 and "办理成功，学籍状态：休学" in page
    assert "在读 → 休学" in page and "因病休学" in page and "休学截止：2028-02-28" in page and AA in page
    link = re.search(r'href="(/roster/status/attachments/\d+)">诊断证明.pdf</a>', page)
    assert link is not None
    download = client.get(link.group(1))
    assert download.status_code == 200 and download.data == PDF and download.mimetype == "application/pdf"
    assert "attachment" in download.headers["Content-Disposition"]
    assert status_of(env, number) == "suspended"
    kinds = re.findall(r'<option value="(\w+)"', page)
    assert "resume" in kinds and "suspend" not in kinds  # now from 休学

    # 撤销 on the latest change restores what it replaced, and the timeline marks it.
    change_id = re.search(r'name="change_id" value="(\d+)"', page)
    assert change_id is not None
    page = text_of(post(client, f"/roster/status/{number}", action="revoke", change_id=change_id.group(1),
                        revoke_reason="误办"))
    assert "已撤销，学籍状态恢复为：在读" in page and "已撤销" in page and "撤销异动" in page
    assert status_of(env, number) == "enrolled"
    assert 'name="change_id"' not in page  # a revocation is not revoked again

    # The student page links here for staff who may use it.
    assert f'href="/roster/status/{number}"' in text_of(client.get(f"/students/{number}"))


def test_forbidden_roles_get_the_chinese_refusal(env: dict[str, Any]) -> None:
    client = env["client"]
    web_login(client, MY_COUNSELOR)
    # Counselors apply only their kinds: 退学 is neither offered nor accepted.
    page = text_of(client.get(f"/roster/status/{MINE}01"))
    kinds = re.findall(r'<option value="(\w+)"', page)
    assert "graduate" in kinds and "withdraw" not in kinds
    page = text_of(post(client, f"/roster/status/{MINE}01", action="apply", kind="withdraw",
                        effective_on="2027-03-01", reason="x", evidence="文号1"))
    assert "您的角色不能办理退学" in page
    response = client.get(f"/roster/status/{ELSEWHERE}01")  # outside the counselor's classes
    assert response.status_code == 403 and "不在您的数据权限范围内" in text_of(response)
    for path in ("/roster/calendar", "/roster/status/applications"):
        response = client.get(path)
        assert response.status_code == 403 and "您没有权限访问该页面" in text_of(response), path

    web_login(client, IT)
    assert client.get(f"/roster/status/{MINE}01").status_code == 403
    assert client.get("/roster/status/batch").status_code == 403
    web_login(client, f"{MINE}02")
    response = client.get("/roster/status")
    assert response.status_code == 403 and "您没有权限访问该页面" in text_of(response)

    api_login(client, MY_COUNSELOR)
    response = client.post(f"/api/v1/roster/students/{MINE}01/status-changes", headers=XHR, json={
        "kind": "withdraw", "effective_on": "2027-03-01", "reason": "x", "evidence": "文号1"})
    assert response.status_code == 403
    assert response.get_json() == {"error": {"code": "forbidden", "message": "您的角色不能办理退学"}}


# -- 调班 on the same page ---------------------------------------------------------------------------------


def test_class_move_form_by_role(env: dict[str, Any]) -> None:
    client = env["client"]
    web_login(client, MY_COUNSELOR)
    page = text_of(post(client, f"/roster/status/{MINE}03", action="move", to_class=OTHER, move_reason="转专业方向"))
    assert "须由党总支副书记办理" in page and "调班成功" not in page  # another counselor's class
    web_login(client, DEPUTY)
    page = text_of(post(client, f"/roster/status/{MINE}03", action="move", to_class=OTHER, move_reason="转专业方向"))
    assert f"调班成功，已调入班级 {OTHER}" in page and "计科2301" in page and "转专业方向" in page
    web_login(client, AA)
    assert 'name="to_class"' not in text_of(client.get(f"/roster/status/{MINE}02"))  # not a class mover


# -- 批量异动 ---------------------------------------------------------------------------------------------


def sheet(client: FlaskClient, rows: list[list[str]]) -> io.BytesIO:
    """The downloaded template filled in as an operator would."""
    template = client.get("/roster/status/batch/template.xlsx")
    assert template.status_code == 200 and "attachment" in template.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(template.data))
    ws = workbook.worksheets[0]
    assert [c.value for c in ws[1]][:3] == ["学号", "姓名", "异动类型"]
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    workbook.save(out)
    out.seek(0)
    return out


def test_batch_preview_lists_rows_then_applies_and_errors_name_row_and_column(env: dict[str, Any]) -> None:
    client = env["client"]
    web_login(client, AA)
    assert "下载模板" in text_of(client.get("/roster/status/batch"))
    bad = sheet(client, [[f"{MINE}02", "学生零二", "休学", "2027-03-01", "病休", "教务〔2027〕1号"],
                         [f"{MINE}03", "别人", "复学", "2027/03/01", "返校", "教务〔2027〕2号"]])
    page = text_of(post(client, "/roster/status/batch", action="preview", file=(bad, "异动.xlsx")))
    assert "发现 3 处错误（1 行），不能执行" in page and "确认执行（" not in page
    assert re.search(r"<td>3</td><td>B</td><td>姓名</td><td>别人</td><td>姓名与学籍记录不一致", page)
    assert re.search(r"<td>3</td><td>D</td><td>生效日期</td>", page)
    assert "学籍状态为“在读”，不能办理复学" in page
    link = re.search(r'href="(/roster/status/batch/result/[^"]+\.xlsx)"', page)
    assert link is not None
    assert "错误说明" in load_workbook(io.BytesIO(client.get(link.group(1)).data)).sheetnames

    good = sheet(client, [[f"{MINE}02", "学生零二", "休学", "2027-03-01", "病休", "教务〔2027〕1号"],
                          [f"{OTHER}01", "学生零一", "退学", "2027-03-01", "本人申请", "教务〔2027〕3号"]])
    page = text_of(post(client, "/roster/status/batch", action="preview", file=(good, "异动.xlsx")))
    assert "预览：共 2 行，全部正确" in page and "在读 → 休学" in page and "在读 → 退学" in page
    assert status_of(env, f"{MINE}02") == "enrolled"  # a preview changes nothing
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None
    page = text_of(post(client, "/roster/status/batch", action="apply", token=token.group(1)))
    assert "执行完成：已办理 2 名学生的学籍异动" in page
    assert (status_of(env, f"{MINE}02"), status_of(env, f"{OTHER}01")) == ("suspended", "withdrawn")
    page = text_of(post(client, "/roster/status/batch", action="apply", token=token.group(1)))
    assert "文件已过期，请重新上传" in page  # a second click does not apply it again

    web_login(client, MY_COUNSELOR)  # someone else's kept file is not theirs either
    assert client.get(link.group(1)).status_code == 404


# -- 异动审批 (authority) and 学籍日历 ------------------------------------------------------------------------


def test_settings_approval_by_the_authority_and_calendar_jobs(env: dict[str, Any]) -> None:
    client = env["client"]
    number = f"{OTHER}02"
    web_login(client, SA)
    page = text_of(client.get("/roster/calendar"))
    assert "学籍日历设置" in page and "迎新截止日期" in page and "暂无执行记录" in page
    page = text_of(post(client, "/roster/calendar", action="setting", key="authority_approval_kinds", value="suspend"))
    assert "保存成功" in page
    page = text_of(post(client, "/roster/calendar", action="setting", key="suspect_days", value="0"))
    assert "无效" in page  # roster's own message for a threshold out of range

    web_login(client, AA)
    page = text_of(post(client, f"/roster/status/{number}", action="apply", kind="suspend", effective_on="2027-03-01",
                        reason="病休", evidence="教务〔2027〕5号"))
    assert "已提交学籍主管部门审批" in page and status_of(env, number) == "enrolled"
    assert 'name="to_class"' not in page and "异动审批" not in page  # not the authority's menu

    web_login(client, AUTH)
    page = text_of(client.get("/roster/status/applications"))
    assert number in page and "病休" in page and "批准" in page
    application = re.search(r'name="application_id" value="(\d+)"', page)
    assert application is not None
    page = text_of(post(client, "/roster/status/applications", application_id=application.group(1), approve="0"))
    assert "不同意时请填写理由" in page
    page = text_of(post(client, "/roster/status/applications", application_id=application.group(1), approve="1"))
    assert "已批准，异动已生效" in page and status_of(env, number) == "suspended"

    # Jobs: a dry run lists who changes and changes nothing; the run is once per period.
    web_login(client, AA)
    page = text_of(client.get("/roster/calendar?job=welcome"))
    assert "尚未设置迎新截止日期" in page
    page = text_of(client.get("/roster/calendar?job=promotion&on=2026-08-01"))
    assert "预览：升级（周期 2026" in page and f"{MINE}01" in page and "执行（" in page
    assert 'name="value"' not in page  # settings are student affairs' to edit
    page = text_of(post(client, "/roster/calendar", action="run", job="promotion", on="2026-08-01"))
    assert re.search(r"升级（2026）执行完成，涉及 \d+ 名学生", page)
    assert re.search(r"<td>升级</td><td>2026</td>", page)
    page = text_of(post(client, "/roster/calendar", action="run", job="promotion", on="2026-08-01"))
    assert "升级（2026）已执行过，本次未作任何修改" in page
    assert "该周期已执行过" in text_of(client.get("/roster/calendar?job=promotion&on=2026-08-01"))


# -- 缺勤登记 → 疑似辍学 --------------------------------------------------------------------------------------


def test_absences_by_day_lead_to_the_suspected_dropout_list(env: dict[str, Any]) -> None:
    client = env["client"]
    number, excused = f"{MINE}03", f"{MINE}02"
    web_login(client, MY_COUNSELOR)
    page = text_of(client.get("/roster/absences?day=2026-11-16"))
    assert f'name="absent" value="{number}"' in page and f"{OTHER}01" not in page  # own classes only
    for day in ("2026-11-16", "2026-11-17", "2026-11-18"):
        page = text_of(post(client, f"/roster/absences?day={day}", action="record", day=day, absent=[number, excused],
                            excused=[excused], **{f"note_{number}": "电话无人接听"}))
        assert f"已保存 {day} 的缺勤：新增 2 人" in page
    assert "电话无人接听" in page and re.search(rf'value="{number}" aria-label="[^"]+ 缺勤" checked', page)
    page = text_of(post(client, "/roster/absences", action="record", day="2026-11-18"))
    assert "请勾选缺勤的学生" in page
    page = text_of(post(client, "/roster/absences", action="reported", student_numbers=f"{MINE}01 {MINE}02"))
    assert "已登记报到 2 人" in page
    template = client.get("/roster/absences/template.xlsx")
    assert template.status_code == 200 and load_workbook(io.BytesIO(template.data)).worksheets[0]["A1"].value == "学号"

    web_login(client, SA)
    preview = text_of(client.get("/roster/calendar?job=dropout&on=2026-11-18"))
    listed = preview.split("预览：")[1].split("执行记录")[0]
    assert number in listed and "疑似辍学" in listed and excused not in listed and "执行（1 人）" in listed
    assert status_of(env, number) == "enrolled"
    page = text_of(post(client, "/roster/calendar", action="run", job="dropout", on="2026-11-18"))
    assert "缺勤检查（疑似辍学、辍学）（2026-11-18）执行完成，涉及 1 名学生" in page
    assert status_of(env, number) == "suspected_dropout"

    web_login(client, MY_COUNSELOR)
    page = text_of(client.get("/roster/dropouts"))
    assert re.search(rf"<td>{number}</td><td>[^<]+</td><td>{MINE}</td>.*疑似辍学.*<td>3</td><td>2026-11-18</td>",
                     page, re.S)
    assert excused not in page


# -- 待毕业名单 with housing's beds ---------------------------------------------------------------------------


def test_pending_graduations_show_held_beds_and_degrade_without_housing(env: dict[str, Any],
                                                                        make_app: Callable[..., Flask]) -> None:
    client = env["client"]
    web_login(client, MY_COUNSELOR)
    for number, reason in ((BED_HOLDER, "学分未修满"), (f"{MINE}02", "毕业论文未通过")):
        page = text_of(post(client, "/roster/pending-graduations", student_number=number, reason=reason,
                            expected_on="2027-12-31"))
        assert f"已将 {number} 加入待毕业名单" in page
    page = text_of(post(client, "/roster/pending-graduations", student_number=BED_HOLDER, reason="重复"))
    assert "已在待毕业名单中" in page
    assert "是否仍占床位" in page and "宿舍信息暂不可用" not in page
    assert re.search(rf"<td>{BED_HOLDER}</td>.*?学分未修满.*?2027-12-31.*?是</span> 1号楼-101-1", page, re.S)
    assert re.search(rf"<td>{MINE}02</td>.*?毕业论文未通过.*?否</span>", page, re.S)
    entry = re.search(r'name="entry_id" value="(\d+)"', page)
    assert entry is not None

    env["containers"]["housing"].stop()
    slow = make_app(env["uri"], XUEJI_RPC_TIMEOUT=1.0).test_client()
    web_login(slow, MY_COUNSELOR)
    response = slow.get("/roster/pending-graduations")
    page = text_of(response)
    assert response.status_code == 200 and "宿舍信息暂不可用" in page
    assert BED_HOLDER in page and "学分未修满" in page and "暂不可用</span>" in page
    api_login(slow, MY_COUNSELOR)
    body = slow.get("/api/v1/roster/pending-graduations").get_json()
    assert body["housing_available"] is False and {i["holds_bed"] for i in body["items"]} == {None}

    page = text_of(post(slow, "/roster/pending-graduations", action="close", entry_id=entry.group(1), note="已补修"))
    assert "已移出待毕业名单" in page and "学分未修满" not in page


# -- the JSON API ------------------------------------------------------------------------------------------


def test_api_answers_with_the_documented_shapes(env: dict[str, Any]) -> None:
    client = env["client"]
    number = f"{OTHER}03"
    api_login(client, AA)
    kinds = client.get("/api/v1/roster/status-kinds").get_json()
    assert {"code", "label", "to_status", "to_label", "from_statuses", "evidence_required"} <= set(kinds[0])
    response = client.post(f"/api/v1/roster/students/{number}/status-changes", headers=XHR, json={
        "kind": "transfer_out", "effective_on": "2027-03-01", "reason": "随父母转学",
        "details": {"destination": "北京大学"},
        "attachments": [{"filename": "转学函.pdf", "data": base64.b64encode(PDF).decode()}]})
    assert response.status_code == 200
    applied = response.get_json()
    assert applied == {"applied": True, "change_id": applied["change_id"], "status": "transferred_out",
                       "status_label": "转出"}
    timeline = client.get(f"/api/v1/roster/students/{number}/status-changes").get_json()
    assert timeline[-1]["kind_label"] == "转出" and timeline[-1]["details"] == {"destination": "北京大学"}
    file = client.get(f"/api/v1/roster/status-attachments/{timeline[-1]['attachments'][0]['id']}").get_json()
    assert base64.b64decode(file["data"]) == PDF and file["content_type"] == "application/pdf"
    response = client.post(f"/api/v1/roster/status-changes/{applied['change_id']}/revoke", headers=XHR, json={})
    assert response.status_code == 400 and response.get_json()["error"] == {"code": "invalid",
                                                                            "message": "请填写撤销原因"}
    revoked = client.post(f"/api/v1/roster/status-changes/{applied['change_id']}/revoke", headers=XHR,
                          json={"reason": "转学取消"}).get_json()
    assert revoked["status"] == "enrolled" and revoked["status_label"] == "在读"

    preview = client.get("/api/v1/roster/calendar/promotion?on=2026-08-01").get_json()
    assert {"job", "period", "already_ran", "count", "rows"} <= set(preview)
    assert preview["count"] == len(preview["rows"]) > 0
    assert {"student_number", "name", "class_code", "from", "to", "reason"} <= set(preview["rows"][0])
    run = client.post("/api/v1/roster/calendar/promotion", headers=XHR, json={"on": "2026-08-01"}).get_json()
    assert run == {"job": "promotion", "period": "2026", "affected": preview["count"], "already_ran": False}
    assert client.post("/api/v1/roster/calendar/promotion", headers=XHR,
                       json={"on": "2026-08-01"}).get_json()["already_ran"] is True
    assert client.get("/api/v1/roster/calendar-runs").get_json()[0]["job"] == "promotion"
    response = client.get("/api/v1/roster/calendar/harvest")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"

    added = client.post("/api/v1/roster/pending-graduations", headers=XHR, json={
        "student_number": BED_HOLDER, "reason": "学分未修满", "expected_on": "2027-12-31"}).get_json()
    assert added["student_number"] == BED_HOLDER and added["state"] == "open"
    body = client.get("/api/v1/roster/pending-graduations").get_json()
    assert body["housing_available"] is True
    assert body["items"][0]["holds_bed"] is True and body["items"][0]["bed"]["bed_label"] == "1号楼-101-1"
    closed = client.post(f"/api/v1/roster/pending-graduations/{added['id']}/close", headers=XHR, json={}).get_json()
    assert closed["state"] == "closed"

    api_login(client, SA)  # cross-college moves are student affairs'
    moved = client.post(f"/api/v1/roster/students/{number}/class", headers=XHR,
                        json={"to_class": ELSEWHERE, "reason": "转专业"}).get_json()
    assert (moved["old_class_code"], moved["new_class_code"]) == (OTHER, ELSEWHERE)
    assert client.get(f"/api/v1/roster/students/{number}/class-moves").get_json()[0]["reason"] == "转专业"
    response = client.post(f"/api/v1/roster/students/{number}/status-changes", headers=XHR,
                           json={"kind": "suspend", "effective_on": "2027-03-01", "reason": "x", "evidence": "y"})
    assert response.status_code == 403 and response.get_json()["error"]["message"] == "您的角色不能办理休学"
