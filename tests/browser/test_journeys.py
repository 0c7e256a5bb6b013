"""Each role's main journey in headless Chromium (issue 9), against one running site: every service
as its own `nameko run` process, the gunicorn gateway, 80 students with beds, an aid programme with
applications at each review stage, and an inflow transfer with a simulated peer institution.

Staff accounts are made by the student affairs office, so every first login is forced through the
password change (I3). Each journey saves its role's home page as `var/screenshots/<role>.png`.
Also here: the housing occupancy chart is drawn with data (issue 6), and `static/app.js` carries the
clicked submit button through the 系统提示 confirmation (a form with two submit buttons).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from openpyxl import load_workbook

from conftest import make_vhost
from services.catalog import SERVICES
from services.common.testing import caller
from tests.browser.test_web_ui import free_port
from tests.harness import ROOT, Cluster, national_id, populate, wait_for
from tests.integration.test_aid_withdrawal import YEAR
from tests.peer import PeerInstitution

pytestmark = pytest.mark.browser

SHOTS = ROOT / "var" / "screenshots"
PASSWORD = "Xueji@2026"  # initial passwords, set by the student affairs office
NEW_PASSWORD = "Journey-2027-ok"  # what each person changes theirs to at first login
US, PEER = "4142010001", "4133010002"
CLASS, OTHER_CLASS = "2023010101", "2023010102"  # populate(80): 50 and 30 students, college 01
OFFICE = caller("student_affairs")
STAFF = {  # username: (name, role, scope kind, scope ids)
    "1000001": ("学生处 陈老师", "student_affairs", "institution", []),
    "1000002": ("教务处 周老师", "academic_affairs", "institution", []),
    "1000003": ("辅导员 王老师", "counselor", "classes", [CLASS]),
    "1000004": ("副书记 赵老师", "deputy_secretary", "college", ["01"]),
    "1000005": ("宿管 李老师", "housing_centre", "institution", []),
    "1000006": ("资助中心 张老师", "aid_operator", "institution", []),
    "1000007": ("资助中心 刘老师", "aid_auditor", "institution", []),
    "1000008": ("信息中心 孙工", "it_centre", "institution", []),
}
AUTHORITY = "3000001"  # only the system creates authority accounts: no forced change
OBSERVER = "1000009"  # student affairs, made by the system (no forced change): looks at effects
STUDENT = "202301010105"
# the students each journey works on (class 2023010101 unless noted)
EDITED, WITHDRAWN, COUNSELOR_EDITS, OUTSIDE = "202301010103", "202301010110", "202301010107", "202301010201"
APPROVED_BY_COUNSELOR, RETURNED_BY_COUNSELOR = "202301010112", "202301010114"
AT_OPERATOR, AT_AUDITOR = "202301010116", "202301010118"
PDF = b"%PDF-1.4\n% evidence\n"
ROLES = ("student_affairs", "academic_affairs", "counselor", "deputy_secretary", "housing_centre",
         "aid_operator", "aid_auditor", "it_centre", "authority", "student")


# ---- the site -----------------------------------------------------------------------------------


def set_up_aid(cluster: Cluster) -> dict[str, int]:
    """GJZXJ quotas down to the class; needy students apply; the system reviews some of them onward
    so that each reviewer finds one at their own stage. Returns application ids by student."""
    for level, extra in (("programme", {}), ("college", {"college_code": "01"}), ("class", {"class_code": CLASS})):
        cluster.rpc("aid", "allocate_quota", {"programme_code": "GJZXJ", "academic_year": YEAR, "level": level,
                                              "places": 10, **extra})
    ids = {}
    stages_done = {STUDENT: 0, APPROVED_BY_COUNSELOR: 0, RETURNED_BY_COUNSELOR: 0, AT_OPERATOR: 2, AT_AUDITOR: 3}
    for number, reviews in stages_done.items():
        index = int(number[-2:]) - 1
        cluster.rpc("aid", "identify_needy", {
            "student_number": number, "academic_year": YEAR, "level": "特别困难", "reasons": "建档立卡户",
            "evidence": ["扶贫手册"], "flags": ["建档立卡"], "id_number": national_id(index, "1" if index % 2 == 0
                                                                                   else "2")})
        application = cluster.rpc("aid", "apply", {"student_number": number, "programme_code": "GJZXJ",
                                                   "academic_year": YEAR, "statement": "家庭困难，申请助学金"})
        for _ in range(reviews):
            cluster.rpc("aid", "review", application["id"], "approve")
        ids[number] = application["id"]
    return ids


def file_inflow(cluster: Cluster) -> str:
    """A student of the peer's filed by our office: it waits for our authority's decision."""
    id_number = national_id(700001, "2")
    student = {"national_student_id": f"G{id_number}", "name": "林晓", "gender": "2",
               "birth_date": f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}", "id_type": "1",
               "id_number": id_number, "outflow_student_number": "202303010001"}
    view = cluster.as_(caller("academic_affairs")).transfer.file_transfer(
        student, PEER, "inter_province", "监护人工作调动", CLASS,
        evidence=[{"filename": "转学申请表.pdf", "data": base64.b64encode(PDF).decode()}],
        out_of_term_reason="监护人工作调动，学期中转学")
    assert view["state"] == "inflow_authority"
    return view["transfer_id"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    amqp_uri, drop_vhost = make_vhost()
    workdir = tmp_path_factory.mktemp("journeys")
    env = {"TRANSFER_INSTITUTION_CODE": US, "TRANSFER_SEND_INTERVAL": "0.2", "TRANSFER_RESEND_MAX_SECONDS": "2"}
    cluster = Cluster(amqp_uri, {name: f"sqlite:///{workdir}/{name}.sqlite3" for name in SERVICES}, workdir, env)
    peer: PeerInstitution | None = None
    gateway: subprocess.Popen[bytes] | None = None
    try:
        cluster.prepare()
        cluster.start()
        populate(cluster, 80)
        office = cluster.as_(OFFICE).identity
        for username, (name, role, kind, ids) in STAFF.items():
            office.create_account(username, name, role, kind, ids, PASSWORD)  # initial: must be changed
        cluster.rpc("identity", "create_account", OBSERVER, "学生处 马老师", "student_affairs", "institution", [],
                    PASSWORD)
        cluster.rpc("identity", "create_account", AUTHORITY, "主管部门 吴老师", "authority", "area", ["420100"],
                    PASSWORD)
        # the counselor resets the student's password: a temporary one, to be changed at first login
        temporary = cluster.as_(caller("counselor", "classes", CLASS)).identity.reset_password(STUDENT)
        applications = set_up_aid(cluster)
        cluster.rpc("transfer", "save_peer", PEER, "浙江模拟学院", "33", "330000")
        secret = cluster.rpc("transfer", "add_peer_key", PEER, "k2026")["secret"]
        peer = PeerInstitution(amqp_uri, PEER, partner=US, keys={"k2026": base64.b64decode(secret)}).start()
        transfer_id = file_inflow(cluster)
        port = free_port()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "4",
             "gateway.wsgi:app"], cwd=ROOT, env=cluster.env(),
            stdout=open(workdir / "gateway.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{url}/login", timeout=2).status_code == 200, timeout=60,
                 what="gateway up")
        SHOTS.mkdir(parents=True, exist_ok=True)
        for role in ROLES:  # this run's pictures, not a former run's
            (SHOTS / f"{role}.png").unlink(missing_ok=True)
        yield {"url": url, "cluster": cluster, "peer": peer, "applications": applications,
               "transfer_id": transfer_id, "student_password": temporary["temporary_password"],
               "workdir": workdir}
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(timeout=20)
        if peer is not None:
            peer.close()
        cluster.close()
        drop_vhost()


# ---- driving the browser ------------------------------------------------------------------------


def browse(url: str, *steps: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the steps in Chromium (drive.py); what each page showed, or fail with where it stopped."""
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("drive.py"))],
                            input=json.dumps({"base": url, "steps": list(steps)}),
                            capture_output=True, text=True, timeout=150, cwd=ROOT)
    seen = json.loads(result.stdout) if result.stdout.strip().startswith("[") else []
    if result.returncode != 0:
        last = seen[-1] if seen else {}
        pytest.fail(f"browser stopped at step {last.get('step')} {steps[last['step']] if 'step' in last else ''}: "
                    f"{last.get('error') or result.stderr[-2000:]}\n{last.get('url')}\n{last.get('text', '')[:1500]}")
    return seen


