"""转学 pages and API (issue 8) against the real roster and transfer services (in-process nameko containers
on a fresh vhost, SQLite), identity as the stand-in with the roles these pages need, and another
institution played by the peer simulator (tests/peer.py) over the same broker."""

from __future__ import annotations

import base64
import io
import re
import uuid
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
    DEPUTY_SECRETARY,
    Scope,
    system_caller,
)
from services.common.db import Database
from services.common.testing import wait_for
from services.common.topology import bindings_of, declare
from services.roster.adapters.orm import Student
from services.roster.service import RosterService
from services.roster.tests.factories import student
from services.transfer.outgoing import own_code
from services.transfer.service import TransferService
from tests.peer import PeerInstitution

XHR = {"X-Requested-With": "XMLHttpRequest"}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PEER, PEER_NAME = "4133010002", "杭州市第二中学"
MINE = "2023010101"  # the stand-in counselor 2001001's class
ELSEWHERE = "2023020101"  # another college, another major
STAFF = {
    "2001003": {"display_name": "教务处孙老师", "role": ACADEMIC_AFFAIRS, "scope": Scope("institution")},
    "2001005": {"display_name": "教育局吴科长", "role": AUTHORITY, "scope": Scope("area", ("420100",))},
    "2001006": {"display_name": "计算机学院郑书记", "role": DEPUTY_SECRETARY, "scope": Scope("college", ("01",))},
    "2001008": {"display_name": "外国语学院钱书记", "role": DEPUTY_SECRETARY, "scope": Scope("college", ("02",))},
}
AA, AUTH, DEPUTY, SA, MY_COUNSELOR, IT = "2001003", "2001005", "2001006", "2001002", "2001001", "2001004"
NEWCOMER = {"national_student_id": "G330106200602020021", "name": "林小雨", "gender": "2", "birth_date": "2006-02-02",
            "id_type": "1", "id_number": "330106200602020021", "outflow_student_number": "20230105"}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each service's database migrated once; every test gets a copy."""
    return migrated_templates(tmp_path_factory.mktemp("transfer-web"), "roster", "transfer")


@pytest.fixture
def env(fresh_amqp_uri: str, tmp_path: Path, migrated: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        start_services: Callable[..., dict[str, Any]], container_factory: Any,
        make_app: Callable[..., Flask]) -> Iterator[dict[str, Any]]:
    """identity (stand-in), roster and transfer running; students in two colleges known to both."""
    from nameko.standalone.rpc import ClusterRpcProxy

    for username, account in STAFF.items():
        monkeypatch.setitem(cluster.ACCOUNTS, username, account)
    urls = fresh_copies(migrated, tmp_path)
    declare(fresh_amqp_uri, bindings_of([RosterService, TransferService]))
    start_services(fresh_amqp_uri, "identity")
    for service, url in ((RosterService, urls["roster"]), (TransferService, urls["transfer"])):
        container_factory(service, {"AMQP_URI": fresh_amqp_uri, f"{service.name.upper()}_DATABASE_URL": url}).start()
    students = [student(seat, klass=klass, born=date(2005, 3, 1 + n))
                for n, klass in enumerate((MINE, ELSEWHERE)) for seat in (1, 2, 3)]
    system = {CONTEXT_KEY: system_caller("test").to_header()}
    with ClusterRpcProxy({"AMQP_URI": fresh_amqp_uri}, timeout=30, context_data=system) as rpc:
        rpc.roster.upsert_org_units([
            {"code": "01", "name": "计算机学院", "kind": "college"},
            {"code": "02", "name": "外国语学院", "kind": "college"},
            {"code": "0101", "name": "计科", "kind": "major", "parent_code": "01"},
            {"code": "0201", "name": "英语", "kind": "major", "parent_code": "02"},
            {"code": MINE, "name": "计科2301", "kind": "class", "parent_code": "0101"},
            {"code": ELSEWHERE, "name": "英语2301", "kind": "class", "parent_code": "0201"},
        ])
        rpc.roster.register_students(students)
        wait_for(lambda: rpc.transfer.health()["students_known"] == len(students))
    roster_db = Database(urls["roster"])
    peers: list[PeerInstitution] = []
    yield {"client": make_app(fresh_amqp_uri, XUEJI_RPC_TIMEOUT=15.0).test_client(), "uri": fresh_amqp_uri,
           "roster_db": roster_db, "students": {s["student_number"]: s for s in students}, "peers": peers}
    for peer in peers:
        peer.close()
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


