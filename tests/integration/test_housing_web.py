"""宿舍管理 pages and API through the real gateway app and real services (own processes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import BytesIO
from typing import Any

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook

from gateway.app import create_app, rpc_pool
from tests.harness import ROOT, Cluster
from tests.integration.test_housing_checkout import enrol_and_house

PASSWORD = "Xueji@2026"


@pytest.fixture
def site(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str) -> Iterator[dict[str, Any]]:
    cluster = make_cluster(fresh_amqp_uri)
    cluster.start("roster", "housing", "identity")
    numbers = enrol_and_house(cluster, 12)  # class 2023010101; men in M1号楼, women in F1号楼
    cluster.rpc("identity", "create_account", "1000001", "宿管老师", "housing_centre", "institution", [], PASSWORD)
    cluster.rpc("identity", "create_account", "1000002", "王老师", "counselor", "classes", ["2023010101"], PASSWORD)
    cluster.rpc("identity", "create_account", "1000003", "李老师", "counselor", "classes", ["2023010199"], PASSWORD)
    app = create_app({"TESTING": True, "SECRET_KEY": "housing-web", "XUEJI_AMQP_URI": fresh_amqp_uri,
                      "XUEJI_RPC_TIMEOUT": 30.0, "XUEJI_CONFIGURE_LOGGING": False})
    yield {"app": app, "cluster": cluster, "numbers": numbers}
    rpc_pool(app).close()


def login(client: FlaskClient, username: str) -> str:
    client.get("/login")
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "next": "",
                                         "csrf_token": token.value})
    assert answer.status_code == 302
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return token.value


def test_housing_centre_browses_previews_and_applies_a_bulk_move(site: dict[str, Any]) -> None:
    client = site["app"].test_client()
    token = login(client, "1000001")
    home = client.get("/").get_data(as_text=True)
    for label in ("楼栋房间", "批量调整", "住宿统计", "退宿管理"):
        assert label in home
    page = client.get("/housing/buildings").get_data(as_text=True)
    assert "M1号楼" in page and "男生楼" in page
    assert '<option value="mixed">男女混合楼</option>' in page  # the new building's policies, labelled by housing
    rooms = client.get("/housing/buildings/M1").get_data(as_text=True)
    assert "1号床" in rooms and "未入住" in rooms

    man = site["numbers"][0]  # student_rows alternates genders: 6 men in M1号楼, 6 women in F1号楼
    before = site["cluster"].rpc("housing", "occupancy", man)["bed"]["label"]
    conflict = f"{man},F1号楼-102-1"  # a man into a free bed of the women's building
    page = client.post("/housing/bulk", data={"csrf_token": token, "rows": conflict, "action": "preview"})
    text = page.get_data(as_text=True)
    assert "发现 1 处冲突，不能调整" in text and "性别" in text and "确认调整" not in text
    page = client.post("/housing/bulk", data={"csrf_token": token, "rows": conflict, "action": "apply"})
    assert "未做任何调整" in page.get_data(as_text=True)
    assert site["cluster"].rpc("housing", "occupancy", man)["bed"]["label"] == before

    free = "M1号楼-102"  # 6 men fill rooms 100 and 101 (4 + 2); room 102 is empty
    page = client.post("/housing/bulk", data={"csrf_token": token, "rows": f"{man},{free}", "action": "preview"})
    assert "无冲突，可调整 1 人" in page.get_data(as_text=True)
    page = client.post("/housing/bulk", data={"csrf_token": token, "rows": f"{man},{free}", "action": "apply"})
    assert "已调整 1 人" in page.get_data(as_text=True)
    assert site["cluster"].rpc("housing", "occupancy", man)["bed"]["label"] == "M1号楼-102-1"

    reports = client.get("/housing/reports").get_data(as_text=True)
    assert 'id="occupancy-chart"' in reports and "vendor/echarts.min.js" in reports
    data = client.get("/api/v1/housing/report").get_json()
    assert data["totals"]["occupied"] == 12
    export = client.get("/housing/reports.xlsx")
    assert export.status_code == 200
    assert load_workbook(BytesIO(export.data)).active["A1"].value == "楼栋编号"
    if (ROOT / "gateway/static/vendor/echarts.min.js").exists():  # installed by `make assets`
        assert client.get("/static/vendor/echarts.min.js").status_code == 200


def test_counselors_read_their_students_housing_only(site: dict[str, Any]) -> None:
    mine = site["app"].test_client()
    login(mine, "1000002")
    page = mine.get("/housing/residents").get_data(as_text=True)
    assert "共 12 条" in page and "M1号楼-100-1" in page
    assert mine.get("/housing/bulk").status_code == 403
    assert mine.get("/housing/buildings").status_code == 403
    answer = mine.post("/api/v1/housing/moves", json={"rows": [{"student_number": site["numbers"][0],
                                                                "target": "M1号楼-102"}]},
                       headers={"X-Requested-With": "XMLHttpRequest"})
    assert answer.status_code == 403

    other = site["app"].test_client()
    login(other, "1000003")
    assert "共 0 条" in other.get("/housing/residents").get_data(as_text=True)
    assert other.get(f"/api/v1/housing/checked-out/{site['numbers'][0]}").status_code == 403


def test_housing_centre_keeps_the_estate_through_the_forms(site: dict[str, Any]) -> None:
    client = site["app"].test_client()
    token = login(client, "1000001")
    answer = client.post("/housing/buildings", data={"csrf_token": token, "what": "campus", "code": "EAST",
                                                     "name": "东校区"})
    assert answer.status_code == 302
    answer = client.post("/housing/buildings", data={"csrf_token": token, "what": "building", "code": "N1",
                                                     "name": "北1号楼", "gender_policy": "mixed",
                                                     "campus_code": "EAST", "floors": "6"})
    assert "楼栋已保存" in client.get(answer.headers["Location"]).get_data(as_text=True)
    answer = client.post("/housing/buildings/N1", data={"csrf_token": token, "what": "room", "room_no": "601",
                                                        "capacity": "4", "floor": "6", "room_type": "四人间",
                                                        "fee": "1500", "beds": "4"})
    assert answer.status_code == 302
    answer = client.post("/housing/buildings/N1", data={"csrf_token": token, "what": "allocate",
                                                        "room_nos": "601", "college_code": "01"})
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "房间已分配给学院" in page and "四人间" in page and "1500" in page and "4号床：空" in page
    page = client.post("/housing/buildings/N1", data={"csrf_token": token, "what": "room", "room_no": "601",
                                                      "capacity": "2"}).get_data(as_text=True)
    assert "容量不能小于床位数" in page
    answer = client.post("/housing/buildings/N1", data={"csrf_token": token, "what": "delete_bed",
                                                        "label": "北1号楼-601-4"})
    assert "床位已删除" in client.get(answer.headers["Location"]).get_data(as_text=True)
    assert [b["beds"] for b in site["cluster"].rpc("housing", "list_buildings") if b["code"] == "N1"] == [3]