def first_login(username: str, password: str = PASSWORD) -> list[dict[str, Any]]:
    """Log in with an initial (or temporary) password: only the change page opens until it is changed."""
    return [{"login": [username, password]},
            {"goto": "/students"},  # anything else leads to the change page
            {"fill": ["#old_password", password]}, {"fill": ["#new_password", NEW_PASSWORD]},
            {"fill": ["#confirm", NEW_PASSWORD]},
            {"click": "form[action$='/password/change'] button[type=submit]", "navigate": True}]


def home(role: str) -> list[dict[str, Any]]:
    return [{"goto": "/"}, {"screenshot": str(SHOTS / f"{role}.png")}]


def check_first_login(seen: list[dict[str, Any]]) -> None:
    login, blocked, *_, changed = seen[:6]
    assert login["url"].endswith("notice=initial_password") or "/password/change" in login["url"]
    assert blocked["url"].endswith("/password/change") and "请先修改密码后再使用系统" in blocked["text"]
    assert changed["url"].endswith("/me/account?done=password") and "密码修改成功" in changed["text"]


def check_home(page: dict[str, Any], username: str, role_label: str, *menu: str, role: str) -> None:
    assert urlsplit(page["url"]).path == "/"
    assert username in page["text"] and role_label in page["text"]
    for label in menu:
        assert label in page["text"], label
    shot = SHOTS / f"{role}.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def bad_import_sheet(template: Path, target: Path) -> None:
    """The downloaded template with one student full of mistakes: an impossible birth date, a short
    ID number, no ethnicity."""
    wb = load_workbook(template)
    ws = wb.worksheets[0]
    headers = {cell.value: cell.column for cell in ws[1] if cell.value}
    row = {"学号": "202301019901", "姓名": "错误示例", "性别": "男", "出生日期": "2004-13-45",
           "身份证件类型": "居民身份证", "身份证件号": "123", "入学年月": "2023-09", "班号": CLASS}
    for header, value in row.items():
        ws.cell(row=2, column=headers[header], value=value)
    wb.save(target)