def cells(page: str) -> list[str]:
    """The table cells' texts, tags stripped (to find a row's columns in order)."""
    return [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", page, re.S)]


def connect_peer(env: dict[str, Any]) -> PeerInstitution:
    """The IT centre adds the peer and generates a key on the page; the peer signs with what was shown."""
    client = env["client"]
    web_login(client, IT)
    page = text_of(post(client, "/transfers/peers", action="save_peer", code=PEER, name=PEER_NAME, province="33",
                        authority_code="330100", active="1"))
    assert f"单位 {PEER} 已保存" in page
    page = text_of(post(client, "/transfers/peers", action="add_key", peer_code=PEER, key_id="k1", secret=""))
    shown = re.search(r'<code class="secret">([^<]+)</code>', page)
    assert shown is not None and "新密钥只显示这一次" in page
    peer = PeerInstitution(env["uri"], PEER, partner=own_code(), keys={"k1": base64.b64decode(shown.group(1))})
    env["peers"].append(peer.start())
    return peer


def days_left_of(page: str, name: str) -> str:
    row = re.search(rf"{name}</a></td>.*?</tr>", page, re.S)
    assert row is not None, name
    found = re.search(r'<span class="([^"]*)">(-?\d+)</span>', row.group(0))
    assert found is not None
    return f"{found.group(1)}|{found.group(2)}"


# -- 转学申请 → the authority's queue → 同意 → the request goes out -------------------------------------------


def test_filed_transfer_reaches_the_authority_queue_and_its_approval_sends_the_request(env: dict[str, Any]) -> None:
    client = env["client"]
    peer = connect_peer(env)
    web_login(client, SA)
    page = text_of(post(client, "/transfers/calendar", action="setting", key="deadline_days", value="3"))
    assert "已保存" in page

    page = text_of(client.get("/transfers/new"))
    assert f'<option value="{PEER}">{PEER_NAME}（{PEER}）</option>' in page
    # codes labelled by their owners: roster's code tables, the transfer service's kinds
    assert '<option value="9">其他</option>' in page and '<option value="2">女</option>' in page
    assert '<option value="inter_province">跨省转学</option>' in page
    assert 'name="out_of_term_reason"' not in page  # no term windows set: the field is not asked for
    form = {**NEWCOMER, "peer_code": PEER, "transfer_kind": "intra_province", "target_class_code": MINE,
            "reason": "随父母工作调动"}
    page = text_of(post(client, "/transfers/new", **{**form, "target_class_code": "2099999999"},
                        files=(io.BytesIO(PDF), "转学申请表.pdf")))
    assert "转入班级 2099999999 不存在" in page and 'value="林小雨"' in page  # typed values stay
    response = post(client, "/transfers/new", **form, files=[(io.BytesIO(PDF), "转学申请表.pdf"),
                                                             (io.BytesIO(PDF), "户籍证明.pdf")])
    assert response.status_code == 302
    detail_url = response.headers["Location"].split("?")[0]
    page = text_of(client.get(response.headers["Location"]))
    assert "转学申请已提交，等待转入地学籍主管部门审批" in page and "待转入地主管部门审批" in page
    assert "<dt>性别</dt><dd>女</dd>" in page  # labelled by the service
    links = re.findall(r'href="(/transfers/[^"]+/evidence/\d+)">([^<]+)</a>', page)
    assert [name for _, name in links] == ["转学申请表.pdf", "户籍证明.pdf"]
    download = client.get(links[0][0])
    assert download.data == PDF and download.mimetype == "application/pdf"
    assert "暂无消息" in page  # nothing goes to the peer before our authority approved

    web_login(client, AUTH)
    page = text_of(client.get("/transfers/approvals"))
    assert "转入地主管部门审核（转入，待审 1 件）" in page
    assert days_left_of(page, "林小雨").startswith("tag tag-danger|")  # three working days or fewer: red
    assert "转出学校审核" not in page  # the school's stage is not the authority's
    page = text_of(post(client, "/transfers/approvals", transfer_id=detail_url.rsplit("/", 1)[1],
                        stage="inflow_authority", approve="0", reason=""))
    assert "不同意时请填写理由" in page
    page = text_of(post(client, detail_url, action="decide", stage="inflow_authority", approve="1", reason="同意转入"))
    assert "转入地主管部门审核：已同意" in page and "待转出学校审核" in page
    row = cells(page)
    assert row[row.index("转入地主管部门"):][:3] == ["转入地主管部门", "同意", "同意转入"]

    request = peer.wait("transfer.request")[0]  # verified by the peer with the key shown on the page
    assert request["payload"]["student"]["name"] == "林小雨"

    def acked() -> bool:
        return "对方已确认" in text_of(client.get(detail_url))

    wait_for(acked)
    page = text_of(client.get(detail_url))
    assert re.search(r"<td>发出</td>\s*<td>转学申请</td>\s*<td><span class=\"tag tag-success\">对方已确认", page)
    assert request["message_id"] in page
    assert "撤销转学" not in page  # the authority does not cancel; the school's offices do
    web_login(client, SA)
    page = text_of(client.get("/transfers?direction=inflow&state=outflow_school"))
    assert "林小雨" in page and "共 1 条" in page and PEER_NAME in page
    assert "暂无数据" in text_of(client.get("/transfers?state=completed"))
    # the state filter offers the service's states with its labels; a state it does not know lists everything
    assert '<option value="record_sent">档案已发送，待对方确认</option>' in page
    assert '<option value="outflow_school" selected>待转出学校审核</option>' in page
    page = text_of(client.get("/transfers?state=no_such_state"))
    assert "林小雨" in page and '<option value="" selected>全部</option>' in page
    page = text_of(client.get("/transfers?direction=sideways"))
    assert "林小雨" in page and '<option value="outflow">转出</option>' in page


def test_outflow_request_is_decided_by_the_school_then_the_authority(env: dict[str, Any]) -> None:
    client = env["client"]
    peer = connect_peer(env)
    number = f"{MINE}02"
    mine = env["students"][number]
    transfer_id = str(uuid.uuid4())
    peer.request(transfer_id, {"national_student_id": "G" + mine["national_id"], "name": mine["name"],
                               "gender": mine["gender"], "birth_date": mine["birth_date"], "id_type": "1",
                               "id_number": mine["national_id"], "outflow_student_number": number},
                 transfer_kind="intra_province", authority="330100")
    web_login(client, AA)
    wait_for(lambda: mine["name"] in text_of(client.get("/transfers/approvals")))
    page = text_of(client.get("/transfers/approvals"))
    assert "转出学校审核（转出，待审 1 件）" in page and "转入地主管部门审核" not in page
    assert days_left_of(page, mine["name"]) in {f"|{n}" for n in range(15, 21)}  # 20 working days: not red
    page = text_of(post(client, "/transfers/approvals", transfer_id=transfer_id, stage="outflow_school",
                        approve="1", reason=""))
    assert "转出学校审核：已同意" in page and "暂无待审核的转学" in page

    web_login(client, AUTH)
    page = text_of(post(client, f"/transfers/{transfer_id}", action="decide", stage="outflow_authority",
                        approve="1", reason=""))
    assert "转出地主管部门审核：已同意" in page
    assert status_of(env, number) == "transferred_out"
    peer.wait("transfer.record", transfer_id)
    wait_for(lambda: "已完成" in text_of(client.get(f"/transfers/{transfer_id}")))
    page = text_of(client.get(f"/transfers/{transfer_id}"))
    kinds = re.findall(r"<td>(发出|收到)</td>\s*<td>([^<]+)</td>", page)
    assert [k for k in kinds if k[1] != "回执"] == [("收到", "转学申请"), ("发出", "审核结果"), ("发出", "审核结果"),
                                                   ("发出", "学籍档案")]
    assert ("发出", "回执") in kinds and ("收到", "回执") in kinds  # we ack theirs, they ack ours
    assert "转学申请表.pdf" in page and "材料由对方学校保存" in page


# -- refusals -------------------------------------------------------------------------------------------


def test_forbidden_roles_are_refused_in_chinese(env: dict[str, Any]) -> None:
    client = env["client"]
    connect_peer(env)
    web_login(client, SA)
    response = post(client, "/transfers/new", **NEWCOMER, peer_code=PEER, transfer_kind="inter_province",
                    target_class_code=MINE, reason="随迁")
    transfer_id = response.headers["Location"].split("/")[-1].split("?")[0]
    page = text_of(post(client, f"/transfers/{transfer_id}", action="decide", stage="inflow_authority", approve="1",
                        reason=""))
    assert "角色“学生处”无权执行此操作" in page and "待转入地主管部门审批" in page
    assert 'value="inflow_authority"' not in page  # no 同意 form for a stage that is not the role's

    web_login(client, MY_COUNSELOR)
    for path in ("/transfers", "/transfers/new", "/transfers/approvals", "/transfers/peers", "/transfers/calendar",
                 f"/transfers/{transfer_id}"):
        response = client.get(path)
        assert response.status_code == 403 and "您没有权限访问该页面" in text_of(response), path
    web_login(client, IT)
    assert client.get("/transfers/new").status_code == 403
    web_login(client, AA)
    response = client.get("/transfers/peers")
    assert response.status_code == 403 and "您没有权限访问该页面" in text_of(response)
    web_login(client, AUTH)
    page = text_of(client.get("/transfers/calendar"))
    assert 'name="action" value="save_day"' not in page and "本部门（420100）审核期限" in page

    api_login(client, MY_COUNSELOR)
    response = client.get("/api/v1/transfers")
    assert response.status_code == 403
    assert response.get_json() == {"error": {"code": "forbidden", "message": "角色“辅导员”无权执行此操作"}}
    api_login(client, AUTH)
    response = client.post("/api/v1/transfers/peers/4111010003/keys", headers=XHR, json={"key_id": "k9"})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


# -- 对端单位与密钥 ---------------------------------------------------------------------------------------------


def test_peers_page_shows_a_generated_secret_once_and_lists_refused_messages(env: dict[str, Any]) -> None:
    client = env["client"]
    peer = connect_peer(env)  # the secret was on the page that created it (asserted there)
    page = text_of(client.get("/transfers/peers"))
    assert 'class="secret"' not in page and "新密钥只显示这一次" not in page
    assert PEER_NAME in page and re.search(r"k1\s*<span class=\"tag tag-success\">有效</span>", page)
    page = text_of(post(client, "/transfers/peers", action="add_key", peer_code=PEER, key_id="k1", secret=""))
    assert "已有编号为 k1 的密钥" in page and 'class="secret"' not in page

    own = base64.b64encode(b"a key the peer made, 32 bytes!!!").decode()
    page = text_of(post(client, "/transfers/peers", action="add_key", peer_code=PEER, key_id="k2", secret=own))
    assert f"已为单位 {PEER} 添加密钥 k2" in page and 'class="secret"' not in page  # not generated: not shown
    page = text_of(post(client, "/transfers/peers", action="retire_key", peer_code=PEER, key_id="k1"))
    assert f"单位 {PEER} 的密钥 k1 已停用" in page and "已停用" in page
    page = text_of(post(client, "/transfers/peers", action="retire_key", peer_code=PEER, key_id="k2"))
    assert "已没有可用的密钥" in page

    page = text_of(client.get(f"/transfers/peers?edit={PEER}"))
    assert f'value="{PEER_NAME}"' in page and "修改对端单位" in page

    # A message signed with a key we never shared changes nothing and is listed for inspection.
    forged = peer.forged("transfer.cancel", str(uuid.uuid4()), {"reason": "伪造"})
    peer.publish(forged)
    wait_for(lambda: forged.message_id in text_of(client.get("/transfers/peers")))
    page = text_of(client.get("/transfers/peers"))
    assert re.search(rf"<td>{PEER}</td><td>{own_code()}</td>\s*<td>撤销</td>", page)
    assert "签名无效或密钥未知" in page
    page = text_of(post(client, "/transfers/peers", action="resend"))
    assert "没有未确认的消息需要重发" in page


# -- 工作日历 ---------------------------------------------------------------------------------------------------


def test_calendar_year_view_days_and_import_errors_with_row_and_column(env: dict[str, Any]) -> None:
    client = env["client"]
    web_login(client, SA)
    page = text_of(client.get("/transfers/calendar?year=2027"))
    assert "2027 年节假日尚未录入" in page and "2027 年没有本地设置的日期" in page
    page = text_of(post(client, "/transfers/calendar?year=2027", action="save_day", day="2027-10-01",
                        is_workday="0", note="国庆节"))
    assert "2027-10-01 已保存为节假日" in page and "国庆节" in page
    assert re.search(r'<span class="tag tag-danger" title="国庆节">1休</span>', page)

    template = client.get("/transfers/calendar/template.xlsx")
    workbook = load_workbook(io.BytesIO(template.data))
    ws = workbook.worksheets[0]
    assert [c.value for c in ws[1]][:3] == ["日期", "是否工作日", "说明"]
    ws.append(["2027-10-02", "否", "国庆节"])
    ws.append(["2027-02-30", "也许", "不存在的日期"])
    bad = io.BytesIO()
    workbook.save(bad)
    bad.seek(0)
    page = text_of(post(client, "/transfers/calendar?year=2027", action="import", file=(bad, "日历.xlsx")))
    assert "处错误，未导入任何日期" in page
    assert re.search(r"<td>3</td><td>A</td><td>日期</td><td>2027-02-30</td>", page)
    assert re.search(r"<td>3</td><td>B</td><td>是否工作日</td><td>也许</td>", page)
    link = re.search(r'href="(/transfers/calendar/result/[^"]+\.xlsx)"', page)
    assert link is not None and client.get(link.group(1)).status_code == 200
    assert "2027-10-02" not in text_of(client.get("/transfers/calendar?year=2027"))  # all or nothing

    ws.delete_rows(3)
    good = io.BytesIO()
    workbook.save(good)
    good.seek(0)
    page = text_of(post(client, "/transfers/calendar?year=2027", action="import", file=(good, "日历.xlsx")))
    assert "导入成功：新增 1 天" in page and "2027-10-02" in page
    page = text_of(post(client, "/transfers/calendar?year=2027", action="delete_day", day="2027-10-01"))
    assert "已删除 2027-10-01 的设置" in page

    page = text_of(post(client, "/transfers/calendar", action="setting", key="term_windows",
                        start=["2026-09-01", "2027-01-01", ""], end=["2026-09-30", "2027-01-31", ""]))
    assert "2026-09-01 至 2026-09-30" in page
    page = text_of(post(client, "/transfers/calendar", action="setting", key="deadline_days_by_authority",
                        value="330100:10\n4201:5"))
    assert "应为6位行政区划代码" in page

    web_login(client, AUTH)
    page = text_of(post(client, "/transfers/calendar", action="own_deadline", authority_code="420100", days="10"))
    assert "主管部门 420100 的审核期限已设为 10 个工作日" in page and "420100：10 个工作日" in page
    page = text_of(post(client, "/transfers/calendar", action="own_deadline", authority_code="330100", days="5"))
    assert "只能设置本部门的审核期限" in page


def test_out_of_term_filing_asks_for_the_reason(env: dict[str, Any]) -> None:
    client = env["client"]
    connect_peer(env)
    web_login(client, SA)
    post(client, "/transfers/calendar", action="setting", key="term_windows", start=["2000-09-01"],
         end=["2000-09-30"])
    form = {**NEWCOMER, "peer_code": PEER, "transfer_kind": "inter_province", "target_class_code": MINE,
            "reason": "随迁"}
    page = text_of(post(client, "/transfers/new", **form))
    assert "当前不在学期初或学期末的转学时段" in page and 'name="out_of_term_reason"' in page
    response = post(client, "/transfers/new", **form, out_of_term_reason="家庭变故")
    assert response.status_code == 302
    assert "家庭变故" in text_of(client.get(response.headers["Location"]))


# -- 校内转专业 (T7) -----------------------------------------------------------------------------------------


def test_internal_change_is_filed_and_approved_by_the_unit_left_and_the_unit_joined(env: dict[str, Any]) -> None:
    client = env["client"]
    number = f"{MINE}03"
    web_login(client, MY_COUNSELOR)
    page = text_of(post(client, "/transfers/internal", action="file", student_number=number, kind="major",
                        to_class_code=ELSEWHERE, reason="兴趣转向外语"))
    assert "申请已提交" in page and "兴趣转向外语" in page
    assert '<option value="study_centre">转学习中心</option>' in page
    assert '<option value="pending_joined">待调入单位审核</option>' in page
    change_id = re.search(r"编号 (\d+)", page)
    assert change_id is not None
    assert 'name="change_id"' not in page  # counselors file, they do not approve

    web_login(client, DEPUTY)  # the college left
    page = text_of(post(client, "/transfers/internal", action="decide", change_id=change_id.group(1), approve="1",
                        note="同意"))
    assert "已同意" in page
    assert 'name="change_id"' not in page  # now the college joined decides, not this one
    page = text_of(post(client, "/transfers/internal", action="decide", change_id=change_id.group(1), approve="1",
                        note=""))
    assert "应由调入单位（02）的党总支副书记或学生处审核" in page
    web_login(client, "2001008")  # the college joined
    assert 'name="change_id"' in text_of(client.get("/transfers/internal?state=pending_joined"))
    page = text_of(post(client, "/transfers/internal", action="decide", change_id=change_id.group(1), approve="1",
                        note=""))
    assert "已同意" in page and '<span class="tag tag-success">已通过</span>' in page
    with env["roster_db"].reading() as s:
        assert s.scalar(select(Student.class_code).where(Student.student_number == number)) == ELSEWHERE


# -- 出国（境）on the 办理异动 form (T3) ------------------------------------------------------------------------


def test_leaving_the_country_is_applied_for_with_destination_and_date(env: dict[str, Any]) -> None:
    client = env["client"]
    number = f"{MINE}01"
    web_login(client, AA)
    page = text_of(post(client, f"/roster/status/{number}", action="apply", kind="go_abroad",
                        effective_on="2027-03-01", reason="出国留学", evidence="教务〔2027〕9号", destination="英国"))
    assert "出国（境）须填写出境日期" in page
    page = text_of(post(client, f"/roster/status/{number}", action="apply", kind="go_abroad",
                        effective_on="2027-03-01", reason="出国留学", evidence="教务〔2027〕9号", destination="英国",
                        leave_on="2027-03-05"))
    assert "已提交学籍主管部门审批" in page
    assert status_of(env, number) == "enrolled"


# -- the API ---------------------------------------------------------------------------------------------------


def test_api_answers_with_the_documented_shapes(env: dict[str, Any]) -> None:
    client = env["client"]
    api_login(client, IT)
    assert client.put(f"/api/v1/transfers/peers/{PEER}", headers=XHR, json={
        "name": PEER_NAME, "province": "33", "authority_code": "330100"}).status_code == 200
    response = client.post(f"/api/v1/transfers/peers/{PEER}/keys", headers=XHR, json={"key_id": "k1"})
    assert response.status_code == 201
    key = response.get_json()
    assert key["generated"] is True and len(base64.b64decode(key["secret"])) == 32
    peers = client.get("/api/v1/transfers/peers").get_json()
    assert peers[0]["code"] == PEER and peers[0]["keys"][0]["key_id"] == "k1" and "secret" not in peers[0]["keys"][0]
    assert set(client.get("/api/v1/transfers/problems").get_json()) == {"items", "total", "page", "per_page"}

    api_login(client, SA)
    evidence = [{"filename": "转学申请表.pdf", "data": base64.b64encode(PDF).decode()}]
    response = client.post("/api/v1/transfers", headers=XHR, json={
        "student": NEWCOMER, "peer_code": PEER, "transfer_kind": "intra_province", "reason": "随迁",
        "target_class_code": MINE, "evidence": evidence})
    assert response.status_code == 201
    filed = response.get_json()
    transfer_id = filed["transfer_id"]
    assert (filed["direction"], filed["state"], filed["stage"]) == ("inflow", "inflow_authority", "inflow_authority")
    assert filed["student"]["name"] == "林小雨" and isinstance(filed["days_left"], int)
    listed = client.get("/api/v1/transfers?direction=inflow&per_page=5").get_json()
    assert set(listed) == {"items", "total", "page", "per_page", "state_options"} and listed["total"] == 1
    assert listed["items"][0]["days_left"] == filed["days_left"]
    view = client.get(f"/api/v1/transfers/{transfer_id}").get_json()
    assert {"stages", "messages", "days_left", "evidence_files"} <= set(view)
    file = client.get(f"/api/v1/transfers/{transfer_id}/evidence/{view['evidence_files'][0]['id']}").get_json()
    assert base64.b64decode(file["data"]) == PDF and file["content_type"] == "application/pdf"
    response = client.get("/api/v1/transfers?per_page=500")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid"
    response = client.post(f"/api/v1/transfers/{transfer_id}/decisions", headers=XHR,
                           json={"stage": "inflow_authority", "approve": True})
    assert response.status_code == 403 and "无权" in response.get_json()["error"]["message"]

    api_login(client, AUTH)
    decided = client.post(f"/api/v1/transfers/{transfer_id}/decisions", headers=XHR,
                          json={"stage": "inflow_authority", "approve": True}).get_json()
    assert decided["state"] == "outflow_school" and decided["messages"][0]["kind"] == "transfer.request"
    api_login(client, SA)
    response = client.post(f"/api/v1/transfers/{transfer_id}/cancel", headers=XHR, json={})
    assert response.status_code == 400 and response.get_json() == {
        "error": {"code": "invalid", "message": "请填写撤销原因"}}
    cancelled = client.post(f"/api/v1/transfers/{transfer_id}/cancel", headers=XHR,
                            json={"reason": "学生放弃"}).get_json()
    assert cancelled["state"] == "cancelled" and cancelled["messages"][-1]["kind"] == "transfer.cancel"
    assert set(client.post("/api/v1/transfers/resend", headers=XHR, json={}).get_json()) == {"due"}

    year = client.get("/api/v1/transfers/calendar?year=2027").get_json()
    assert (year["year"], year["known"], year["overrides"]) == (2027, False, []) and year["workdays"] > 250
    saved = client.put("/api/v1/transfers/calendar/2027-05-01", headers=XHR,
                       json={"is_workday": False, "note": "劳动节"}).get_json()
    assert (saved["day"], saved["is_workday"]) == ("2027-05-01", False)
    assert client.delete("/api/v1/transfers/calendar/2027-05-01", headers=XHR).get_json()["deleted"] is True
    assert set(client.get("/api/v1/transfers/calendar/template").get_json()) == {"filename", "content"}
    settings = client.get("/api/v1/transfers/settings").get_json()
    assert {"key", "label", "kind", "value", "default", "editable"} <= set(settings[0])
    assert client.put("/api/v1/transfers/settings/deadline_days", headers=XHR,
                      json={"value": 10}).get_json() == {"key": "deadline_days", "value": 10}

    response = client.post("/api/v1/transfers/internal-changes", headers=XHR, json={
        "student_number": f"{MINE}02", "kind": "major", "to_class_code": ELSEWHERE, "reason": "转外语"})
    assert response.status_code == 201 and response.get_json()["state"] == "pending_left"
    change = response.get_json()
    decided = client.post(f"/api/v1/transfers/internal-changes/{change['id']}/decisions", headers=XHR,
                          json={"approve": True}).get_json()
    assert decided["state"] == "pending_joined"
    assert client.get("/api/v1/transfers/internal-changes?state=pending_joined").get_json()[0]["id"] == change["id"]


def test_without_rosters_code_tables_the_codes_are_typed(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """roster's code tables not to be had (the call fails): the page still opens, those codes typed."""
    from gateway.rpc import RpcPool

    call_many = RpcPool.call_many

    def roster_away(self: RpcPool, calls: Any, **kwargs: Any) -> Any:
        return call_many(self, {k: ("roster", "no_such_method") if v[0] == "roster" else v for k, v in calls.items()},
                         **kwargs)

    monkeypatch.setattr(RpcPool, "call_many", roster_away)
    client = env["client"]
    web_login(client, SA)
    page = text_of(client.get("/transfers/new"))
    assert '<input id="gender" name="gender"' in page and '<input id="id_type" name="id_type"' in page
    assert "代码表暂不可用" in page and '<option value="intra_province">省内转学</option>' in page
