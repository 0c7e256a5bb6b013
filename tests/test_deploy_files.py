"""The deploy files agree with the service catalog, the set-up scripts work, and `make run`'s
runner starts everything, seeds the demo data once and stops everything it started.

Docker is not run here: compose.yaml is checked by parsing it. The runner test starts the
real processes (honcho, nameko, gunicorn) against a private RabbitMQ vhost and SQLite
files in a temp dir.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from honcho.environ import parse_procfile
from nameko.standalone.rpc import ClusterRpcProxy

from deploy import seed as demo
from services.catalog import SERVICES
from services.housing.domain.inventory import bed_label, parse_bed_spec
from services.identity.domain.accounts import account_problems
from services.identity.domain.passwords import policy_problems
from services.roster.domain.students import check_student_number, parse_new_student

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def service_command(name: str) -> str:
    return f"nameko run --config deploy/nameko.yaml {SERVICES[name]}"


# --- compose.yaml, Procfile, Dockerfile -------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_runs_every_catalog_service_in_its_own_container(compose: dict[str, Any]) -> None:
    containers = compose["services"]
    for name in SERVICES:
        assert name in containers, f"no container for {name}"
        assert " ".join(containers[name]["command"]) == service_command(name)
        env = containers[name]["environment"]
        assert env["XUEJI_AMQP_URI"].startswith("amqp://")
        assert f"{name.upper()}_DATABASE_URL" in env
        # A service sees its own database only.
        assert not [k for k in env if k.endswith("_DATABASE_URL") and k != f"{name.upper()}_DATABASE_URL"]


def test_compose_declares_topology_and_migrates_before_any_service_starts(compose: dict[str, Any]) -> None:
    containers = compose["services"]
    assert containers["topology"]["command"] == ["python", "-m", "services.common.topology"]
    assert containers["migrate"]["command"] == ["python", "-m", "services.common.migrate", "--all"]
    for job in ("topology", "migrate"):
        assert containers[job]["restart"] == "no"
    for name in [*SERVICES, "gateway"]:
        depends = containers[name]["depends_on"]
        assert depends["topology"]["condition"] == "service_completed_successfully", name
    for name in SERVICES:
        assert containers[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert containers["topology"]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert containers["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_databases_are_created_by_the_init_script(compose: dict[str, Any]) -> None:
    created = set(re.findall(r"CREATE DATABASE (\w+);", (DEPLOY / "postgres-init.sql").read_text()))
    migrate_env = compose["services"]["migrate"]["environment"]
    for name in SERVICES:
        url = migrate_env[f"{name.upper()}_DATABASE_URL"]
        assert url.startswith("postgresql://")
        assert url.rsplit("/", 1)[1] in created
        assert compose["services"][name]["environment"][f"{name.upper()}_DATABASE_URL"] == url
    mounts = compose["services"]["postgres"]["volumes"]
    assert any(m.startswith("./postgres-init.sql:/docker-entrypoint-initdb.d/") for m in mounts)


def test_compose_gateway_serves_the_wsgi_app_with_a_required_secret(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert "gunicorn" in gateway["command"][-1] and "gateway.wsgi:app" in gateway["command"][-1]
    assert gateway["environment"]["XUEJI_SECRET_KEY"].startswith("${XUEJI_SECRET_KEY:?")
    assert gateway["environment"]["XUEJI_ENV"] == "production"


def test_procfile_lists_every_service_and_the_gateway() -> None:
    processes = parse_procfile((DEPLOY / "Procfile").read_text()).processes
    assert set(processes) == {*SERVICES, "gateway"}
    for name in SERVICES:
        words = shlex.split(processes[name])
        assert words[0] == f"XUEJI_SERVICE={name}"
        assert " ".join(words[1:]) == service_command(name)
    gateway = processes["gateway"]
    assert "gunicorn -b ${XUEJI_HOST:-127.0.0.1}:${XUEJI_PORT:-8000} -w 1 --threads 8 gateway.wsgi:app" in gateway


def test_dockerfile_builds_the_app_image_from_requirements() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert [line for line in text.splitlines() if line.startswith("FROM ")] == ["FROM python:3.11-slim"]
    assert "RUN pip install -r requirements.txt" in text
    for folder in ("services", "gateway", "deploy"):
        assert f"COPY {folder} {folder}" in text


# --- the set-up scripts (already-running path, for real) ---------------------------------

@pytest.mark.parametrize("script, said", [
    ("ensure-rabbitmq.sh", "rabbitmq: answering on 127.0.0.1:5672"),
    ("ensure-postgres.sh", "postgres: accepting postgres@127.0.0.1:5432"),
])
def test_ensure_scripts_leave_a_running_server_alone(script: str, said: str) -> None:
    path = DEPLOY / script
    subprocess.run(["bash", "-n", str(path)], check=True)
    done = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [said]


# --- demo data, checked with the services' own rules --------------------------------------

def test_demo_students_follow_the_roster_rules_and_are_deterministic() -> None:
    students = demo.demo_students()
    assert students == demo.demo_students()
    assert len(students) == demo.STUDENT_COUNT == 200
    numbers = [s["student_number"] for s in students]
    assert len(set(numbers)) == 200 and numbers[0] == "202301010101"
    assert Counter(s["class_code"] for s in students) == {f"20230101{n:02d}": 50 for n in range(1, 5)}
    assert len({s["national_id"] for s in students}) == 200
    for row in students:
        parsed = parse_new_student(row)  # R6 number, R13 ID check digit, birth date, gender digit
        check_student_number(row["student_number"], "01", row["class_code"])
        assert row["class_code"] == row["student_number"][:10]
        assert parsed.birth_date is not None
        age = (demo.ENROLMENT_DAY - parsed.birth_date).days // 365.25
        assert demo.MIN_AGE <= age <= demo.MAX_AGE
    genders = Counter(s["gender"] for s in students)
    assert genders["1"] > 0 and genders["2"] > 0


def test_demo_beds_fit_housing_rules_and_every_student_gets_one_of_their_building() -> None:
    students = demo.demo_students()
    beds = demo.demo_beds(students)
    labels = []
    for row, bed in enumerate(beds, start=1):
        spec = parse_bed_spec(bed, row)
        assert spec.capacity == 4
        labels.append(spec.label)
        assert demo.bed_label(bed) == bed_label(spec.building_name, spec.room_no, spec.bed_no)
    assert len(set(labels)) == len(labels)
    plan = demo.bed_plan(students, beds)
    assert len(plan) == 200 and len(set(plan.values())) == 200
    policy = {demo.bed_label(b): b["gender_policy"] for b in beds}
    for s in students:
        assert policy[plan[s["student_number"]]] == {"1": "M", "2": "F"}[s["gender"]]
    for gender, building in demo.BUILDINGS.items():
        spare = sum(1 for b in beds if b["building_code"] == building["building_code"]) - sum(
            1 for s in students if s["gender"] == gender)
        assert spare >= demo.SPARE_ROOMS * demo.ROOM_CAPACITY


def test_demo_accounts_satisfy_identity_rules() -> None:
    for account in demo.STAFF_ACCOUNTS:
        assert account_problems(account.username, account.display_name, account.role,
                                account.scope_kind, list(account.scope_ids)) == []
    for account in demo.DEMO_ACCOUNTS:
        assert policy_problems(demo.DEMO_PASSWORD, account.username) == []
    assert [a.username for a in demo.STAFF_ACCOUNTS] == [f"100000{n}" for n in range(1, 7)]


# --- the runner, for real ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Runner:
    """`python -m deploy.run` in the background, its output in a file."""

    def __init__(self, amqp_uri: str, data_dir: Path, port: int, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
        env.update({"XUEJI_AMQP_URI": amqp_uri, "XUEJI_DATA_DIR": str(data_dir),
                    "XUEJI_HOST": "127.0.0.1", "XUEJI_PORT": str(port)})
        env.pop("XUEJI_SECRET_KEY", None)
        self.log = log
        self.proc = subprocess.Popen(  # noqa: SIM115 - closed by stop()
            [sys.executable, "-m", "deploy.run"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, f"runner exited ({self.proc.returncode}):\n{self.output()[-4000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in {timeout}s:\n{self.output()[-4000:]}"
            time.sleep(0.5)

    def child_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"started \(pid=(\d+)\)", self.output())]

    def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_all_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while [p for p in pids if pid_alive(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if pid_alive(p)]


def test_runner_starts_everything_seeds_once_and_stops_cleanly(fresh_amqp_uri: str, tmp_path: Path) -> None:
    port = free_port()
    first = Runner(fresh_amqp_uri, tmp_path / "var", port, tmp_path / "run1.log")
    try:
        first.wait_for("已就绪")
        out = first.output()
        assert "loading demo data (first run)" in out
        assert f"http://127.0.0.1:{port}/" in out
        for account in demo.DEMO_ACCOUNTS:
            assert account.username in out
        assert demo.DEMO_PASSWORD in out and "辅导员" in out and "学生处" in out
        pids = first.child_pids()
        assert len(pids) == len(SERVICES) + 1

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as page:
            assert page.status == 200

        students = demo.demo_students()
        plan = demo.bed_plan(students, demo.demo_beds(students))
        with ClusterRpcProxy({"AMQP_URI": fresh_amqp_uri}, context_data=demo.seed_context(), timeout=30) as rpc:
            assert rpc.roster.health()["students"] == 200
            occupied = rpc.housing.health()["occupied"]
            assert occupied == 200
            first_number = students[0]["student_number"]
            assert rpc.housing.occupancy(first_number)["bed"]["label"] == plan[first_number]
            counselor = rpc.identity.login("1000004", demo.DEMO_PASSWORD, "127.0.0.1")
            assert counselor["must_change_password"] is False
            assert counselor["caller"]["role"] == "counselor"
            assert counselor["caller"]["scope"]["ids"] == ["2023010101", "2023010102"]
            student = rpc.identity.login(demo.DEMO_STUDENT.username, demo.DEMO_PASSWORD, "127.0.0.1")
            assert student["caller"]["role"] == "student"

            # Seeding again changes nothing.
            again = demo.seed(rpc, log=lambda line: None)
            assert again["students"] == 200
            assert rpc.roster.health()["students"] == 200
            assert rpc.housing.health()["occupied"] == occupied
            assert rpc.housing.occupancy(first_number)["bed"]["label"] == plan[first_number]
            assert rpc.identity.login("1000001", demo.DEMO_PASSWORD, "127.0.0.1")["caller"]["role"] == \
                "student_affairs"
    finally:
        code = first.stop(signal.SIGINT)
    assert code == 0, first.output()[-4000:]
    assert "all processes stopped" in first.output()
    assert_all_gone(pids)
    assert (tmp_path / "var" / "seed-state").read_text().strip() == "done"

    second = Runner(fresh_amqp_uri, tmp_path / "var", port, tmp_path / "run2.log")
    try:
        second.wait_for("已就绪")
        assert "demo data present; not seeding" in second.output()
        pids = second.child_pids()
    finally:
        code = second.stop(signal.SIGTERM)
    assert code == 0, second.output()[-4000:]
    assert_all_gone(pids)