# ---- journeys ---------------------------------------------------------------------------------------


def test_student_affairs_edits_a_record_imports_a_bad_sheet_and_gets_it_back_annotated(
        site: dict[str, Any], tmp_path: Path) -> None:
    url = site["url"]
    template = tmp_path / "template.xlsx"
    seen = browse(
        url, *first_login("1000001"), *home("student_affairs"),
        {"goto": "/students"}, {"fill": ["#q", "学生零零零零二"]},
        {"click": "form[action$='/students'] button[type=submit]", "navigate": True},
        {"click": f"a[href$='/students/{EDITED}']", "navigate": True},
        {"goto": f"/roster/students/{EDITED}"},
        {"fill": ["input[name=f_phone]", "13800138000"]}, {"fill": ["#note", "学生本人来电更正"]},
        {"click": "form[action*='/roster/students/'] button[type=submit]", "navigate": True},
        {"goto": "/roster/import"},
        {"download": ["a[href$='/roster/template.xlsx']", str(template)]})
    check_first_login(seen)
    check_home(seen[6], "1000001", "学生处", "学生导入", "账号管理", role="student_affairs")
    found, student, _, _, _, saved, _, downloaded = seen[10:]
    assert "共 1 条" in found["text"] and EDITED in found["text"]
    assert student["url"].endswith(f"/students/{EDITED}") and "B1号楼" in student["text"]
    assert "修改成功" in saved["text"] and "13800138000" in saved["text"]
    assert downloaded["value"].endswith(".xlsx")

    bad = tmp_path / "bad.xlsx"
    bad_import_sheet(template, bad)
    annotated = tmp_path / "annotated.xlsx"
    seen = browse(
        url, {"login": ["1000001", NEW_PASSWORD]}, {"goto": "/roster/import"},
        {"upload": ["input[name=file]", str(bad)]},
        {"click": "form[action$='/roster/import'] button[type=submit]", "navigate": True, "timeout": 60},
        {"download": ["a[href*='/roster/import/result/']", str(annotated)]})
    result = seen[3]
    assert "未导入任何数据" in result["text"] and "出生日期" in result["text"]
    wb = load_workbook(annotated)
    data = wb.worksheets[0]
    comments = [c.comment.text for row in data.iter_rows() for c in row if c.comment is not None and c.row > 1]
    assert comments and any("出生日期" in t or "日期" in t for t in comments), comments
    assert "错误说明" in wb.sheetnames
    assert site["cluster"].rpc("roster", "search_students", "错误示例", 1, 20)["total"] == 0


