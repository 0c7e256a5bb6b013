"""The deploy files agree with the service catalog, the set-up scripts work, and `make run`'s
runner starts everything, seeds the demo data once and stops everything it started.

Docker is not run here: compose.yaml is checked by parsing it. The runner test starts the
real processes (honcho, nameko, gunicorn) against a private RabbitMQ vhost and SQLite
files in a temp dir.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import amqp
import pytest
import yaml
from honcho.environ import parse_procfile
from nameko.standalone.rpc import ClusterRpcProxy

from deploy import seed as demo
from services.catalog import SERVICES
from services.housing.domain.inventory import bed_label, parse_bed_spec
from services.identity.domain.accounts import account_problems
from services.identity.domain.passwords import policy_problems
from services.roster.domain.codes import CodeBook
from services.roster.domain.record import check_record

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


def test_compose_broker_vhost_defaults_to_quorum_queues_like_k8s(compose: dict[str, Any], tmp_path: Path) -> None:
    """compose's RabbitMQ renders the same definitions as the Kubernetes broker: the vhost's
    default queue type is quorum, and the dead-letter policies are identical."""
    broker = compose["services"]["rabbitmq"]
    assert broker["entrypoint"] == ["sh", "/xueji-rabbitmq/setup.sh"]
    assert broker["command"] == ["docker-entrypoint.sh", "rabbitmq-server"]
    assert "./rabbitmq:/xueji-rabbitmq:ro" in broker["volumes"]
    assert not [k for k in broker["environment"] if k.startswith("RABBITMQ_DEFAULT_")]  # ignored with definitions
    etc = tmp_path / "etc"
    env = {"PATH": os.environ["PATH"], "RABBITMQ_TEMPLATES": str(DEPLOY / "rabbitmq"), "RABBITMQ_CONFIG_DIR": str(etc),
           "RABBITMQ_USER": "xueji", "RABBITMQ_PASSWORD": "s3cret-Pass.word~1", "RABBITMQ_VHOST": "xueji"}
    done = subprocess.run(["sh", str(DEPLOY / "rabbitmq/setup.sh"), "echo", "then the broker"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("then the broker")  # it hands over to the image's entrypoint
    assert (etc / "conf.d/20-xueji.conf").read_text() == f"load_definitions = {etc}/definitions.json\n"
    assert stat.S_IMODE((etc / "definitions.json").stat().st_mode) == 0o600
    rendered = json.loads((etc / "definitions.json").read_text())
    [vhost] = rendered["vhosts"]
    assert vhost["name"] == "xueji" and vhost["default_queue_type"] == "quorum"
    assert vhost["metadata"]["default_queue_type"] == "quorum"
    assert rendered["users"] == [{"name": "xueji", "password": "s3cret-Pass.word~1", "tags": ""}]
    k8s_config = yaml.safe_load((DEPLOY / "k8s/rabbitmq-config.yaml").read_text())
    k8s_definitions = json.loads(k8s_config["data"]["definitions.json"].replace("__RABBITMQ_USER__", "xueji"))
    for section in ("vhosts", "permissions", "policies", "exchanges", "queues", "bindings"):
        assert rendered[section] == k8s_definitions[section], section
    refused = subprocess.run(["sh", str(DEPLOY / "rabbitmq/setup.sh"), "true"],
                             env={**env, "RABBITMQ_PASSWORD": "p@ss"}, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "letters, digits" in refused.stderr

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
    assert [line for line in text.splitlines() if line.startswith("FROM ")] == [
        "FROM node:20-slim AS assets", "FROM python:3.11-slim"]
    assert "RUN pip install -r requirements.txt" in text
    for folder in ("services", "gateway", "deploy"):
        assert f"COPY {folder} {folder}" in text


def test_dockerfile_puts_every_browser_library_the_pages_load_into_the_image() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "COPY --from=assets /build/vendor gateway/static/vendor" in text
    assert "npm ci" in text and "COPY gateway/package.json gateway/package-lock.json" in text
    gateway = ROOT / "gateway"
    loaded = {m for f in [*gateway.glob("templates/*.html"), *gateway.glob("static/*.js")]
              for m in re.findall(r"vendor/([A-Za-z0-9_./-]+)", f.read_text())}
    assert loaded >= {"echarts.min.js", "swagger-ui/swagger-ui-bundle.js"}
    copied = re.search(r"FROM node:20-slim AS assets(.*?)\nFROM ", text, re.S)
    assert copied is not None
    for path in loaded:  # the stage copies each file into vendor/<its folder>
        folder, _, name = path.rpartition("/")
        into = re.escape(f"{folder}/" if folder else "")
        assert re.search(rf"{re.escape(name)}.*vendor/{into}", copied.group(1)), path


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
    classes = {u["code"]: u["parent_code"] for u in demo.org_units() if u["kind"] == "class"}
    book = CodeBook.standard()
    for row in students:
        # the register's own validation: required fields, code tables, R6, R13, the org tree
        check = check_record(row, book, today=demo.ENROLMENT_DAY, classes=classes)
        assert check.ok, (row["student_number"], check.errors)
        assert check.values["college_code"] == "01" and row["class_code"] == row["student_number"][:10]
        born = check.values["birth_date"]
        assert isinstance(born, date)
        age = (demo.ENROLMENT_DAY - born).days // 365.25
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


# --- Kubernetes manifests (deploy/k8s) ----------------------------------------------------------
# No cluster here: the manifests are parsed and cross-checked; what runs inside them (the broker's
# set-up script and definitions, the services' probe, the init container's wait) runs for real
# against the machine's RabbitMQ and PostgreSQL.

K8S = DEPLOY / "k8s"
SECRET_TEMPLATE = "secret.template.yaml"
WORKLOADS = ("Deployment", "StatefulSet", "Job")


@pytest.fixture(scope="module")
def k8s() -> dict[str, list[dict[str, Any]]]:
    """Every YAML file of deploy/k8s → its documents."""
    return {path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
            for path in sorted(K8S.glob("*.yaml"))}


def k8s_objects(k8s: dict[str, list[dict[str, Any]]], kind: str | None = None) -> list[dict[str, Any]]:
    return [doc for name, docs in k8s.items() if name != "kustomization.yaml" for doc in docs
            if kind is None or doc["kind"] == kind]


def k8s_object(k8s: dict[str, list[dict[str, Any]]], kind: str, name: str) -> dict[str, Any]:
    [found] = [doc for doc in k8s_objects(k8s, kind) if doc["metadata"]["name"] == name]
    return found


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def containers_of(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def container_env(k8s: dict[str, list[dict[str, Any]]], container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as Kubernetes builds it: envFrom first, then env in order, where
    `$(NAME)` may only use what is already defined (else the kubelet leaves it unexpanded)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(k8s_object(k8s, "ConfigMap", source["configMapRef"]["name"])["data"])
    for var in container.get("env", []):
        value = var.get("value")
        if value is None:
            ref = var["valueFrom"]
            value = f"<{next(iter(ref))}>"
        for used in re.findall(r"\$\((\w+)\)", value):
            assert used in env, f"{container['name']}: {var['name']} uses $({used}) before it is defined"
        env[var["name"]] = value
    return env


def expected_database_url(name: str) -> str:
    return f"postgresql://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@postgres:5432/xueji_{name}"


def k8s_databases(k8s: dict[str, list[dict[str, Any]]]) -> set[str]:
    [script] = k8s_object(k8s, "ConfigMap", "postgres-init")["data"].values()
    return set(re.findall(r"CREATE DATABASE (\w+);", script))


def test_k8s_every_manifest_parses_and_the_kustomization_lists_each_one(k8s: dict[str, list[dict[str, Any]]]) -> None:
    [kustomization] = k8s["kustomization.yaml"]
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    # The Secret template stays out: applying it would reset the real passwords to placeholders.
    assert sorted(listed) == sorted(set(k8s) - {"kustomization.yaml", SECRET_TEMPLATE})
    assert kustomization["namespace"] == "xueji"
    assert [i["name"] for i in kustomization["images"]] == ["xueji"]
    assert all(k8s.values()), "an empty manifest"
    seen = set()
    for doc in k8s_objects(k8s):
        assert doc["apiVersion"] and doc["metadata"]["name"]
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"{key} defined twice"
        seen.add(key)
    [secret] = k8s[SECRET_TEMPLATE]
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "xueji-secrets"
    assert all("CHANGE-ME" in value for value in secret["stringData"].values())
    for workload in k8s_objects(k8s):
        if workload["kind"] in (*WORKLOADS, "CronJob"):
            for container in containers_of(workload):
                assert container["image"] in ("xueji:latest", "rabbitmq:3.13", "postgres:15"), container["image"]


def test_k8s_references_resolve(k8s: dict[str, list[dict[str, Any]]]) -> None:
    """Selectors select pods, and every ConfigMap, Secret key and service account named exists."""
    secret_keys = set(k8s[SECRET_TEMPLATE][0]["stringData"])
    config_maps = {c["metadata"]["name"]: c["data"] for c in k8s_objects(k8s, "ConfigMap")}
    workloads = [w for w in k8s_objects(k8s) if w["kind"] in (*WORKLOADS, "CronJob")]
    pod_labels = []
    for workload in workloads:
        template = workload["spec"]["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob" \
            else workload["spec"]["template"]
        labels = template["metadata"]["labels"]
        pod_labels.append(labels)
        if workload["kind"] in ("Deployment", "StatefulSet"):
            assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        spec = pod_spec(workload)
        if "serviceAccountName" in spec:
            k8s_object(k8s, "ServiceAccount", spec["serviceAccountName"])
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
        for container in containers_of(workload):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["name"] == "xueji-secrets"
                    assert ref["secretKeyRef"]["key"] in secret_keys
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["key"] in config_maps[ref["configMapKeyRef"]["name"]]
            container_env(k8s, container)
    for selecting in [*k8s_objects(k8s, "Service"), *k8s_objects(k8s, "PodDisruptionBudget")]:
        selector = selecting["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert any(selector.items() <= labels.items() for labels in pod_labels), selecting["metadata"]["name"]
    for binding in k8s_objects(k8s, "RoleBinding"):
        k8s_object(k8s, "Role", binding["roleRef"]["name"])
        for subject in binding["subjects"]:
            k8s_object(k8s, "ServiceAccount", subject["name"])


def test_k8s_runs_every_catalog_service_twice_with_only_its_own_database(k8s: dict[str, list[dict[str, Any]]]) -> None:
    deployments = {d["metadata"]["name"]: d for d in k8s_objects(k8s, "Deployment")}
    assert set(deployments) == {*SERVICES, "gateway"}
    databases = k8s_databases(k8s)
    budgets = {p["metadata"]["name"]: p["spec"] for p in k8s_objects(k8s, "PodDisruptionBudget")}
    for name, deployment in deployments.items():
        assert deployment["spec"]["replicas"] >= 2, name
        assert budgets[name]["minAvailable"] == 1
        [main] = pod_spec(deployment)["containers"]
        assert main["readinessProbe"] and main["livenessProbe"], name
        assert main["resources"]["requests"] and main["resources"]["limits"], name
        for container in containers_of(deployment):
            env = container_env(k8s, container)
            urls = {k: v for k, v in env.items() if k.endswith("_DATABASE_URL")}
            if name == "gateway":
                assert urls == {}
            else:
                # A service sees its own database only, in its init container too.
                assert urls == {f"{name.upper()}_DATABASE_URL": expected_database_url(name)}, name
                assert f"xueji_{name}" in databases
            assert env["XUEJI_AMQP_URI"] == "amqp://$(RABBITMQ_USER):$(RABBITMQ_PASSWORD)@rabbitmq:5672/xueji"
        if name != "gateway":
            assert " ".join(main["command"]) == service_command(name)
            [wait] = pod_spec(deployment)["initContainers"]
            assert wait["command"] == ["python", "-m", "deploy.k8s.wait_for_setup", name]
    transfer_env = container_env(k8s, pod_spec(deployments["transfer"])["containers"][0])
    assert re.fullmatch(r"\d{10}", transfer_env["TRANSFER_INSTITUTION_CODE"])

    gateway = pod_spec(deployments["gateway"])["containers"][0]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/api/v1/health"
    assert "gateway.wsgi:app" in gateway["command"]
    gateway_env = container_env(k8s, gateway)
    assert gateway_env["XUEJI_ENV"] == "production" and gateway_env["XUEJI_SECRET_KEY"] == "<secretKeyRef>"
    service = k8s_object(k8s, "Service", "gateway")
    [rule] = k8s_object(k8s, "Ingress", "gateway")["spec"]["rules"]
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == service["metadata"]["name"]


def test_k8s_rabbitmq_is_three_nodes_with_quorum_queues_by_default(k8s: dict[str, list[dict[str, Any]]]) -> None:
    broker = k8s_object(k8s, "StatefulSet", "rabbitmq")
    assert broker["spec"]["replicas"] == 3
    assert broker["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    headless = k8s_object(k8s, "Service", broker["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    assert k8s_object(k8s, "PodDisruptionBudget", "rabbitmq")["spec"]["maxUnavailable"] == 1
    config = k8s_object(k8s, "ConfigMap", "rabbitmq-config")["data"]
    assert "rabbitmq_peer_discovery_k8s" in config["enabled_plugins"]
    conf = dict(line.split(" = ", 1) for line in config["rabbitmq.conf"].splitlines()
                if line and not line.startswith("#"))
    assert conf["cluster_formation.peer_discovery_backend"] == "rabbit_peer_discovery_k8s"
    assert conf["cluster_formation.k8s.service_name"] == headless["metadata"]["name"]
    assert conf["cluster_formation.k8s.hostname_suffix"].startswith(f".{headless['metadata']['name']}.")
    assert conf["load_definitions"] == "/etc/rabbitmq/definitions.json"
    node = [c for c in pod_spec(broker)["containers"] if c["name"] == "rabbitmq"][0]
    assert {"name": "config", "mountPath": "/etc/rabbitmq"} in node["volumeMounts"]
    nodename = {v["name"]: v.get("value") for v in node["env"]}["RABBITMQ_NODENAME"]
    assert f".{headless['metadata']['name']}." in nodename
    # Peer discovery reads the endpoints with the StatefulSet's own service account.
    [rule] = [r for r in k8s_object(k8s, "Role", "rabbitmq-peer-discovery")["rules"] if "endpoints" in r["resources"]]
    assert "get" in rule["verbs"]
    [binding] = k8s_objects(k8s, "RoleBinding")
    assert binding["subjects"][0]["name"] == pod_spec(broker)["serviceAccountName"]

    definitions = json.loads(config["definitions.json"])
    [vhost] = definitions["vhosts"]
    assert vhost["name"] == "xueji" and vhost["default_queue_type"] == "quorum"
    assert vhost["metadata"]["default_queue_type"] == "quorum"
    assert {p["vhost"] for p in definitions["policies"]} == {"xueji"}


def test_k8s_jobs_migrate_and_declare_the_topology_as_compose_does(k8s: dict[str, list[dict[str, Any]]],
                                                                   compose: dict[str, Any]) -> None:
    for job in ("migrate", "topology"):
        [container] = pod_spec(k8s_object(k8s, "Job", job))["containers"]
        assert container["command"] == compose["services"][job]["command"]
    migrate_env = container_env(k8s, pod_spec(k8s_object(k8s, "Job", "migrate"))["containers"][0])
    for name in SERVICES:
        assert migrate_env[f"{name.upper()}_DATABASE_URL"] == expected_database_url(name)
    topology_env = container_env(k8s, pod_spec(k8s_object(k8s, "Job", "topology"))["containers"][0])
    assert "TRANSFER_INSTITUTION_CODE" in topology_env  # it declares this institution's interchange inbox
    assert not [k for k in topology_env if k.endswith("_DATABASE_URL")]
    [prune] = pod_spec(k8s_object(k8s, "CronJob", "audit-retention"))["containers"]
    assert re.search(r"for s in ([\w ]+);", prune["command"][2]).group(1).split() == list(SERVICES)
    # The PostgreSQL init script creates what compose's does: one database per catalog service.
    created = set(re.findall(r"CREATE DATABASE (\w+);", (DEPLOY / "postgres-init.sql").read_text()))
    assert k8s_databases(k8s) == created == {f"xueji_{name}" for name in SERVICES}


def kustomize(kubectl: str, folder: Path) -> list[dict[str, Any]]:
    built = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def namespaces_named(objects: list[dict[str, Any]]) -> set[str]:
    """Every namespace the objects live in or point to (RoleBinding subjects included)."""
    found = {o["metadata"]["name"] if o["kind"] == "Namespace" else o["metadata"].get("namespace") for o in objects}
    return found | {s.get("namespace") for o in objects for s in o.get("subjects", [])}


def test_k8s_kustomize_builds_the_set_and_an_institution_overlay(k8s: dict[str, list[dict[str, Any]]],
                                                                 tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (the manifests are still checked above)")
    objects = kustomize(kubectl, K8S)
    assert len(objects) == len(k8s_objects(k8s)) - len(k8s[SECRET_TEMPLATE])
    assert namespaces_named(objects) == {"xueji"}
    # docs/province.md: one overlay per institution, everything moved to its own namespace.
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": "xueji-4142010001", "resources": [os.path.relpath(K8S, overlay)],
        "patches": [{"target": {"kind": "ConfigMap", "name": "xueji-env"},
                     "patch": yaml.safe_dump([{"op": "replace", "path": "/data/TRANSFER_INSTITUTION_CODE",
                                               "value": "4142010001"}])}]}))
    moved = kustomize(kubectl, overlay)
    assert namespaces_named(moved) == {"xueji-4142010001"}
    [env] = [o for o in moved if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "xueji-env"]
    assert env["data"]["TRANSFER_INSTITUTION_CODE"] == "4142010001"


# The broker's init container script, its definitions, the services' probe and the wait, for real.

def run_broker_setup(k8s: dict[str, list[dict[str, Any]]], tmp_path: Path,
                     **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    config = k8s_object(k8s, "ConfigMap", "rabbitmq-config")["data"]
    src, etc, home = tmp_path / "template", tmp_path / "etc", tmp_path / "home"
    for folder in (src, etc, home):
        folder.mkdir(parents=True, exist_ok=True)
    for key, text in config.items():
        (src / key).write_text(text)
    [setup] = pod_spec(k8s_object(k8s, "StatefulSet", "rabbitmq"))["initContainers"]
    assert setup["command"] == ["sh", "/config-template/setup.sh"]
    values = {"MY_POD_NAMESPACE": "xueji", "RABBITMQ_USER": "xueji", "RABBITMQ_PASSWORD": "s3cret-Pass.word~1",
              "RABBITMQ_ERLANG_COOKIE": "c00kie", "TRANSFER_INSTITUTION_CODE": "4142010001", **env}
    done = subprocess.run(["sh", str(src / "setup.sh")], capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ["PATH"], "RABBITMQ_TEMPLATES": str(src),
                               "RABBITMQ_CONFIG_DIR": str(etc), "RABBITMQ_HOME_DIR": str(home), **values})
    return done, tmp_path


def test_k8s_broker_setup_renders_the_config_and_refuses_placeholders(k8s: dict[str, list[dict[str, Any]]],
                                                                      tmp_path: Path) -> None:
    done, out = run_broker_setup(k8s, tmp_path / "ok")
    assert done.returncode == 0, done.stderr
    conf = (out / "etc" / "rabbitmq.conf").read_text()
    assert "cluster_name = xueji-4142010001" in conf
    assert ".rabbitmq-headless.xueji.svc.cluster.local" in conf and "__" not in conf
    definitions = json.loads((out / "etc" / "definitions.json").read_text())
    assert definitions["users"] == [{"name": "xueji", "password": "s3cret-Pass.word~1", "tags": ""}]
    assert definitions["permissions"][0]["user"] == "xueji"
    cookie = out / "home" / ".erlang.cookie"
    assert cookie.read_text() == "c00kie" and stat.S_IMODE(cookie.stat().st_mode) == 0o400
    assert stat.S_IMODE((out / "etc" / "definitions.json").stat().st_mode) == 0o600
    for bad, said in [({"RABBITMQ_PASSWORD": "CHANGE-ME-rabbitmq-password"}, "placeholder"),
                      ({"RABBITMQ_PASSWORD": "p@ss/word"}, "letters, digits"),
                      ({"RABBITMQ_ERLANG_COOKIE": ""}, "letters, digits"),
                      ({"TRANSFER_INSTITUTION_CODE": "0000"}, "10-digit"),
                      ({"TRANSFER_INSTITUTION_CODE": "0000000000"}, "set TRANSFER_INSTITUTION_CODE")]:
        refused, _ = run_broker_setup(k8s, tmp_path / uuid.uuid4().hex, **bad)
        assert refused.returncode == 1 and said in refused.stderr, (bad, refused.stderr)


def _rabbitmqctl(*args: str, check: bool = True) -> str:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    return subprocess.run([ctl, "-q", *args], check=check, capture_output=True, text=True, timeout=60).stdout


def test_k8s_broker_definitions_make_handler_queues_quorum_and_park_poison(k8s: dict[str, list[dict[str, Any]]],
                                                                          tmp_path: Path) -> None:
    """The rendered definitions, imported into a private vhost of the machine's broker: the real
    topology then declares quorum queues under the policies, and a message redelivered past the
    delivery limit lands in `xueji.poison`."""
    from services.catalog import all_service_classes
    from services.common.relay import amqp_connection
    from services.common.topology import bindings_of, declare

    suffix = uuid.uuid4().hex[:10]
    vhost, user, password = f"xueji-k8s-{suffix}", f"xueji-k8s-{suffix}", uuid.uuid4().hex
    done, out = run_broker_setup(k8s, tmp_path, RABBITMQ_USER=user, RABBITMQ_PASSWORD=password)
    assert done.returncode == 0, done.stderr
    definitions = json.loads((out / "etc" / "definitions.json").read_text())
    definitions["vhosts"][0]["name"] = vhost
    for section in ("permissions", "policies", "exchanges", "queues", "bindings"):
        for item in definitions[section]:
            assert item["vhost"] == "xueji"
            item["vhost"] = vhost
    uri = f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}"
    try:
        # rabbitmqctl runs as the broker's user: tmp_path is private to this one, stdin unsupported (3.10).
        with tempfile.NamedTemporaryFile("w", suffix=".json") as shared:
            shared.write(json.dumps(definitions))
            shared.flush()
            os.chmod(shared.name, 0o644)
            _rabbitmqctl("import_definitions", shared.name)
        deadline = time.monotonic() + 30
        while True:  # the import runs asynchronously
            try:
                amqp_connection(uri).collect()
                break
            except Exception:  # noqa: BLE001 - not imported yet
                assert time.monotonic() < deadline, "the imported user cannot connect"
                time.sleep(0.3)
        bindings = declare(uri, bindings_of(all_service_classes()))
        listed = json.loads(_rabbitmqctl("list_queues", "-p", vhost, "name", "type", "policy", "--formatter", "json"))
        queues = {q["name"]: q for q in listed}
        for b in bindings:
            assert (queues[b.queue]["type"], queues[b.queue]["policy"]) == ("quorum", "xueji-handlers"), b.queue
            dead = queues[f"{b.queue}.dead"]
            assert (dead["type"], dead["policy"]) == ("quorum", "xueji-queues")
        assert queues["xueji.poison"]["type"] == "quorum"

        queue = bindings[0].queue
        conn = amqp_connection(uri)
        try:
            channel = conn.channel()
            # Confirmed: a quorum queue holds the message only once its majority has written it.
            channel.basic_publish_confirm(amqp.Message(b'{"poison": true}', delivery_mode=2),
                                          exchange="", routing_key=queue)
            for _ in range(60):  # a consumer that never settles it: every delivery comes back
                message = channel.basic_get(queue)
                if message is None:
                    break
                channel.basic_reject(message.delivery_tag, requeue=True)
            assert channel.basic_get(queue) is None, "still redelivered past the delivery limit"
            deadline = time.monotonic() + 10
            while (parked := channel.basic_get("xueji.poison")) is None:
                assert time.monotonic() < deadline, "the poison message was not dead-lettered"
                time.sleep(0.2)
            assert parked.body == b'{"poison": true}'
            assert parked.headers["x-death"][0]["queue"] == queue
            channel.basic_ack(parked.delivery_tag)
        finally:
            conn.collect()
    finally:
        _rabbitmqctl("delete_vhost", vhost, check=False)
        _rabbitmqctl("delete_user", user, check=False)


def test_k8s_service_probe_sees_the_process_broker_connection(k8s: dict[str, list[dict[str, Any]]],
                                                             amqp_uri: str, tmp_path: Path) -> None:
    from services.common.relay import amqp_connection

    probes = set()
    for name in SERVICES:
        [main] = pod_spec(k8s_object(k8s, "Deployment", name))["containers"]
        probes |= {tuple(main["readinessProbe"]["exec"]["command"]), tuple(main["livenessProbe"]["exec"]["command"])}
    [probe] = probes
    assert probe[:2] == ("sh", "-c")

    def run(lines: list[str]) -> int:
        (tmp_path / "tcp").write_text("  sl  local_address rem_address   st\n" + "".join(lines))
        (tmp_path / "tcp6").write_text("  sl  local_address rem_address   st\n")
        script = probe[2].replace("/proc/net/tcp6", str(tmp_path / "tcp6"))
        script = script.replace("/proc/net/tcp", str(tmp_path / "tcp"))
        return subprocess.run(["sh", "-c", script], timeout=10).returncode

    def socket_lines(port: int) -> tuple[list[str], list[str]]:
        """This process's side and the server's side of a local connection, as the kernel lists them."""
        rows = Path("/proc/net/tcp").read_text().splitlines(keepends=True)[1:]
        mine = [r for r in rows if r.split()[1].endswith(f":{port:04X}")]
        theirs = [r for r in rows if r.split()[2].endswith(f":{port:04X}")]
        return mine, theirs

    conn = amqp_connection(amqp_uri)
    postgres = socket.create_connection(("127.0.0.1", 5432), timeout=5)
    try:
        ours, broker_side = socket_lines(conn.sock.getsockname()[1])
        to_postgres, _ = socket_lines(postgres.getsockname()[1])
        listening = [r for r in Path("/proc/net/tcp").read_text().splitlines(keepends=True)
                     if r.split()[1].endswith(":1628") and r.split()[3] == "0A"]
        assert ours and broker_side and to_postgres
        assert run(ours) == 0
        assert run(broker_side + to_postgres + listening) == 1
        assert run([]) == 1
        assert subprocess.run(list(probe), timeout=10).returncode == 0  # this machine, connection open
    finally:
        conn.collect()
        postgres.close()


def test_k8s_service_pods_wait_for_the_migrate_and_topology_jobs(pg_database: Callable[[str], str],
                                                                fresh_amqp_uri: str) -> None:
    from services.catalog import all_service_classes
    from services.common.migrate import upgrade
    from services.common.topology import bindings_of, declare

    url = pg_database("k8s_wait")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    env.update({"ROSTER_DATABASE_URL": url, "XUEJI_AMQP_URI": fresh_amqp_uri})

    def wait() -> subprocess.CompletedProcess[str]:
        # The init container's own command.
        return subprocess.run([sys.executable, "-m", "deploy.k8s.wait_for_setup", "roster", "--timeout", "0"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    before = wait()
    assert before.returncode == 1
    assert "roster database at no revision" in before.stderr and "handler queues not declared" in before.stderr
    upgrade("roster", url)
    declare(fresh_amqp_uri, bindings_of(all_service_classes())[:-1])
    half = wait()
    assert half.returncode == 1 and "1 of" in half.stderr and "database" not in half.stderr
    declare(fresh_amqp_uri, bindings_of(all_service_classes()))
    after = wait()
    assert after.returncode == 0, after.stderr
    assert "roster: database migrated and topology declared" in after.stdout
