"""住宿记录 page and the inventory writes of `/api/v1/housing` (issue 6) against the real roster and
housing services (in-process nameko containers on one vhost for the module, SQLite); identity is the
stand-in with a housing-centre officer and a counselor of another class added."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient
from openpyxl import Workbook, load_workbook

from conftest import make_vhost
from gateway.app import create_app, rpc_pool
from gateway.tests import cluster
from gateway.tests.helpers import web_login
from services.common.caller import CONTEXT_KEY, COUNSELOR, HOUSING_CENTRE, Scope, system_caller
from services.common.migrate import upgrade
from services.common.testing import publish, status_changed, wait_for
from services.common.topology import bindings_of, declare
from services.housing.service import HousingService
from services.housing.tests.factories import room_beds
from services.roster.service import RosterService
from services.roster.tests.factories import student

XHR = {"X-Requested-With": "XMLHttpRequest"}
MINE, OTHER = "2023010101", "2023010102"  # the stand-in counselor 2001001's class; another class
CENTRE, MY_COUNSELOR, OTHER_COUNSELOR = "2001010", "2001001", "2001011"
STAFF = {
    CENTRE: {"display_name": "宿管中心赵老师", "role": HOUSING_CENTRE, "scope": Scope("institution")},
    OTHER_COUNSELOR: {"display_name": "辅导员冯老师", "role": COUNSELOR, "scope": Scope("classes", (OTHER,))},
}
MOVER, LEAVER, GRADUATE = f"{MINE}01", f"{MINE}02", f"{MINE}03"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """identity (stand-in), roster and housing for the whole module; three men of MINE in 1号楼-101."""
    from nameko.containers import get_container_cls
    from nameko.standalone.rpc import ClusterRpcProxy

    uri, drop_vhost = make_vhost()
    folder = tmp_path_factory.mktemp("housing-pages")
    urls = {name: f"sqlite:///{folder / name}.sqlite3" for name in ("roster", "housing")}
    for name, url in urls.items():
        upgrade(name, url)
    declare(uri, bindings_of([RosterService, HousingService]))
    containers = []
    with pytest.MonkeyPatch.context() as patch:
        for username, account in STAFF.items():
            patch.setitem(cluster.ACCOUNTS, username, account)
        for cls, config in ((cluster.IdentityStandIn, {"AMQP_URI": uri}),
                            (RosterService, {"AMQP_URI": uri, "ROSTER_DATABASE_URL": urls["roster"]}),
                            (HousingService, {"AMQP_URI": uri, "HOUSING_DATABASE_URL": urls["housing"]})):
            container = get_container_cls(config)(cls, config)
            container.start()
            containers.append(container)
        app = None
        try:
            students = [student(seat, klass=MINE, born=date(2005, 3, seat)) for seat in (1, 2, 3)]
            system = {CONTEXT_KEY: system_caller("test").to_header()}
            with ClusterRpcProxy({"AMQP_URI": uri}, timeout=30, context_data=system) as rpc:
                rpc.roster.upsert_org_units([
                    {"code": "01", "name": "计算机学院", "kind": "college"},
                    {"code": "0101", "name": "计科", "kind": "major", "parent_code": "01"},
                    {"code": MINE, "name": "计科2301", "kind": "class", "parent_code": "0101"},
                    {"code": OTHER, "name": "计科2302", "kind": "class", "parent_code": "0101"},
                ])
                rpc.roster.register_students(students)
                wait_for(lambda: rpc.housing.health()["students_known"] == len(students))
                rpc.housing.create_beds(room_beds("B1", "1号楼", "M", "101") + room_beds("B1", "1号楼", "M", "102"))
                for n, number in enumerate((MOVER, LEAVER, GRADUATE), start=1):
                    rpc.housing.assign_bed(number, f"1号楼-101-{n}")
                rpc.housing.move_bed(MOVER, "1号楼-102-1")
                rpc.housing.check_in(MOVER)
                rpc.housing.check_out(LEAVER)
            # Roster's word that a student graduated releases the bed (H5), with the status as the reason.
            publish(uri, status_changed(GRADUATE, 10_000, "graduated", left=True))
            wait_for(lambda: _proxy_call(uri, "occupancy", GRADUATE)["bed"] is None)
            app = create_app({"TESTING": True, "SECRET_KEY": "housing-pages", "XUEJI_AMQP_URI": uri,
                              "XUEJI_LOGIN_ATTEMPTS": 1000,
                              "XUEJI_RPC_TIMEOUT": 15.0, "XUEJI_CONFIGURE_LOGGING": False})
            yield {"app": app, "uri": uri}
        finally:
            if app is not None:
                rpc_pool(app).close()
            for container in containers:
                container.stop()
            drop_vhost()


def _proxy_call(uri: str, method: str, *args: Any) -> Any:
    from nameko.standalone.rpc import ClusterRpcProxy

    system = {CONTEXT_KEY: system_caller("test").to_header()}
    with ClusterRpcProxy({"AMQP_URI": uri}, timeout=30, context_data=system) as rpc:
        return getattr(rpc.housing, method)(*args)


def client_as(env: dict[str, Any], username: str) -> FlaskClient:
    client = env["app"].test_client()
    assert web_login(client, username).status_code == 302
    return client


def text_of(response: Any) -> str:
    return response.get_data(as_text=True)


def stay_rows(page: str) -> list[list[str]]:
    """The cells of the 历次住宿 table, tags stripped, one list per row."""
    table = page.split('id="stays"', 1)[1].split("</table>", 1)[0]
    return [[re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)]


def csrf(client: FlaskClient) -> dict[str, str]:
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return {"X-CSRF-Token": token.value}


# -- 住宿记录 --------------------------------------------------------------------------------------
def test_the_history_shows_both_stays_after_a_move_with_the_reason(env: dict[str, Any]) -> None:
    client = client_as(env, CENTRE)
    page = text_of(client.get(f"/housing/students/{MOVER}"))
    assert f"住宿记录：学生零一（{MOVER}）" in page
    assert re.search(r"<dt>性别</dt><dd>(男生|女生)</dd>", page)  # labelled by housing
    current = page.split('id="current-bed"', 1)[1].split("</dl>", 1)[0]
    assert "1号楼-102-1" in current and "未办理入住" not in current  # checked in after the move
    newest, oldest = stay_rows(page)
    assert newest[0] == "1号楼-102-1" and newest[4] and "在住" in newest[5] and newest[6] == ""
    assert oldest[0] == "1号楼-101-1" and oldest[1:3] == ["1号楼", "101"]
    assert oldest[4] == "" and oldest[5] and oldest[6] == "调整床位"
    # The housing centre may act on the student and open the beds.
    assert f"/housing/assign?student_number={MOVER}" in page and "/housing/beds/" in page

    [left] = stay_rows(text_of(client.get(f"/housing/students/{LEAVER}")))
    assert left[6] == "退宿"
    page = text_of(client.get(f"/housing/students/{GRADUATE}"))
    [graduated] = stay_rows(page)
    assert graduated[6] == "毕业" and "未分配床位" in page

    # 退宿管理 lists who left but holds a bed and whose revoked leaving found the bed taken.
    checkout = text_of(client.get("/housing/checkout"))
    assert "离校未退宿名单" in checkout and "撤销异动后未能恢复床位（0 人）" in checkout

    # Linked from the residents list and from the student's page.
    residents = text_of(client.get(f"/housing/residents?q={MOVER}"))
    assert f'href="/housing/students/{MOVER}"' in residents and re.search(r"<td>(男生|女生)</td>", residents)
    assert f'href="/housing/students/{MOVER}"' in text_of(client.get(f"/students/{MOVER}"))
    # The bed's own history names the reason in Chinese too.
    assert "调整床位" in text_of(client.get("/housing/beds/1号楼-101-1"))


def test_counselors_read_their_own_students_and_no_others(env: dict[str, Any]) -> None:
    mine = client_as(env, MY_COUNSELOR)
    page = text_of(mine.get(f"/housing/students/{MOVER}"))
    assert [row[6] for row in stay_rows(page)] == ["", "调整床位"]
    assert "/housing/assign" not in page and "/housing/beds/" not in page  # read-only (H4)
    assert f'href="/housing/students/{MOVER}"' in text_of(mine.get(f"/students/{MOVER}"))

    other = client_as(env, OTHER_COUNSELOR)
    refused = other.get(f"/housing/students/{MOVER}")
    assert refused.status_code == 403 and "不在您的数据权限范围内" in text_of(refused)
    assert "1号楼" not in text_of(refused)
    # A number that does not exist looks the same to a scoped caller: no probing.
    assert other.get(f"/housing/students/{OTHER}99").status_code == 403

def test_a_student_reads_their_own_housing_and_nobody_elses(env: dict[str, Any]) -> None:
    me = client_as(env, LEAVER)
    home = text_of(me.get("/"))
    assert 'href="/housing/me">我的住宿</a>' in home and "住宿查询" not in home
    # 我的住宿 opens the student's own 住宿记录, labelled by the service.
    assert me.get("/housing/me").headers["Location"] == f"/housing/students/{LEAVER}"
    page = text_of(me.get(f"/housing/students/{LEAVER}"))
    assert f"住宿记录：{LEAVER}" in page and "未分配床位" in page
    [left] = stay_rows(page)
    assert left[0] == "1号楼-101-2" and left[6] == "退宿"
    assert "/housing/assign" not in page and "/housing/beds/" not in page
    # Another student's record, existing or not, and the staff pages stay closed.
    for number in (MOVER, f"{MINE}99"):
        refused = me.get(f"/housing/students/{number}")
        assert refused.status_code == 403 and "1号楼" not in text_of(refused)
    assert me.get("/housing/residents").status_code == 403
    # Staff have no 我的住宿 page.
    assert client_as(env, CENTRE).get("/housing/me").status_code == 403


# -- inventory writes through the API ---------------------------------------------------------------
def test_each_inventory_write_answers_with_its_shape(env: dict[str, Any]) -> None:
    client = client_as(env, CENTRE)
    headers = csrf(client)

    answer = client.put("/api/v1/housing/campuses/WEST", json={"name": "西校区"}, headers=headers)
    assert (answer.status_code, answer.get_json()) == (200, {"code": "WEST", "name": "西校区"})
    assert {"code": "WEST", "name": "西校区"} in client.get("/api/v1/housing/campuses").get_json()

    answer = client.put("/api/v1/housing/buildings/W1", json={"name": "西1号楼", "gender_policy": "F",
                                                              "campus_code": "WEST", "floors": 6}, headers=headers)
    building = answer.get_json()
    assert answer.status_code == 200
    assert {k: building[k] for k in ("code", "name", "gender_policy", "gender_policy_label", "campus_code",
                                     "floors")} == {"code": "W1", "name": "西1号楼", "gender_policy": "F",
                                                    "gender_policy_label": "女生楼", "campus_code": "WEST",
                                                    "floors": 6}

    answer = client.put("/api/v1/housing/buildings/W1/rooms/601", json={
        "capacity": 4, "floor": 6, "room_type": "四人间", "fee": 1500, "beds": 3}, headers=headers)
    room = answer.get_json()
    assert answer.status_code == 200
    assert {k: room[k] for k in ("building_code", "room_no", "label", "capacity", "floor", "room_type", "fee",
                                 "college_code", "beds")} == {
        "building_code": "W1", "room_no": "601", "label": "西1号楼-601", "capacity": 4, "floor": 6,
        "room_type": "四人间", "fee": 1500, "college_code": None, "beds": 3}
    # Editing the room: a capacity below its beds is refused with the service's words.
    answer = client.put("/api/v1/housing/buildings/W1/rooms/601", json={"capacity": 2}, headers=headers)
    assert answer.status_code == 409 and "容量不能小于床位数" in answer.get_json()["error"]["message"]
    # Editing the building's gender policy.
    answer = client.put("/api/v1/housing/buildings/W1", json={"name": "西1号楼", "gender_policy": "mixed"},
                        headers=headers)
    assert answer.get_json()["gender_policy_label"] == "男女混合楼"

    beds = [{"building_code": "W1", "building_name": "西1号楼", "gender_policy": "mixed", "room_no": "601",
             "capacity": 4, "bed_no": "4"}]
    answer = client.post("/api/v1/housing/beds", json={"beds": beds}, headers=headers)
    assert (answer.status_code, answer.get_json()) == (201, {"created": 1})
    assert client.post("/api/v1/housing/beds", json={"beds": beds}, headers=headers).get_json() == {"created": 0}

    answer = client.post("/api/v1/housing/allocations/rooms", json={
        "rooms": [{"building_code": "W1", "room_no": "601"}], "college_code": "01"}, headers=headers)
    assert (answer.status_code, answer.get_json()) == (200, {"allocated": 1, "college_code": "01"})
    answer = client.post("/api/v1/housing/allocations/beds", json={"labels": ["西1号楼-601-4"], "college_code": "02"},
                         headers=headers)
    assert (answer.status_code, answer.get_json()) == (200, {"allocated": 1, "college_code": "02"})
    answer = client.post("/api/v1/housing/allocations/beds", json={"labels": ["西1号楼-601-4"]}, headers=headers)
    assert answer.status_code == 400 and "college_code" in answer.get_json()["error"]["message"]
    rooms = client.get("/api/v1/housing/buildings/W1").get_json()["rooms"]
    assert [(r["college_code"], [b["allocated_to"] for b in r["bed_list"]]) for r in rooms] == \
        [("01", ["01", "01", "01", "02"])]

    answer = client.delete("/api/v1/housing/beds/西1号楼-601-4", headers=headers)
    assert (answer.status_code, answer.get_json()) == (200, {"deleted": "西1号楼-601-4"})
    answer = client.delete("/api/v1/housing/beds/1号楼-101-1", headers=headers)  # slept in: history is kept
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "conflict"
    assert "住宿记录" in answer.get_json()["error"]["message"]


def test_the_inventory_workbook_imports_or_comes_back_annotated(env: dict[str, Any]) -> None:
    client = client_as(env, CENTRE)
    template = base64.b64decode(_proxy_call(env["uri"], "sheet_template", "inventory"))
    sheet = load_workbook(io.BytesIO(template)).active
    headers = [c.value for c in sheet[1]]

    def workbook(*rows: dict[str, Any]) -> bytes:
        book = Workbook()
        book.active.append(headers)
        for row in rows:
            book.active.append([row.get(h, "") for h in headers])
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    good = {"楼栋编号": "S1", "楼栋名称": "南1号楼", "性别类型": "男生楼", "楼层": "1", "房间号": "101",
            "房间类型": "双人间", "容量": "2", "收费标准（元/年）": "900", "床位号": "1", "分配学院代码": "01"}
    answer = client.post("/api/v1/housing/inventory/import", headers=csrf(client),
                         data={"file": (io.BytesIO(workbook(good, good | {"床位号": "2"})), "beds.xlsx")},
                         content_type="multipart/form-data")
    assert (answer.status_code, answer.get_json()) == (200, {"ok": True, "errors": [], "imported": 2})

    bad = base64.b64encode(workbook(good | {"房间号": "102", "容量": "九"})).decode()
    result = client.post("/api/v1/housing/inventory/import", json={"content": bad}, headers=csrf(client)).get_json()
    assert result["ok"] is False and [e["header"] for e in result["errors"]] == ["容量"]
    annotated = load_workbook(io.BytesIO(base64.b64decode(result["annotated"]))).active
    assert "容量" in annotated[f"{chr(ord('A') + headers.index('容量'))}2"].comment.text
    assert [b["beds"] for b in client.get("/api/v1/housing/buildings").get_json() if b["code"] == "S1"] == [2]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("put", "/api/v1/housing/campuses/EAST", {"name": "东校区"}),
    ("put", "/api/v1/housing/buildings/E1", {"name": "东1号楼", "gender_policy": "M"}),
    ("put", "/api/v1/housing/buildings/B1/rooms/103", {"capacity": 4, "beds": 4}),
    ("post", "/api/v1/housing/beds", {"beds": room_beds("E2", "东2号楼", "M", "101")}),
    ("delete", "/api/v1/housing/beds/1号楼-102-4", None),
    ("post", "/api/v1/housing/allocations/rooms", {"rooms": [{"building_code": "B1", "room_no": "102"}],
                                                   "college_code": "01"}),
    ("post", "/api/v1/housing/allocations/beds", {"labels": ["1号楼-102-4"], "college_code": "01"}),
    ("post", "/api/v1/housing/inventory/import", {"content": base64.b64encode(b"PK").decode()}),
])
def test_a_counselor_may_not_write_the_inventory(env: dict[str, Any], method: str, path: str,
                                                 body: dict[str, Any] | None) -> None:
    client = client_as(env, MY_COUNSELOR)
    answer = getattr(client, method)(path, json=body, headers=csrf(client))
    error = answer.get_json()["error"]
    assert (answer.status_code, error["code"]) == (403, "forbidden")
    assert error["message"] == "角色“辅导员”无权执行此操作"
    # Nothing changed; and without the CSRF header the write never reaches the service.
    assert getattr(client, method)(path, json=body, headers={}).get_json()["error"]["code"] == "csrf_failed"


def test_the_centre_still_has_every_bed_the_refused_writes_aimed_at(env: dict[str, Any]) -> None:
    building = client_as(env, CENTRE).get("/api/v1/housing/buildings/B1").get_json()
    assert [(r["room_no"], r["beds"], r["college_code"]) for r in building["rooms"]] == \
        [("101", 4, None), ("102", 4, None)]
    codes = {b["code"] for b in client_as(env, CENTRE).get("/api/v1/housing/buildings").get_json()}
    assert "E1" not in codes and "E2" not in codes