def test_academic_affairs_withdraws_a_student_bed_released_and_account_deactivated(
        site: dict[str, Any], tmp_path: Path) -> None:
    cluster = site["cluster"]
    assert cluster.rpc("housing", "occupancy", WITHDRAWN)["bed"] is not None
    evidence = tmp_path / "退学申请.pdf"
    evidence.write_bytes(PDF)
    seen = browse(
        site["url"], *first_login("1000002"), *home("academic_affairs"),
        {"goto": f"/roster/status/{WITHDRAWN}"},
        {"select": ["#kind", "withdraw"]}, {"fill": ["#reason", "本人申请退学"]},
        {"fill": ["#evidence", "教务〔2026〕12号"]}, {"upload": ["#files", str(evidence)]},
        {"confirm": "form[data-confirm] button:has-text('确定办理')"},
        {"goto": f"/students/{WITHDRAWN}"},
        {"wait_text": "未分配床位", "reload": True, "timeout": 60})
    check_first_login(seen)
    check_home(seen[6], "1000002", "教务处", "异动办理", "批量异动", role="academic_affairs")
    applied, student = seen[13], seen[-1]
    assert "确认为学生" in applied["value"] and "退学" in applied["text"]
    assert "退学" in student["text"] and "B1号楼" not in student["text"]
    assert "您无权查看账号信息" in student["text"]  # accounts are for student affairs and the counselors
    # the student affairs office sees the account deactivated by identity on roster's event
    [account] = browse(site["url"], {"login": [OBSERVER, PASSWORD]}, {"goto": f"/students/{WITHDRAWN}"},
                       {"wait_text": "停用", "reload": True, "timeout": 60})[-1:]
    assert "退学" in account["text"] and "未分配床位" in account["text"] and "停用" in account["text"]
    assert cluster.rpc("housing", "occupancy", WITHDRAWN)["bed"] is None
    assert not cluster.rpc("identity", "get_account", WITHDRAWN)["active"]


def test_counselor_edits_in_scope_is_refused_outside_and_reviews_aid(site: dict[str, Any]) -> None:
    apps = site["applications"]
    seen = browse(
        site["url"], *first_login("1000003"), *home("counselor"),
        {"goto": "/students?q=学生零零零零六"},
        {"goto": f"/roster/students/{COUNSELOR_EDITS}"},
        {"fill": ["input[name=f_email]", "xuesheng06@example.edu.cn"]},
        {"click": "form[action*='/roster/students/'] button[type=submit]", "navigate": True},
        {"goto": f"/students/{OUTSIDE}"},
        {"goto": f"/roster/students/{OUTSIDE}"},
        {"goto": "/aid/reviews"},
        {"confirm": f"tr:has-text('{APPROVED_BY_COUNSELOR}') button[value=approve]"},
        {"fill": [f"tr:has-text('{RETURNED_BY_COUNSELOR}') input[name=reason]", "缺少家庭情况证明"]},
        {"confirm": f"tr:has-text('{RETURNED_BY_COUNSELOR}') button[value=return]"})
    check_first_login(seen)
    check_home(seen[6], "1000003", "辅导员", "学生名单", "资助审核", role="counselor")
    found, _, _, saved, outside, outside_record, queue, approved, _, returned = seen[8:]
    assert "共 1 条" in found["text"] and COUNSELOR_EDITS in found["text"]
    assert "修改成功" in saved["text"] and "xuesheng06@example.edu.cn" in saved["text"]
    assert outside["status"] == 403 and "无权" in outside["text"]
    assert outside_record["status"] == 403 and "无权" in outside_record["text"]
    assert APPROVED_BY_COUNSELOR in queue["text"] and "待辅导员审核" in queue["text"]
    assert AT_OPERATOR not in queue["text"]  # past the counselor's stage
    assert approved["value"] == "确定审核通过吗？" and "已审核通过" in approved["text"]
    # 退回 is the button's name/value: carried through the confirmation (else the server would approve)
    assert returned["value"] == "确定退回该申请吗？" and "已退回" in returned["text"]
    cluster = site["cluster"]
    assert cluster.rpc("aid", "get_application", apps[APPROVED_BY_COUNSELOR])["status"] != "applied"
    back = cluster.rpc("aid", "get_application", apps[RETURNED_BY_COUNSELOR])
    assert back["status"] == "returned" and "缺少家庭情况证明" in json.dumps(back, ensure_ascii=False)


