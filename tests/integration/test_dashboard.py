"""Home pages and the 数据看板 (issue 9) through the real gateway and real services (own processes).

Per role the home items and counts; a counselor's numbers cover only their classes; each chart
bar's link leads to a list with exactly the bar's number of rows; a stopped service degrades the
pages to a notice while the rest still shows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from gateway.app import create_app, rpc_pool
from services.common.caller import Caller, Scope
from tests.harness import Cluster
from tests.integration.test_housing_checkout import enrol_and_house
from tests.integration.test_housing_web import PASSWORD, login

OWN, OTHER = "2023010101", "2023010102"  # enrol_and_house(60): 50 students in OWN, 10 in OTHER
ACADEMIC = Caller("u-aa", "1000009", "academic_affairs", Scope("institution"))


@pytest.fixture
def site(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str) -> Iterator[dict[str, Any]]:
    cluster = make_cluster(fresh_amqp_uri)
    cluster.start("roster", "housing", "identity", "aid", "transfer")
    numbers = enrol_and_house(cluster, 60)
    for username, name, role, kind, ids in (
            ("1000001", "宿管老师", "housing_centre", "institution", []),
            ("1000002", "王老师", "counselor", "classes", [OWN]),
            ("1000003", "学生处老师", "student_affairs", "institution", []),
            ("1000004", "资助经办", "aid_operator", "institution", [])):
        cluster.rpc("identity", "create_account", username, name, role, kind, ids, PASSWORD)
    today = date.today().isoformat()
    roster = cluster.as_(ACADEMIC)
    own = [n for n in numbers if n.startswith(OWN)]
    other = [n for n in numbers if n.startswith(OTHER)]
    roster.roster.apply_status_change(own[0], "suspend", today, "因病休学", "医院证明")
    roster.roster.apply_status_change(own[1], "suspend", today, "因病休学", "医院证明")
    roster.roster.apply_status_change(own[2], "withdraw", today, "本人申请", "申请书")
    roster.roster.apply_status_change(own[3], "suspected_dropout", today, "连续缺勤", "缺勤记录")
    roster.roster.apply_status_change(other[0], "suspected_dropout", today, "连续缺勤", "缺勤记录")
    roster.roster.apply_status_change(other[1], "suspend", today, "因病休学", "医院证明")
    app = create_app({"TESTING": True, "SECRET_KEY": "dashboard", "XUEJI_AMQP_URI": fresh_amqp_uri,
                      "XUEJI_RPC_TIMEOUT": 30.0, "XUEJI_AGGREGATE_TIMEOUT": 2.0, "XUEJI_CONFIGURE_LOGGING": False})
    yield {"app": app, "cluster": cluster, "own": own, "other": other}
    rpc_pool(app).close()


def home_items(client: FlaskClient) -> dict[str, int | None]:
    page = client.get("/").get_data(as_text=True)
    items: dict[str, int | None] = {}
    for key, count in re.findall(r'<tr data-item="([a-z_]+)"(?: data-count="(\d+)")?>', page):
        items[key] = int(count) if count else None
    return items


def total_of(client: FlaskClient, link: str) -> int:
    """The number of rows the list page behind `link` shows (its pager's 共 N 条)."""
    response = client.get(link)
    assert response.status_code == 200, link
    match = re.search(r"共 (\d+) 条", response.get_data(as_text=True))
    assert match is not None, link
    return int(match.group(1))


def test_home_pages_dashboards_and_a_stopped_service(site: dict[str, Any]) -> None:
    app, cluster = site["app"], site["cluster"]

    # -- home: per role, in scope -------------------------------------------------------------
    counselor = app.test_client()
    login(counselor, "1000002")
    assert home_items(counselor) == {"change_requests": 0, "review_queue": 0, "suspected_dropouts": 1}
    office = app.test_client()
    login(office, "1000003")
    assert home_items(office) == {"change_requests": 0, "problem_records": 0, "clearance_problems": 0,
                                  "status_applications": 0, "pending_graduations": 0, "transfer_approvals": 0,
                                  "transfer_due_soon": 0}
    centre = app.test_client()
    login(centre, "1000001")
    assert home_items(centre) == {"holders_who_left": 0, "restore_problems": 0}
    page = counselor.get("/").get_data(as_text=True)
    assert "疑似辍学学生" in page and 'href="/roster/dropouts"' in page and "data-home-notice" not in page

    # -- the counselor's dashboard: own class only, every bar's list has the bar's rows ---------
    data = counselor.get("/api/v1/dashboard").get_json()
    assert set(data["areas"]) == {"enrolment", "status_changes"} and data["missing"] == []
    colleges = data["areas"]["enrolment"]["by"]["college"]["rows"]
    assert [(r["key"], r["count"]) for r in colleges] == [("01", 49)]  # 50 in OWN, the withdrawn one not counted
    for by in ("college", "grade", "gender"):
        for row in data["areas"]["enrolment"]["by"][by]["rows"]:
            assert total_of(counselor, row["link"]) == row["count"], (by, row)
    changes = data["areas"]["status_changes"]
    month = date.today().strftime("%Y-%m")
    assert {(r["month"], r["kind"]): r["count"] for r in changes["rows"]} == {
        (month, "suspend"): 2, (month, "withdraw"): 1, (month, "suspected_dropout"): 1}
    for row in changes["rows"]:
        listed = counselor.get(row["link"]).get_data(as_text=True)
        assert listed.count("<tr data-change=") == row["count"], row
    page = counselor.get("/dashboard").get_data(as_text=True)
    assert 'id="dashboard-data"' in page and "dashboard.js" in page and "vendor/echarts.min.js" in page
    assert 'data-chart="enrolment.college"' in page and 'data-area="occupancy"' not in page

    # -- student affairs: the whole school, occupancy bars lead to the residents of that building --
    data = office.get("/api/v1/dashboard").get_json()
    assert set(data["areas"]) == {"enrolment", "status_changes", "occupancy", "transfers"}
    assert data["areas"]["enrolment"]["by"]["college"]["rows"][0]["count"] == 59
    suspends = [r for r in data["areas"]["status_changes"]["rows"] if r["kind"] == "suspend"]
    assert [r["count"] for r in suspends] == [3]
    occupancy = data["areas"]["occupancy"]
    assert occupancy["totals"]["occupied"] == 59  # the withdrawn student's bed was released
    for building in occupancy["buildings"]:
        assert parse_qs(urlsplit(building["link"]).query) == {"building": [building["code"]]}
        assert total_of(office, building["link"]) == building["occupied"]
    for college in occupancy["colleges"]:
        assert total_of(office, college["link"]) == college["residents"]
    assert data["areas"]["transfers"] == {"rows": [], "states": data["areas"]["transfers"]["states"], "total": 0}
    aid = app.test_client()
    login(aid, "1000004")
    assert set(aid.get("/api/v1/dashboard").get_json()["areas"]) == {"aid"}
    page = aid.get("/dashboard").get_data(as_text=True)
    assert 'data-chart="aid.by_programme"' in page and 'data-area="enrolment"' not in page
    assert counselor.get("/students?college_code=02&counted=1").status_code == 200
    assert total_of(counselor, "/students?college_code=02&counted=1") == 0  # scope holds on the list too

    # -- housing stops: the rest of each page still shows, with a notice ------------------------
    cluster.stop("housing")
    started = time.monotonic()
    data = office.get("/api/v1/dashboard").get_json()
    assert time.monotonic() - started < 10
    assert data["areas"]["occupancy"] is None and data["areas"]["enrolment"] is not None
    assert [(m["area"], m["service"]) for m in data["missing"]] == [("occupancy", "housing")]
    page = office.get("/dashboard").get_data(as_text=True)
    assert "宿舍服务暂时不可用，住宿图表暂时无法显示。" in page and 'data-chart="enrolment.college"' in page
    page = centre.get("/").get_data(as_text=True)
    assert "宿舍服务暂时不可用，相关待办事项暂时无法显示。" in page
    assert home_items(centre) == {"holders_who_left": None, "restore_problems": None}
    assert home_items(office)["transfer_approvals"] == 0  # other services' items unaffected
