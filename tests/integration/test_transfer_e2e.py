"""Transfers between institutions end to end (issue 8): our roster, transfer, identity and housing as
`nameko run` processes on a private vhost, and another institution played by the peer simulator
(tests/peer.py, written from the contract) over the real broker.

Shown: the approve path both ways (we are inflow: the student is admitted with a new number, an account
and housing follow; we are outflow: the student becomes 转出, the bed is released and the account
deactivated by events), rejection at each stage, a student mismatch, cancel by either side, duplicate
and reordered messages, a forged signature and a wrong recipient (no effect, listed), the peer off the
network and then silent (our messages re-sent until acked, nothing lost), and the deadline approval of
each of our stages by `run_deadlines(as_of=…)`.

One cluster for the module; each scenario uses its own students and transfers and ends them, so the
deadline scenario (last) finds no other transfer waiting at one of our stages.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from kombu import Connection

from conftest import make_vhost
from services.catalog import SERVICES
from services.common.caller import Caller
from services.common.testing import caller
from tests.harness import Cluster, national_id, populate, wait_for
from tests.peer import PeerInstitution, Wire

US, PEER, OTHER = "4142010001", "4133010002", "4111010003"
CLASS = "2023010101"  # populate() puts its students here; transferred-in students join it too
PROCESSES = ("roster", "transfer", "identity", "housing")
OFFICE = caller("academic_affairs")
AUTHORITY = caller("authority", "area", "420100")
PDF = b"%PDF-1.4\n% transfer application\n"
NEWCOMERS = ("林晓", "周敏", "吴昊", "郑琳", "王磊", "冯雪", "陈宇", "褚涛", "卫婷", "蒋帆", "沈悦", "韩松",
             "杨帆", "朱琪")
# populate() index of the student each outflow scenario uses
OUT_APPROVED, OUT_REJECT_SCHOOL, OUT_REJECT_AUTHORITY, OUT_MISMATCH, OUT_CANCELLED, OUT_DEADLINE, OUT_TWICE = range(7)


class Site:
    """Our running institution, the simulated peer, and RPC proxies acting as given staff."""

    def __init__(self, cluster: Cluster, peer: PeerInstitution, numbers: list[str]) -> None:
        self.cluster = cluster
        self.peer = peer
        self.numbers = numbers
        self.completed_inflow: str | None = None
        self._people = 0

    def as_(self, who: Caller) -> Any:
        return self.cluster.as_(who)

    def rpc(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.cluster.rpc(service, method, *args, **kwargs)

    # ---- transfers --------------------------------------------------------------------------
    def view(self, transfer_id: str) -> dict[str, Any]:
        return self.rpc("transfer", "get_transfer", transfer_id)  # type: ignore[no-any-return]

    def wait_state(self, transfer_id: str, state: str, timeout: float = 30) -> dict[str, Any]:
        seen: list[dict[str, Any]] = []

        def reached() -> dict[str, Any] | None:
            seen[:] = [self.view(transfer_id)]
            return seen[0] if seen[0]["state"] == state else None

        try:
            return wait_for(reached, timeout=timeout)  # type: ignore[no-any-return]
        except AssertionError:
            last = seen[0] if seen else {}
            messages = [(m["direction"], m["kind"], m["state"], m["error"]) for m in last.get("messages", [])]
            raise AssertionError(f"transfer {transfer_id} not {state} in {timeout}s: {last.get('state')}, "
                                 f"{last.get('outcome_reason')}, messages {messages}") from None

    def messages(self, transfer_id: str, direction: str, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.view(transfer_id)["messages"] if m["direction"] == direction and m["kind"] == kind]

    def newcomer(self) -> dict[str, Any]:
        """A student of the peer's, not in our roster (valid, distinct ID numbers)."""
        self._people += 1
        gender = "1" if self._people % 2 else "2"
        id_number = national_id(700000 + self._people, gender)
        name = NEWCOMERS[self._people % len(NEWCOMERS)]
        return {"national_student_id": f"G{id_number}", "name": name, "gender": gender,
                "birth_date": f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}", "id_type": "1",
                "id_number": id_number, "outflow_student_number": f"20230301{self._people:04d}"}

    def file_inflow(self, student: dict[str, Any], approve: bool = True) -> str:
        """Filed by our office with evidence; approved by our authority unless told otherwise."""
        view = self.as_(OFFICE).transfer.file_transfer(
            student, PEER, "inter_province", "监护人工作调动", CLASS,
            evidence=[{"filename": "转学申请表.pdf", "data": base64.b64encode(PDF).decode()}])
        assert (view["direction"], view["state"], view["direction_label"]) == ("inflow", "inflow_authority", "转入")
        if approve:
            self.as_(AUTHORITY).transfer.decide_transfer(view["transfer_id"], "inflow_authority", True)
        return view["transfer_id"]  # type: ignore[no-any-return]

    def ours(self, index: int) -> dict[str, Any]:
        """What a peer's request says of one of our students (as the student's application gives it)."""
        number = self.numbers[index]
        who = self.rpc("roster", "transfer_identity", number)
        return {"national_student_id": who["national_student_id"], "name": who["name"], "gender": who["gender"],
                "birth_date": who["birth_date"], "id_type": who["id_type"], "id_number": who["id_number"],
                "outflow_student_number": number}

    def request_out(self, index: int, **changes: Any) -> tuple[str, Wire]:
        """The peer asks for one of our students; returns the transfer id and the request."""
        transfer_id = str(uuid.uuid4())
        request = self.peer.request(transfer_id, {**self.ours(index), **changes})
        assert self.peer.wait_ack(request.message_id)["result"] == "accepted"
        return transfer_id, request

    def peer_approves(self, transfer_id: str, student: dict[str, Any]) -> None:
        for stage in ("outflow_school", "outflow_authority"):
            self.peer.decision(transfer_id, stage)
        self.peer.record(transfer_id, PeerInstitution.record_of(student))

    def status(self, index: int) -> str:
        return self.rpc("roster", "get_student", self.numbers[index])["status"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    amqp_uri, drop_vhost = make_vhost()
    workdir = tmp_path_factory.mktemp("transfer-e2e")
    env = {"TRANSFER_INSTITUTION_CODE": US, "TRANSFER_SEND_INTERVAL": "0.2", "TRANSFER_RESEND_MAX_SECONDS": "2"}
    cluster = Cluster(amqp_uri, {name: f"sqlite:///{workdir}/{name}.sqlite3" for name in SERVICES}, workdir, env)
    peer: PeerInstitution | None = None
    try:
        cluster.prepare()
        cluster.start(*PROCESSES)
        numbers = [r["student_number"] for r in populate(cluster, 7)]
        cluster.rpc("transfer", "save_peer", PEER, "浙江模拟学院", "33", "330000")
        secret = cluster.rpc("transfer", "add_peer_key", PEER, "k2026")["secret"]
        peer = PeerInstitution(amqp_uri, PEER, partner=US, keys={"k2026": base64.b64decode(secret)}).start()
        yield Site(cluster, peer, numbers)
    finally:
        if peer is not None:
            peer.close()
        cluster.close()
        drop_vhost()


# ---- the approve path, both ways ---------------------------------------------------------------------


def test_we_are_inflow_the_student_is_admitted_with_an_account_and_housing(site: Site) -> None:
    student = site.newcomer()
    transfer_id = site.file_inflow(student)
    [request] = site.peer.wait("transfer.request", transfer_id)
    payload = request["payload"]
    assert payload["student"] == student and payload["transfer_kind"] == "inter_province"
    assert payload["inflow_authority"] == "420100"
    assert payload["evidence"] == [{"name": "转学申请表.pdf", "sha256": hashlib.sha256(PDF).hexdigest()}]
    site.wait_state(transfer_id, "outflow_school")

    site.peer_approves(transfer_id, student)
    view = site.wait_state(transfer_id, "completed")
    number = view["inflow_student_number"]
    assert number and number.startswith(CLASS) and number not in site.numbers
    assert [(s["stage"], s["decision"]) for s in view["stages"]] == [
        ("inflow_school", "approved"), ("inflow_authority", "approved"), ("outflow_school", "approved"),
        ("outflow_authority", "approved")]
    # Every message of the transfer is kept with it, both ways, and ours were acked.
    kinds = [(m["direction"], m["kind"]) for m in view["messages"]]
    assert kinds.count(("in", "transfer.decision")) == 2 and ("in", "transfer.record") in kinds
    assert kinds.count(("out", "transfer.ack")) == 3
    assert [m["state"] for m in site.messages(transfer_id, "out", "transfer.request")] == ["acked"]
    acks = [a for b in site.peer.messages("transfer.ack", transfer_id) for a in [b["payload"]]]
    assert sorted(a["result"] for a in acks) == ["accepted"] * 3

    # Roster holds the student under our number with the same national student id; identity and
    # housing learn of the student by roster's events.
    who = site.rpc("roster", "transfer_identity", number)
    assert (who["name"], who["national_student_id"], who["status"]) == \
        (student["name"], student["national_student_id"], "enrolled")
    wait_for(lambda: site.rpc("identity", "get_account", number)["active"], what="account of the newcomer")
    wait_for(lambda: site.rpc("housing", "occupancy", number)["student_number"] == number,
             what="housing knows the newcomer")
    site.completed_inflow = transfer_id


def test_we_are_outflow_the_student_leaves_bed_released_account_deactivated(site: Site) -> None:
    index = OUT_APPROVED
    number = site.numbers[index]
    assert site.rpc("housing", "occupancy", number)["bed"] is not None
    transfer_id, _ = site.request_out(index)
    view = site.wait_state(transfer_id, "outflow_school")
    assert (view["direction"], view["outflow_student_number"], view["days_left"]) == ("outflow", number, 20)

    site.as_(OFFICE).transfer.decide_transfer(transfer_id, "outflow_school", True)
    [school] = site.peer.wait("transfer.decision", transfer_id)
    assert (school["payload"]["stage"], school["payload"]["decision"]) == ("outflow_school", "approved")
    site.as_(AUTHORITY).transfer.decide_transfer(transfer_id, "outflow_authority", True)
    [record] = site.peer.wait("transfer.record", transfer_id)  # its hash was checked by the simulator
    assert record["payload"]["record"]["national_student_id"] == site.ours(index)["national_student_id"]
    assert [d["payload"]["stage"] for d in site.peer.messages("transfer.decision", transfer_id)] == \
        ["outflow_school", "outflow_authority"]
    site.wait_state(transfer_id, "completed")  # the record's ack completes it

    assert site.status(index) == "transferred_out"
    wait_for(lambda: site.rpc("housing", "occupancy", number)["bed"] is None, what="bed released")
    wait_for(lambda: not site.rpc("identity", "get_account", number)["active"], what="account deactivated")


# ---- refusals ----------------------------------------------------------------------------------------


def test_rejection_at_each_stage(site: Site) -> None:
    # Our authority, inflow: nothing goes to the peer.
    ours = site.file_inflow(site.newcomer(), approve=False)
    site.as_(AUTHORITY).transfer.decide_transfer(ours, "inflow_authority", False, "材料不全")
    # The peer's school and the peer's authority, we inflow.
    by_school, by_authority = site.file_inflow(site.newcomer()), site.file_inflow(site.newcomer())
    site.peer.wait("transfer.request", by_school)
    site.peer.wait("transfer.request", by_authority)
    site.peer.decision(by_school, "outflow_school", "rejected", reason="学位已满")
    site.peer.decision(by_authority, "outflow_school")
    site.peer.decision(by_authority, "outflow_authority", "rejected", reason="不符合转学条件")
    # Our school and our authority, we outflow.
    our_school, _ = site.request_out(OUT_REJECT_SCHOOL)
    our_authority, _ = site.request_out(OUT_REJECT_AUTHORITY)
    site.wait_state(our_school, "outflow_school")
    site.wait_state(our_authority, "outflow_school")
    site.as_(OFFICE).transfer.decide_transfer(our_school, "outflow_school", False, "学生有未结处分")
    site.as_(OFFICE).transfer.decide_transfer(our_authority, "outflow_school", True)
    site.as_(AUTHORITY).transfer.decide_transfer(our_authority, "outflow_authority", False, "不符合转学条件")

    for transfer_id in (ours, by_school, by_authority, our_school, our_authority):
        site.wait_state(transfer_id, "rejected")
    assert site.messages(ours, "out", "transfer.request") == []
    assert "学位已满" in site.view(by_school)["outcome_reason"]
    assert "不符合转学条件" in site.view(by_authority)["outcome_reason"]
    [refusal] = site.peer.wait("transfer.decision", our_school)
    assert refusal["payload"] | {"decided_at": None} == {
        "stage": "outflow_school", "decision": "rejected", "reason": "学生有未结处分", "decided_at": None,
        "deadline_passed": False}
    decisions = site.peer.wait("transfer.decision", our_authority, count=2)
    assert [(d["payload"]["stage"], d["payload"]["decision"]) for d in decisions] == \
        [("outflow_school", "approved"), ("outflow_authority", "rejected")]
    assert site.peer.messages("transfer.record", our_authority) == []
    assert site.status(OUT_REJECT_SCHOOL) == site.status(OUT_REJECT_AUTHORITY) == "enrolled"


def test_a_request_that_does_not_match_the_student_is_rejected(site: Site) -> None:
    transfer_id, _ = site.request_out(OUT_MISMATCH, name="另一个人")
    [decision] = site.peer.wait("transfer.decision", transfer_id)
    assert (decision["payload"]["stage"], decision["payload"]["decision"], decision["payload"]["reason"]) == \
        ("outflow_school", "rejected", "student_mismatch")
    assert site.wait_state(transfer_id, "rejected")["outcome_reason"].startswith("学生信息不符")
    assert site.status(OUT_MISMATCH) == "enrolled"


def test_cancel_by_either_side(site: Site) -> None:
    ours = site.file_inflow(site.newcomer())
    site.peer.wait("transfer.request", ours)
    site.wait_state(ours, "outflow_school")
    site.as_(OFFICE).transfer.cancel_transfer(ours, "学生放弃转学")
    [cancel] = site.peer.wait("transfer.cancel", ours)
    assert cancel["payload"] == {"reason": "学生放弃转学"}
    wait_for(lambda: [m["state"] for m in site.messages(ours, "out", "transfer.cancel")] == ["acked"],
             what="our cancel acked")
    assert site.view(ours)["state"] == "cancelled"

    theirs, _ = site.request_out(OUT_CANCELLED)
    site.wait_state(theirs, "outflow_school")
    cancel_wire = site.peer.cancel(theirs, "学生撤回申请")
    assert site.peer.wait_ack(cancel_wire.message_id)["result"] == "accepted"
    assert "学生撤回申请" in site.wait_state(theirs, "cancelled")["outcome_reason"]
    assert site.status(OUT_CANCELLED) == "enrolled"


# ---- an unreliable network and an unreliable peer ----------------------------------------------------


def test_duplicate_and_reordered_messages_apply_once(site: Site) -> None:
    student = site.newcomer()
    transfer_id = site.file_inflow(student)
    site.peer.wait("transfer.request", transfer_id)
    school = site.peer.decision(transfer_id, "outflow_school", send=False)
    authority = site.peer.decision(transfer_id, "outflow_authority", send=False)
    record = site.peer.record(transfer_id, PeerInstitution.record_of(student), send=False)
    # The record and the authority's decision overtake the school's, each delivered twice.
    site.peer.publish(record, authority, record, authority)
    for wire in (record, authority):
        wait_for(lambda w=wire: len(site.peer.acks_for(w.message_id)) == 2, what="both copies answered")
        assert sorted(a["result"] for a in site.peer.acks_for(wire.message_id)) == ["accepted", "duplicate"]
    view = site.view(transfer_id)
    assert (view["state"], view["inflow_student_number"]) == ("outflow_school", None)  # kept, waiting
    site.peer.publish(school, school)
    number = site.wait_state(transfer_id, "completed")["inflow_student_number"]
    wait_for(lambda: len(site.peer.acks_for(school.message_id)) == 2, what="school decision answered")
    found = site.rpc("roster", "search_students", student["id_number"])
    assert [s["student_number"] for s in found["items"]] == [number]  # admitted once

    # A request delivered twice is one transfer; the peer then withdraws it.
    twice, request = site.request_out(OUT_TWICE)
    site.peer.publish(request)
    wait_for(lambda: len(site.peer.acks_for(request.message_id)) == 2, what="repeat answered")
    assert [a["result"] for a in site.peer.acks_for(request.message_id)] == ["accepted", "duplicate"]
    mine = site.rpc("transfer", "list_transfers", direction="outflow", q=site.ours(OUT_TWICE)["name"])
    assert [t["transfer_id"] for t in mine["items"]] == [twice]
    site.peer.cancel(twice)
    site.wait_state(twice, "cancelled")


def test_forged_and_misaddressed_messages_change_nothing_and_are_listed(site: Site) -> None:
    transfer_id = site.completed_inflow
    assert transfer_id is not None, "needs the inflow approve scenario"
    before = site.view(transfer_id)
    forged = site.peer.forged("transfer.cancel", transfer_id, {"reason": "伪造的撤销"})
    site.peer.publish(forged)
    # A misrouting link between brokers: our inbox also gets what is meant for OTHER.
    with Connection(site.cluster.amqp_uri) as conn:
        conn.default_channel.queue_bind(f"transfer.inbox.{US}", "transfer.interchange", f"inst.{OTHER}")
    try:
        misaddressed = site.peer.cancel(transfer_id, "发错单位", recipient=OTHER)
        assert site.peer.wait_ack(misaddressed.message_id) == {
            "acked_message_id": misaddressed.message_id, "result": "rejected", "error": "wrong_recipient"}
    finally:
        with Connection(site.cluster.amqp_uri) as conn:
            conn.default_channel.queue_unbind(f"transfer.inbox.{US}", "transfer.interchange", f"inst.{OTHER}")
    # Addressed to OTHER in the body, routed to us: the body and the routing key disagree.
    rerouted = site.peer.cancel(transfer_id, "路由不符", recipient=OTHER, send=False)
    site.peer.publish(Wire(rerouted.body, f"inst.{US}", rerouted.headers))
    assert site.peer.wait_ack(forged.message_id)["error"] == "bad_signature"
    assert site.peer.wait_ack(rerouted.message_id)["error"] == "bad_schema"

    after = site.view(transfer_id)
    assert (after["state"], after["stages"], after["outcome_reason"]) == \
        (before["state"], before["stages"], before["outcome_reason"])
    problems = {p["message_id"]: p for p in site.rpc("transfer", "interchange_problems")["items"]}
    assert (problems[forged.message_id]["error"], problems[forged.message_id]["sender"]) == ("bad_signature", PEER)
    assert (problems[misaddressed.message_id]["error"], problems[misaddressed.message_id]["recipient"]) == \
        ("wrong_recipient", OTHER)
    assert problems[rerouted.message_id]["error"] == "bad_schema"


def test_peer_off_the_network_then_silent_our_messages_are_resent_until_acked(site: Site) -> None:
    site.peer.disconnect()  # what is published to it now is lost on the way
    student = site.newcomer()
    try:
        transfer_id = site.file_inflow(student)
        wait_for(lambda: site.messages(transfer_id, "out", "transfer.request")[0]["attempts"] >= 2, timeout=20,
                 what="request re-sent while the peer is away")
        assert site.peer.messages("transfer.request", transfer_id) == []
        site.peer.answering = False
    finally:
        site.peer.reconnect()
    # Back, but not answering: re-sent copies keep arriving.
    site.peer.wait("transfer.request", transfer_id, timeout=20)
    wait_for(lambda: len(site.peer.messages("transfer.request", transfer_id, duplicates=True)) >= 2, timeout=20,
             what="a re-sent copy while the peer is silent")
    assert site.messages(transfer_id, "out", "transfer.request")[0]["state"] == "sent"
    site.peer.answering = True
    wait_for(lambda: site.messages(transfer_id, "out", "transfer.request")[0]["state"] == "acked", timeout=20,
             what="request acked once the peer answers")
    copies = site.peer.messages("transfer.request", transfer_id, duplicates=True)
    assert len({c["message_id"] for c in copies}) == 1  # one message, re-sent: the same id and body
    site.peer_approves(transfer_id, student)
    assert site.wait_state(transfer_id, "completed")["inflow_student_number"]


# ---- deadlines (T4): last, when no other transfer waits at one of our stages ---------------------------


def test_each_of_our_stages_is_approved_by_default_after_its_deadline(site: Site) -> None:
    student = site.newcomer()
    inflow = site.file_inflow(student, approve=False)
    outflow, _ = site.request_out(OUT_DEADLINE)
    site.wait_state(outflow, "outflow_school")
    later, much_later = date.today() + timedelta(days=60), date.today() + timedelta(days=120)

    assert site.rpc("transfer", "run_deadlines", as_of=later.isoformat())["approved"] == 2
    assert site.rpc("transfer", "run_deadlines", as_of=later.isoformat())["approved"] == 0  # idempotent
    site.peer.wait("transfer.request", inflow)  # our authority's stage, approved by default
    [school] = site.peer.wait("transfer.decision", outflow)
    assert (school["payload"]["decision"], school["payload"]["deadline_passed"]) == ("approved", True)
    site.wait_state(outflow, "outflow_authority")

    assert site.rpc("transfer", "run_deadlines", as_of=much_later.isoformat())["approved"] == 1
    decisions = site.peer.wait("transfer.decision", outflow, count=2)
    assert [(d["payload"]["stage"], d["payload"]["deadline_passed"]) for d in decisions] == \
        [("outflow_school", True), ("outflow_authority", True)]
    site.peer.wait("transfer.record", outflow)
    view = site.wait_state(outflow, "completed")
    assert [(s["stage"], s["deadline_passed"]) for s in view["stages"]] == \
        [("outflow_school", True), ("outflow_authority", True)]
    assert site.status(OUT_DEADLINE) == "transferred_out"

    site.peer_approves(inflow, student)
    view = site.wait_state(inflow, "completed")
    assert ("inflow_authority", True) in [(s["stage"], s["deadline_passed"]) for s in view["stages"]]