def test_deputy_secretary_sees_the_whole_college(site: dict[str, Any]) -> None:
    seen = browse(site["url"], *first_login("1000004"), *home("deputy_secretary"), {"goto": "/students"},
                  {"goto": f"/students/{OUTSIDE}"}, {"goto": "/dashboard"},
                  {"wait": '[data-chart="enrolment.college"][data-drawn]'},
                  {"click_chart": ['[data-chart="enrolment.college"]', 0, 0]})
    check_first_login(seen)
    check_home(seen[6], "1000004", "党总支副书记", "学生名单", "名额分配", role="deputy_secretary")
    students, other_class, dashboard, _, behind = seen[8:]
    assert "共 80 条" in students["text"]  # both classes of college 01
    assert other_class["status"] == 200 and OUTSIDE in other_class["text"]
    # The college bar opens the list it counts: same number of students, filtered by that college.
    assert "数据看板" in dashboard["text"]
    assert urlsplit(behind["url"]).path == "/students" and "college_code=" in behind["url"]
    assert behind["value"] > 0 and f"共 {behind['value']} 条" in behind["text"]


def test_housing_centre_browses_beds_sees_the_chart_and_a_stay_history(site: dict[str, Any]) -> None:
    chart = "#occupancy-chart[data-drawn='1'] canvas"
    seen = browse(
        site["url"], *first_login("1000005"), *home("housing_centre"),
        {"goto": "/housing/buildings"}, {"goto": "/housing/buildings/B1"},
        {"goto": f"/housing/students/{EDITED}"},
        {"goto": "/housing/reports"}, {"wait": chart},
        {"evaluate": """() => {
            const box = document.getElementById('occupancy-chart');
            const canvas = box.querySelector('canvas');
            const option = window.echarts.getInstanceByDom(box).getOption();
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
            return {width: canvas.width, height: canvas.height, painted: painted,
                    buildings: option.xAxis[0].data, occupied: option.series[0].data, free: option.series[1].data};
        }"""},
        {"screenshot": str(site["workdir"] / "housing_reports.png")})
    check_first_login(seen)
    check_home(seen[6], "1000005", "宿管中心", "楼栋房间", "住宿统计", role="housing_centre")
    buildings, rooms, stays, _, _, drawn = seen[8:14]
    assert "B1号楼" in buildings["text"] and "B2号楼" in buildings["text"]
    assert "1号床" in rooms["text"]
    assert EDITED in stays["text"] and "B1号楼" in stays["text"]
    value = drawn["value"]
    assert value["width"] > 0 and value["height"] > 0 and value["painted"] > 1000
    assert value["buildings"] == ["B1号楼", "B2号楼"]
    assert sum(value["occupied"]) >= 79 and len(value["free"]) == 2  # 80 housed (one may have left since)


def test_aid_operator_approves_at_their_stage_and_submits_after_confirming(site: dict[str, Any]) -> None:
    apps = site["applications"]
    seen = browse(
        site["url"], *first_login("1000006"), *home("aid_operator"),
        {"goto": "/aid/reviews"},
        {"confirm": f"tr:has-text('{AT_OPERATOR}') button[value=approve]"},
        {"goto": f"/aid/applications/{apps[AT_OPERATOR]}"},
        {"goto": f"/aid/reports?year={YEAR}"}, {"select": ["#kind", "aided"]},
        # two submit buttons: 校验并导出 goes at once, 报送 only after the confirmation, carrying what=submit
        {"click": "button[name=what][value=check]", "navigate": True},
        {"confirm": "button[name=what][value=submit]"})
    check_first_login(seen)
    check_home(seen[6], "1000006", "资助中心经办人", "资助审核", "资助报表", role="aid_operator")
    queue, approved, detail, _, _, checked, submitted = seen[8:]
    assert AT_OPERATOR in queue["text"] and APPROVED_BY_COUNSELOR not in queue["text"]
    assert "已审核通过" in approved["text"] and AT_OPERATOR not in approved["text"].split("待我审核")[1]
    assert "1000006" in detail["text"]
    assert "模板校验" in checked["text"] and "已报送" not in checked["text"]
    assert submitted["value"].startswith("确定按当前数据报送吗") and "已报送" in submitted["text"]


def test_aid_auditor_approves_the_last_stage(site: dict[str, Any]) -> None:
    seen = browse(
        site["url"], *first_login("1000007"), *home("aid_auditor"),
        {"goto": "/aid/reviews"},
        {"confirm": f"tr:has-text('{AT_AUDITOR}') button[value=approve]"})
    check_first_login(seen)
    check_home(seen[6], "1000007", "资助中心审核人", "资助审核", "受助学生库", role="aid_auditor")
    queue, approved = seen[8:]
    assert AT_AUDITOR in queue["text"] and "已审核通过" in approved["text"]
    assert site["cluster"].rpc("aid", "get_application", site["applications"][AT_AUDITOR])["status"] == "audited"


def test_it_centre_sees_every_service_running(site: dict[str, Any]) -> None:
    seen = browse(site["url"], *first_login("1000008"), *home("it_centre"), {"goto": "/system/health"},
                  {"goto": "/aid/reviews"})
    check_first_login(seen)
    check_home(seen[6], "1000008", "信息技术中心", "服务状态", "消息队列", role="it_centre")
    health, aid = seen[8:]
    for label in ("统一身份", "学籍", "宿舍", "资助", "转学"):
        assert label in health["text"]
    assert "异常" not in health["text"]
    assert aid["status"] == 403  # not in the IT centre's menu


def test_authority_approves_a_transfer_stage_and_the_peer_hears_of_it(site: dict[str, Any]) -> None:
    transfer_id = site["transfer_id"]
    seen = browse(
        site["url"], {"login": [AUTHORITY, PASSWORD]}, *home("authority"),
        {"goto": "/transfers/approvals"},
        {"fill": [f"form:has(input[value='{transfer_id}']) input[name=reason]", "材料齐全"]},
        {"click": f"form:has(input[value='{transfer_id}']) button[name=approve][value='1']", "navigate": True},
        {"goto": f"/transfers/{transfer_id}"})
    check_home(seen[1], AUTHORITY, "学籍主管部门", "转学审批", "异动审批", role="authority")
    queue, _, decided, detail = seen[3:]
    assert "林晓" in queue["text"] and "转入" in queue["text"]
    assert "已同意" in decided["text"] and "林晓" not in decided["text"].split("转学审批", 2)[-1]
    assert "林晓" in detail["text"]
    [request] = site["peer"].wait("transfer.request", transfer_id)
    assert request["payload"]["student"]["name"] == "林晓"


def test_student_sees_own_record_housing_and_aid(site: dict[str, Any]) -> None:
    seen = browse(site["url"], *first_login(STUDENT, site["student_password"]), *home("student"),
                  {"goto": "/me"}, {"goto": f"/housing/students/{STUDENT}"}, {"goto": "/aid/apply"},
                  {"goto": f"/students/{EDITED}"}, {"goto": "/students"})
    check_first_login(seen)
    check_home(seen[6], STUDENT, "学生", "我的学籍", "资助申请", role="student")
    record, housing, aid, classmate, listing = seen[8:]
    assert record["url"].endswith(f"/students/{STUDENT}") and "在读" in record["text"]
    assert "B1号楼" in record["text"] or "B2号楼" in record["text"]
    assert STUDENT in housing["text"] and "号楼" in housing["text"]
    assert "国家助学金" in aid["text"] and "待辅导员审核" in aid["text"]
    assert classmate["status"] == 403 and listing["status"] == 403


def test_every_roles_home_page_was_saved(site: dict[str, Any]) -> None:
    for role in ROLES:
        shot = SHOTS / f"{role}.png"
        assert shot.exists(), role
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000, role
