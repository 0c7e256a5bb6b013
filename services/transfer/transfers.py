"""Transfers between institutions (T1, T2, T4, T5, T6): the use cases of both sides of xj-transfer/1.

Inflow (the student comes here): `file_transfer` → our authority decides (`decide_transfer`) → the request
goes out → the peer's decisions and record come in (`apply_incoming`) → roster admits the student.
Outflow (the student leaves): a request comes in → matched against roster → our school, then our authority
decide → decisions and then the record go out, roster marks the student transferred out → the record's ack
completes it (`on_acked`). `run_deadlines` approves our overdue stages by default (T4).

Messages to the peer are queued (`outgoing.queue_message`) in the same transaction as the change they
report; the interchange transport signs, sends, re-sends and acks. Rules live in `domain/workflow.py`.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, AUTHORITY, STUDENT_AFFAIRS, Caller, system_caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.uploads import parse_uploads
from services.common.workdays import WorkdayCalendar
from services.transfer.adapters.orm import (
    CalendarDay,
    InterchangeMessage,
    Peer,
    Student,
    Transfer,
    TransferFile,
    TransferSetting,
    TransferStage,
)
from services.transfer.domain import internal as internal_rules
from services.transfer.domain import protocol, students
from services.transfer.domain import workflow as wf
from services.transfer.outgoing import own_code, queue_message
from services.transfer.roster_port import RosterPort

log = logging.getLogger(__name__)

SERVICE = "transfer"
VIEW_ROLES = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, AUTHORITY)
DEADLINE_REASON = "逾期未审核，默认同意"
OUT_OF_TERM_FIELD = "out_of_term_reason"  # the `field` of the error asking for the out-of-term reason (T5)
_OPEN_OUT = ("pending", "sent")  # outgoing messages still to be delivered


# ---- reading settings, calendar, transfers ------------------------------------------------------


def _setting(s: Session, key: str, default: Any) -> Any:
    row = s.get(TransferSetting, key)
    if row is None:
        return default
    try:
        return json.loads(row.value)
    except ValueError:
        return default


def _calendar(s: Session) -> WorkdayCalendar:
    return WorkdayCalendar({d.day: d.is_workday for d in s.scalars(select(CalendarDay))})


def _our_authority(s: Session) -> str:
    """Our supervising authority's code: configured (`authority_code`), else read from our 学校标识码."""
    configured = _setting(s, "authority_code", None)
    return configured if isinstance(configured, str) and configured else wf.authority_of_institution(own_code())


def _deadline_days(s: Session) -> int:
    return wf.deadline_days(_setting(s, "deadline_days", wf.DEFAULT_DEADLINE_DAYS),
                            _setting(s, "deadline_days_by_authority", {}), _our_authority(s))


def _get(s: Session, transfer_id: str, *, lock: bool = False) -> Transfer:
    t = s.get(Transfer, str(transfer_id), with_for_update=lock) if isinstance(transfer_id, str) else None
    if t is None:
        raise NotFound(f"转学 {transfer_id} 不存在")
    return t


def _decisions(s: Session, transfer_id: str, stages: tuple[str, ...]) -> dict[str, str]:
    rows = s.execute(select(TransferStage.stage, TransferStage.decision)
                     .where(TransferStage.transfer_id == transfer_id, TransferStage.stage.in_(stages))
                     .order_by(TransferStage.id))
    return {stage: decision for stage, decision in rows}


def _snapshot(t: Transfer) -> dict[str, Any]:
    return {"state": t.state, "stage": t.stage,
            "stage_deadline": t.stage_deadline.isoformat() if t.stage_deadline else None}


def _local_iso(moment: datetime) -> str:
    return moment.astimezone(wf.CAMPUS_TZ).isoformat()


# ---- state changes shared by the use cases --------------------------------------------------------


def _enter(s: Session, t: Transfer, state: str, now: datetime) -> None:
    """Move to `state`; a stage of ours gets its deadline in working days from today (T4)."""
    t.state = state
    t.stage = wf.stage_of(state)
    today = wf.campus_day(now)
    t.stage_started_on = today if t.stage else None
    t.stage_deadline = (_calendar(s).add_workdays(today, _deadline_days(s))
                        if wf.is_ours(t.direction, t.stage) else None)
    t.updated_at = now


def _keep_stage(s: Session, t: Transfer, stage: str, decision: str, reason: str | None, by: str,
                at: datetime, *, deadline_passed: bool = False) -> None:
    s.add(TransferStage(transfer_id=t.id, stage=stage, decision=decision, reason=reason or None,
                        deadline=t.stage_deadline if wf.is_ours(t.direction, stage) else None,
                        deadline_passed=deadline_passed, decided_by=by, decided_at=at))


def _queue(s: Session, t: Transfer, kind: str, payload: dict[str, Any], now: datetime) -> None:
    queue_message(s, peer_code=t.peer_code, kind=kind, transfer_id=t.id, payload=payload, now=now)


def _queue_decision(s: Session, t: Transfer, stage: str, approve: bool, reason: str | None, now: datetime,
                    *, deadline_passed: bool = False) -> None:
    _queue(s, t, protocol.DECISION, {
        "stage": stage, "decision": wf.APPROVED if approve else wf.REJECTED_DECISION, "reason": reason or None,
        "decided_at": _local_iso(now), "deadline_passed": deadline_passed,
    }, now)


def _cancel_open_messages(s: Session, t: Transfer) -> None:
    """Messages of an ended transfer not yet delivered are not sent any more (the cancel itself is)."""
    for m in s.scalars(select(InterchangeMessage).where(
            InterchangeMessage.transfer_id == t.id, InterchangeMessage.direction == "out",
            InterchangeMessage.state.in_(_OPEN_OUT), InterchangeMessage.kind != protocol.CANCEL)):
        m.state = "cancelled"


def _request_payload(t: Transfer, authority: str, now: datetime) -> dict[str, Any]:
    student = {"national_student_id": t.national_student_id, "name": t.name, "gender": t.gender,
               "birth_date": t.birth_date, "id_type": t.id_type, "id_number": t.id_number}
    if t.outflow_student_number:
        student["outflow_student_number"] = t.outflow_student_number
    return {"student": student, "reason": t.reason, "transfer_kind": t.transfer_kind,
            "inflow_approved_at": _local_iso(now), "inflow_authority": authority,
            "evidence": json.loads(t.evidence or "[]")}


def _send_record(s: Session, t: Transfer, roster: RosterPort, now: datetime) -> None:
    """Both outflow stages approved: the record goes out, we keep the archived copy (T6) and roster
    marks the student transferred out (its events release the bed and deactivate the account)."""
    assert t.outflow_student_number
    # JSON round trip: the hash must be over exactly what the peer will parse.
    record = json.loads(json.dumps(roster.transfer_record(t.outflow_student_number), ensure_ascii=False,
                                   default=str))
    t.record = json.dumps(record, ensure_ascii=False)
    t.record_sha256 = protocol.record_sha256(record)
    _queue(s, t, protocol.RECORD, {"record": record, "record_sha256": t.record_sha256,
                                   "archived_at": _local_iso(now)}, now)
    peer = s.get(Peer, t.peer_code)
    roster.mark_transferred_out(t.id, t.outflow_student_number,
                                f"转学至{peer.name if peer else t.peer_code}：{t.reason}")


def _apply_decision(s: Session, t: Transfer, caller: Caller, roster: RosterPort, stage: str, approve: bool,
                    reason: str, now: datetime, *, deadline_passed: bool = False) -> None:
    """Our decision on our current stage (by a person, or by default when its deadline passed)."""
    new_state = wf.decide(t.direction, t.state, stage, approve)
    before = _snapshot(t)
    _keep_stage(s, t, stage, wf.APPROVED if approve else wf.REJECTED_DECISION, reason, caller.username, now,
                deadline_passed=deadline_passed)
    if t.direction == wf.INFLOW:
        if approve:  # our authority approved: now the outflow side hears of it
            authority = (caller.scope.ids[0] if caller.role == AUTHORITY and caller.scope.kind == "area"
                         and caller.scope.ids else _our_authority(s))
            t.inflow_authority, t.inflow_approved_at = authority, now
            _queue(s, t, protocol.REQUEST, _request_payload(t, authority, now), now)
    else:
        _queue_decision(s, t, stage, approve, reason, now, deadline_passed=deadline_passed)
        if approve and stage == wf.OUTFLOW_AUTHORITY:
            _send_record(s, t, roster, now)
    if not approve:
        t.outcome_reason = f"{wf.STAGE_LABELS[stage]}不同意：{reason}"
    _enter(s, t, new_state, now)
    audit(s, caller, "transfer.deadline_approve" if deadline_passed else "transfer.decide", f"transfer:{t.id}",
          before, {**_snapshot(t), "stage_decided": stage, "approve": approve, "reason": reason})


def _progress_inflow(s: Session, t: Transfer, roster: RosterPort, now: datetime, caller: Caller) -> None:
    """Recompute an inflow transfer from the peer's decisions and record; admit once all are there."""
    decisions = _decisions(s, t.id, wf.PEER_STAGES)
    state = wf.inflow_progress(decisions, t.record_sha256 is not None)
    if state == wf.REJECTED:
        stage = next(st for st in wf.PEER_STAGES if decisions.get(st) == wf.REJECTED_DECISION)
        row = s.scalars(select(TransferStage).where(TransferStage.transfer_id == t.id,
                                                    TransferStage.stage == stage)).first()
        why = row.reason if row and row.reason else ""
        why = "学生信息不符" if why == protocol.STUDENT_MISMATCH else why
        t.outcome_reason = f"{wf.STAGE_LABELS[stage]}不同意" + (f"：{why}" if why else "")
    if state == wf.COMPLETED and not _admit(s, t, roster, caller):
        state = wf.RECORD_PENDING
    if state != t.state:
        _enter(s, t, state, now)


def _admit(s: Session, t: Transfer, roster: RosterPort, caller: Caller) -> bool:
    """Roster creates the student with a new number and the same national student id (T1)."""
    assert t.record is not None and t.target_class_code
    try:
        number = roster.admit_transfer(t.id, json.loads(t.record), t.target_class_code, t.national_student_id)
    except (Invalid, NotFound, Conflict) as exc:  # our data (e.g. the class) or the record: staff must look
        t.outcome_reason = f"学籍建档失败：{exc}"
        audit(s, caller, "transfer.admit_failed", f"transfer:{t.id}", None, {"error": str(exc)})
        return False
    t.inflow_student_number, t.outcome_reason = number, None
    audit(s, caller, "transfer.admit", f"transfer:{t.id}", None, {"inflow_student_number": number})
    return True


# ---- filing and deciding (RPC use cases) ------------------------------------------------------------


def _text(value: Any, label: str, *, required: bool = True, max_length: int = 64) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise Invalid(f"请填写{label}")
    if len(text) > max_length:
        raise Invalid(f"{label}过长（最多 {max_length} 个字符）")
    return text


def _student_fields(student: Any) -> dict[str, Any]:
    if not isinstance(student, dict):
        raise Invalid("学生信息格式不正确")
    name = _text(student.get("name"), "姓名")
    gender = _text(student.get("gender"), "性别")
    if gender not in ("1", "2"):
        raise Invalid("性别应为 1（男）或 2（女）")
    birth = _text(student.get("birth_date"), "出生日期")
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", birth):
            raise ValueError
        date.fromisoformat(birth)
    except ValueError:
        raise Invalid("出生日期应为 YYYY-MM-DD 格式的日期") from None
    id_type = _text(student.get("id_type") or "1", "证件类型", max_length=2)
    id_number = _text(student.get("id_number"), "证件号码", max_length=32).upper()
    number = _text(student.get("outflow_student_number"), "转出学校学号", required=False, max_length=20)
    nsid = wf.national_student_id(_text(student.get("national_student_id"), "全国学籍号", required=False,
                                        max_length=31), id_number)
    return {"name": name, "gender": gender, "birth_date": birth, "id_type": id_type, "id_number": id_number,
            "national_student_id": nsid, "outflow_student_number": number or None}


def file_transfer(db: Database, caller: Caller, roster: RosterPort, student: dict[str, Any], peer_code: str,
                  transfer_kind: str, reason: str, target_class_code: str,
                  evidence: list[dict[str, Any]] | None = None, out_of_term_reason: str = "",
                  now: datetime | None = None) -> dict[str, Any]:
    """转学申请 (inflow, T1): filed with evidence by the school the student joins; its authority decides next."""
    caller.require_role(*wf.FILING_ROLES)
    now = now or datetime.now(UTC)
    fields = _student_fields(student)
    if transfer_kind not in wf.TRANSFER_KINDS:
        raise Invalid("转学类型应为省内转学或跨省转学")
    if transfer_kind == wf.INTRA_PROVINCE and not fields["outflow_student_number"]:
        raise Invalid("省内转学请填写学生在转出学校的学号")
    reason = _text(reason, "转学原因", max_length=500)
    out_of_term_reason = _text(out_of_term_reason, "非常规时段转学原因", required=False, max_length=500)
    target_class_code = _text(target_class_code, "转入班级")
    uploads = parse_uploads(evidence)
    if roster.class_info(target_class_code) is None:  # outside the transaction: an RPC
        raise Invalid(f"转入班级 {target_class_code} 不存在")
    with db.transaction() as s:
        peer = s.get(Peer, str(peer_code or ""))
        if peer is None or not peer.active or peer.code == own_code():
            raise Invalid(f"转出学校 {peer_code} 不是可用的对端单位")
        if wf.out_of_term(wf.campus_day(now), wf.term_windows(_setting(s, "term_windows", []))) \
                and not out_of_term_reason:
            # The field named, so the form shows it without reading this message's wording.
            raise Invalid("当前不在学期初或学期末的转学时段，请填写非常规时段转学原因", OUT_OF_TERM_FIELD)
        open_one = s.scalar(select(Transfer.id).where(
            Transfer.direction == wf.INFLOW, Transfer.national_student_id == fields["national_student_id"],
            Transfer.state.not_in(wf.ENDED)).limit(1))
        if open_one is not None:  # one student, one transfer in progress
            raise Conflict(f"该学生已有办理中的转学申请（{open_one}），请先办结或撤回")
        t = Transfer(id=str(uuid.uuid4()), direction=wf.INFLOW, peer_code=peer.code, state=wf.INFLOW_AUTHORITY,
                     transfer_kind=transfer_kind,
                     **fields, target_class_code=target_class_code, reason=reason,
                     out_of_term_reason=out_of_term_reason or None,
                     evidence=json.dumps([{"name": u.filename, "sha256": u.sha256} for u in uploads],
                                         ensure_ascii=False),
                     filed_by=caller.username, created_at=now, updated_at=now)
        s.add(t)
        s.flush()
        for u in uploads:
            s.add(TransferFile(transfer_id=t.id, filename=u.filename, content_type=u.content_type,
                               size=len(u.data), sha256=u.sha256, data=u.data))
        # Filing is the inflow school's part (the first of the four parties, T4).
        _keep_stage(s, t, wf.INFLOW_SCHOOL, wf.APPROVED, reason, caller.username, now)
        _enter(s, t, wf.INFLOW_AUTHORITY, now)
        audit(s, caller, "transfer.file", f"transfer:{t.id}", None,
              {**_snapshot(t), "peer_code": t.peer_code, "name": t.name, "transfer_kind": transfer_kind,
               "target_class_code": target_class_code, "evidence": [u.filename for u in uploads],
               "out_of_term_reason": t.out_of_term_reason})
        return _view(s, t, wf.campus_day(now))


def decide_transfer(db: Database, caller: Caller, roster: RosterPort, transfer_id: str, stage: str,
                    approve: bool, reason: str = "", now: datetime | None = None) -> dict[str, Any]:
    """A decision of ours on the transfer's current stage (roles per stage, `STAGE_ROLES`)."""
    if stage not in wf.STAGE_ROLES:
        raise Invalid(f"未知的审核环节 {stage}")
    caller.require_role(*wf.STAGE_ROLES[stage])
    if not isinstance(approve, bool):  # "false" from a form must not read as an approval
        raise Invalid("审核结果应为同意（true）或不同意（false）")
    reason = _text(reason, "不同意的理由", required=not approve, max_length=500)
    now = now or datetime.now(UTC)
    with db.transaction() as s:
        t = _get(s, transfer_id, lock=True)
        try:
            _apply_decision(s, t, caller, roster, stage, approve, reason, now)
        except wf.WorkflowRefusal as exc:
            raise Conflict(exc.message) from None
        return _view(s, t, wf.campus_day(now))


def cancel_transfer(db: Database, caller: Caller, transfer_id: str, reason: str,
                    now: datetime | None = None) -> dict[str, Any]:
    """Either side, before the record was sent (contract); the peer hears of it if it knows the transfer."""
    caller.require_role(*wf.CANCEL_ROLES)
    reason = _text(reason, "撤销原因", max_length=500)
    now = now or datetime.now(UTC)
    with db.transaction() as s:
        t = _get(s, transfer_id, lock=True)
        refusal = wf.cancel_refusal(t.direction, t.state)
        if refusal:
            raise Conflict(refusal)
        before = _snapshot(t)
        _cancel_open_messages(s, t)
        if wf.peer_knows(t.direction, t.state):
            _queue(s, t, protocol.CANCEL, {"reason": reason}, now)
        t.outcome_reason = f"本校撤销：{reason}"
        _enter(s, t, wf.CANCELLED, now)
        audit(s, caller, "transfer.cancel", f"transfer:{t.id}", before, {**_snapshot(t), "reason": reason})
        return _view(s, t, wf.campus_day(now))


def _as_of(text: str) -> datetime:
    text = str(text).strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), wf.CAMPUS_TZ)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid("as_of 应为 ISO 日期或时间") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=wf.CAMPUS_TZ)


def run_deadlines(db: Database, caller: Caller, roster: RosterPort, as_of: str = "",
                  now: datetime | None = None) -> dict[str, int]:
    """T4: approve by default every stage of ours whose last day has passed (idempotent: an approved
    stage is no longer current). `as_of` (the system caller only) is the tests' controllable clock. Also
    retries admissions whose record came but roster refused it earlier."""
    caller.require_role(STUDENT_AFFAIRS)
    if as_of and not caller.is_system():
        raise Forbidden("只有系统可以指定处理日期")
    now = _as_of(as_of) if as_of else (now or datetime.now(UTC))
    today = wf.campus_day(now)
    with db.reading() as s:
        due = s.scalars(select(Transfer.id).where(
            Transfer.state.in_((wf.INFLOW_AUTHORITY, wf.OUTFLOW_SCHOOL, wf.OUTFLOW_AUTHORITY)),
            Transfer.stage_deadline < today).order_by(Transfer.stage_deadline, Transfer.id)).all()
        stuck = s.scalars(select(Transfer.id).where(
            Transfer.direction == wf.INFLOW, Transfer.state == wf.RECORD_PENDING,
            Transfer.record_sha256.is_not(None))).all()
    approved = admitted = failed = 0
    for transfer_id in due:
        try:
            with db.transaction() as s:
                t = _get(s, transfer_id, lock=True)
                if not wf.default_approval_due(t.direction, t.state, t.stage_deadline, today):
                    continue  # decided meanwhile, or the peer's stage
                assert t.stage is not None
                _apply_decision(s, t, caller, roster, t.stage, True, DEADLINE_REASON, now, deadline_passed=True)
                approved += 1
        except Exception:  # one transfer (e.g. roster not answering) must not hold up the others
            log.exception("default approval of transfer %s failed", transfer_id)
            failed += 1
    for transfer_id in stuck:
        try:
            with db.transaction() as s:
                t = _get(s, transfer_id, lock=True)
                if t.state == wf.RECORD_PENDING:
                    _progress_inflow(s, t, roster, now, caller)
                    admitted += t.state == wf.COMPLETED
        except Exception:
            log.exception("admission of transfer %s failed", transfer_id)
            failed += 1
    return {"approved": approved, "admitted": admitted, "failed": failed}


# ---- the peer's messages ----------------------------------------------------------------------------


def _refuse(exc: wf.WorkflowRefusal) -> protocol.Refused:
    return protocol.Refused(exc.error, exc.message)


def _peer_transfer(s: Session, body: protocol.Body) -> Transfer:
    t = s.get(Transfer, body.transfer_id, with_for_update=True)
    if t is None or t.peer_code != body.sender:  # another institution's transfer is none of its business
        raise protocol.Refused(protocol.UNKNOWN_TRANSFER, f"未知的转学编号 {body.transfer_id}")
    return t


def apply_incoming(s: Session, received: protocol.Received, roster: RosterPort, now: datetime) -> None:
    """Apply a verified request, decision, record or cancel inside the transport's transaction.
    Raises `protocol.Refused` for a message that must change nothing (the transport acks it rejected)."""
    body, payload = received.body, received.payload
    caller = system_caller(SERVICE, correlation_id=body.message_id)
    try:
        if body.kind == protocol.REQUEST:
            _incoming_request(s, body, payload, roster, now, caller)  # type: ignore[arg-type]
        elif body.kind == protocol.DECISION:
            _incoming_decision(s, body, payload, roster, now, caller)  # type: ignore[arg-type]
        elif body.kind == protocol.RECORD:
            _incoming_record(s, body, payload, roster, now, caller)  # type: ignore[arg-type]
        elif body.kind == protocol.CANCEL:
            _incoming_cancel(s, body, payload, now, caller)  # type: ignore[arg-type]
        else:
            raise protocol.Refused(protocol.BAD_SCHEMA, f"{body.kind} 不由转学流程处理")
    except wf.WorkflowRefusal as exc:
        raise _refuse(exc) from None


def _match(roster: RosterPort, student: protocol.StudentIdentity) -> tuple[str | None, list[str]]:
    """The student the request names, and the fields that disagree with roster's record. Without an
    outflow number (T2, across provinces) the student is found by ID number and national student id."""
    number = student.outflow_student_number
    candidates = [number] if number else roster.student_numbers_by_id_number(student.id_number)
    asked = student.model_dump()
    best: tuple[str | None, list[str]] = (number, ["outflow_student_number"])
    for candidate in candidates:
        identity = roster.student_identity(candidate)
        if identity is None:
            continue
        mismatches = students.match_student(asked, {
            "name": identity.get("name"), "birth_date": identity.get("birth_date"),
            "national_id": identity.get("id_number"), "national_student_id": identity.get("national_student_id")})
        if not mismatches:
            return candidate, []
        best = (candidate, mismatches)
    return best


_FIELD_LABELS = {"name": "姓名", "birth_date": "出生日期", "id_number": "证件号码",
                 "national_student_id": "全国学籍号", "outflow_student_number": "学号"}


def _incoming_request(s: Session, body: protocol.Body, payload: protocol.RequestPayload, roster: RosterPort,
                      now: datetime, caller: Caller) -> None:
    if not protocol.is_uuid(body.transfer_id):
        raise protocol.Refused(protocol.BAD_SCHEMA, "transfer_id 应为 UUID")
    t = s.get(Transfer, body.transfer_id, with_for_update=True)
    cancelled_first = (t is not None and t.direction == wf.OUTFLOW and t.peer_code == body.sender
                       and t.state == wf.CANCELLED and not t.name)
    if t is not None and not cancelled_first:
        raise protocol.Refused(protocol.INVALID_STATE, f"转学编号 {body.transfer_id} 已存在")
    student = payload.student
    if t is None:
        t = Transfer(id=body.transfer_id, direction=wf.OUTFLOW, peer_code=body.sender, state=wf.OUTFLOW_SCHOOL,
                     filed_by=f"peer:{body.sender}", created_at=now, updated_at=now)
        s.add(t)
    t.transfer_kind, t.reason = payload.transfer_kind, payload.reason
    t.national_student_id, t.name, t.gender = student.national_student_id, student.name, student.gender
    t.birth_date, t.id_type, t.id_number = student.birth_date, student.id_type, student.id_number
    t.outflow_student_number = student.outflow_student_number
    t.inflow_authority, t.inflow_approved_at = payload.inflow_authority, payload.inflow_approved_at
    t.evidence = json.dumps([e.model_dump() for e in payload.evidence], ensure_ascii=False)
    if cancelled_first:  # its cancel overtook it: kept for the history, nothing more
        audit(s, caller, "transfer.incoming_request", f"transfer:{t.id}", None, {**_snapshot(t), "late": True})
        return
    number, mismatches = _match(roster, student)
    t.outflow_student_number = number
    copy = s.get(Student, number) if number else None
    refusal = students.transfer_out_refusal(copy.left) if copy is not None and not mismatches else None
    s.flush()
    if mismatches or refusal:
        reason = protocol.STUDENT_MISMATCH if mismatches else refusal
        t.outcome_reason = ("学生信息不符：" + "、".join(_FIELD_LABELS.get(f, f) for f in mismatches)
                            if mismatches else refusal)
        _keep_stage(s, t, wf.OUTFLOW_SCHOOL, wf.REJECTED_DECISION, reason, caller.username, now)
        _queue_decision(s, t, wf.OUTFLOW_SCHOOL, False, reason, now)
        _enter(s, t, wf.REJECTED, now)
    else:
        _enter(s, t, wf.OUTFLOW_SCHOOL, now)
    audit(s, caller, "transfer.incoming_request", f"transfer:{t.id}", None,
          {**_snapshot(t), "peer_code": t.peer_code, "outflow_student_number": number,
           "mismatches": mismatches, "message_id": body.message_id})


def _incoming_decision(s: Session, body: protocol.Body, payload: protocol.DecisionPayload, roster: RosterPort,
                       now: datetime, caller: Caller) -> None:
    t = _peer_transfer(s, body)
    kept = _decisions(s, t.id, wf.PEER_STAGES).get(payload.stage) if t.direction == wf.INFLOW else None
    requested = t.inflow_approved_at is not None
    if wf.peer_decision_effect(t.direction, t.state, requested, kept, payload.decision) == "same":
        return
    before = _snapshot(t)
    _keep_stage(s, t, payload.stage, payload.decision, payload.reason, f"peer:{body.sender}", payload.decided_at,
                deadline_passed=payload.deadline_passed)
    s.flush()
    if t.state not in (wf.REJECTED, wf.CANCELLED):
        _progress_inflow(s, t, roster, now, caller)
    t.updated_at = now
    audit(s, caller, "transfer.incoming_decision", f"transfer:{t.id}", before,
          {**_snapshot(t), "stage_decided": payload.stage, "decision": payload.decision, "reason": payload.reason,
           "deadline_passed": payload.deadline_passed, "message_id": body.message_id})


def _incoming_record(s: Session, body: protocol.Body, payload: protocol.RecordPayload, roster: RosterPort,
                     now: datetime, caller: Caller) -> None:
    t = _peer_transfer(s, body)
    cancels = s.scalars(select(InterchangeMessage).where(
        InterchangeMessage.transfer_id == t.id, InterchangeMessage.direction == "out",
        InterchangeMessage.kind == protocol.CANCEL)).all()
    unanswered = any(m.state in _OPEN_OUT for m in cancels)
    effect = wf.peer_record_effect(t.direction, t.state, t.inflow_approved_at is not None, t.record_sha256,
                                   payload.record_sha256, unanswered)
    if effect == "same":
        return
    before = _snapshot(t)
    t.record = json.dumps(payload.record, ensure_ascii=False)
    t.record_sha256 = payload.record_sha256
    if t.state == wf.CANCELLED:  # the record overtook our cancel: the peer has transferred the student out
        for m in cancels:
            if m.state == "pending":
                m.state = "cancelled"
        t.outcome_reason = "撤销前对方已发出学籍档案，转学继续"  # the state is recomputed below
    _progress_inflow(s, t, roster, now, caller)
    t.updated_at = now
    audit(s, caller, "transfer.incoming_record", f"transfer:{t.id}", before,
          {**_snapshot(t), "record_sha256": t.record_sha256, "inflow_student_number": t.inflow_student_number,
           "message_id": body.message_id})


def _incoming_cancel(s: Session, body: protocol.Body, payload: protocol.CancelPayload, now: datetime,
                     caller: Caller) -> None:
    t = s.get(Transfer, body.transfer_id, with_for_update=True)
    if t is None and protocol.is_uuid(body.transfer_id):
        # Overtook its request (only the inflow side chooses transfer ids): keep it so the request,
        # when it comes, finds the transfer already cancelled.
        t = Transfer(id=body.transfer_id, direction=wf.OUTFLOW, peer_code=body.sender, state=wf.CANCELLED,
                     transfer_kind="", national_student_id="", name="", gender="", birth_date="", id_type="",
                     id_number="", reason="", evidence="[]", outcome_reason=f"对方撤销：{payload.reason}",
                     filed_by=f"peer:{body.sender}", created_at=now, updated_at=now)
        s.add(t)
        audit(s, caller, "transfer.incoming_cancel", f"transfer:{t.id}", None,
              {"state": wf.CANCELLED, "before_request": True, "message_id": body.message_id})
        return
    t = _peer_transfer(s, body)
    if wf.peer_cancel_effect(t.direction, t.state) == "same":
        return
    before = _snapshot(t)
    _cancel_open_messages(s, t)
    t.outcome_reason = f"对方撤销：{payload.reason}"
    _enter(s, t, wf.CANCELLED, now)
    audit(s, caller, "transfer.incoming_cancel", f"transfer:{t.id}", before,
          {**_snapshot(t), "reason": payload.reason, "message_id": body.message_id})


def on_acked(s: Session, sent: InterchangeMessage, ack: protocol.AckPayload, roster: RosterPort,
             now: datetime) -> None:
    """The peer answered one of our messages (`sent.state` is already "acked" or "rejected")."""
    if not sent.transfer_id:
        return
    t = s.get(Transfer, sent.transfer_id, with_for_update=True)
    if t is None:
        return
    caller = system_caller(SERVICE, correlation_id=sent.message_id)
    before = _snapshot(t)
    if sent.state == "acked":
        if sent.kind == protocol.RECORD and t.direction == wf.OUTFLOW and t.state == wf.RECORD_SENT:
            _enter(s, t, wf.COMPLETED, now)
            audit(s, caller, "transfer.record_acked", f"transfer:{t.id}", before, _snapshot(t))
        return
    error = ack.error or "rejected"
    if sent.kind == protocol.REQUEST and t.direction == wf.INFLOW and t.state not in wf.ENDED:
        # the outflow side refused it, so it never heard of the transfer
        t.outcome_reason = f"对方拒收转学申请（{error}）"
        _enter(s, t, wf.REJECTED, now)
    elif sent.kind == protocol.CANCEL:
        if t.state == wf.CANCELLED:
            _restore(s, t, roster, now, caller, error)
        # else the transfer went on meanwhile (the record overtook the cancel): nothing to undo
    elif t.state not in wf.ENDED:  # a decision or the record refused: nothing to undo; staff must see it
        t.outcome_reason = f"对方拒收{wf.MESSAGE_KIND_LABELS.get(sent.kind or '', sent.kind)}（{error}），请与对方联系"
        t.updated_at = now
    audit(s, caller, "transfer.message_rejected", f"transfer:{t.id}", before,
          {**_snapshot(t), "kind": sent.kind, "message_id": sent.message_id, "error": error})


def _restore(s: Session, t: Transfer, roster: RosterPort, now: datetime, caller: Caller, error: str) -> None:
    """The peer refused our cancel (e.g. it had already sent the record): the transfer goes on where it was."""
    for m in s.scalars(select(InterchangeMessage).where(
            InterchangeMessage.transfer_id == t.id, InterchangeMessage.direction == "out",
            InterchangeMessage.state == "cancelled", InterchangeMessage.kind != protocol.CANCEL)):
        m.state, m.next_attempt_at = "pending", now
    t.outcome_reason = f"对方未接受撤销（{error}），转学继续"
    if t.direction == wf.INFLOW:
        _progress_inflow(s, t, roster, now, caller)  # from cancelled: always a change of state
    else:
        _enter(s, t, wf.outflow_progress(_decisions(s, t.id, wf.PEER_STAGES)), now)


# ---- views ----------------------------------------------------------------------------------------


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _days_left(t: Transfer, calendar: WorkdayCalendar, today: date) -> int | None:
    if t.stage_deadline is None or t.state in wf.ENDED:
        return None
    return calendar.workdays_left(today, t.stage_deadline)


def _summary(t: Transfer, peer_names: dict[str, str], calendar: WorkdayCalendar, today: date) -> dict[str, Any]:
    return {
        "transfer_id": t.id, "direction": t.direction, "direction_label": wf.DIRECTION_LABELS.get(t.direction, ""),
        "peer_code": t.peer_code, "peer_name": peer_names.get(t.peer_code, ""),
        "state": t.state, "state_label": wf.STATE_LABELS.get(t.state, t.state),
        "stage": t.stage, "stage_label": wf.STAGE_LABELS.get(t.stage or "", ""),
        "stage_is_ours": wf.is_ours(t.direction, t.stage),
        "stage_deadline": _iso(t.stage_deadline), "days_left": _days_left(t, calendar, today),
        "student": {"national_student_id": t.national_student_id, "name": t.name, "gender": t.gender,
                    "gender_label": wf.GENDER_LABELS.get(t.gender, t.gender), "birth_date": t.birth_date,
                    "id_type": t.id_type, "id_number": t.id_number},
        "outflow_student_number": t.outflow_student_number, "inflow_student_number": t.inflow_student_number,
        "target_class_code": t.target_class_code, "reason": t.reason, "out_of_term_reason": t.out_of_term_reason,
        "transfer_kind": t.transfer_kind, "transfer_kind_label": wf.KIND_LABELS.get(t.transfer_kind, ""),
        "created_at": _iso(t.created_at), "updated_at": _iso(t.updated_at), "outcome_reason": t.outcome_reason,
    }


def _peer_names(s: Session) -> dict[str, str]:
    return dict(s.execute(select(Peer.code, Peer.name)).tuples().all())


def _view(s: Session, t: Transfer, today: date) -> dict[str, Any]:
    """A transfer with its stages, every message sent or received, and its evidence."""
    view = _summary(t, _peer_names(s), _calendar(s), today)
    stages = s.scalars(select(TransferStage).where(TransferStage.transfer_id == t.id).order_by(TransferStage.id))
    messages = s.scalars(select(InterchangeMessage).where(InterchangeMessage.transfer_id == t.id)
                         .order_by(InterchangeMessage.created_at, InterchangeMessage.id))
    files = s.execute(select(TransferFile.id, TransferFile.filename, TransferFile.content_type, TransferFile.size,
                             TransferFile.sha256).where(TransferFile.transfer_id == t.id).order_by(TransferFile.id))
    view.update({
        "stages": [{"stage": st.stage, "stage_label": wf.STAGE_LABELS.get(st.stage, st.stage),
                    "decision": st.decision, "decision_label": wf.DECISION_LABELS.get(st.decision, st.decision),
                    "reason": st.reason, "deadline": _iso(st.deadline), "deadline_passed": st.deadline_passed,
                    "decided_by": st.decided_by, "decided_at": _iso(st.decided_at)} for st in stages],
        "messages": [{"id": m.id, "direction": m.direction,
                      "direction_label": "发出" if m.direction == "out" else "收到",
                      "kind": m.kind, "kind_label": wf.MESSAGE_KIND_LABELS.get(m.kind or "", m.kind or ""),
                      "message_id": m.message_id, "state": m.state,
                      "state_label": wf.MESSAGE_STATE_LABELS.get(m.state, m.state), "error": m.error,
                      "error_label": wf.MESSAGE_ERROR_LABELS.get(m.error or "", m.error or ""),
                      "detail": m.detail, "attempts": m.attempts, "at": _iso(m.created_at),
                      "acked_at": _iso(m.acked_at)} for m in messages],
        "evidence": json.loads(t.evidence or "[]"),
        "evidence_files": [{"id": i, "filename": n, "content_type": c, "size": z, "sha256": h}
                           for i, n, c, z, h in files],
        "inflow_authority": t.inflow_authority, "inflow_approved_at": _iso(t.inflow_approved_at),
        "record": json.loads(t.record) if t.record else None, "record_sha256": t.record_sha256,
        "filed_by": t.filed_by,
    })
    return view


def _actions(view: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """What the caller may do with the transfer now (the pages offer only that)."""
    view["may_decide"] = wf.may_decide(caller.role, view["direction"], view["state"])
    view["may_cancel"] = wf.may_cancel(caller.role, view["direction"], view["state"])
    return view


def get_transfer(db: Database, caller: Caller, transfer_id: str, today: date | None = None) -> dict[str, Any]:
    caller.require_role(*VIEW_ROLES)
    with db.reading() as s:
        return _actions(_view(s, _get(s, transfer_id), today or wf.campus_day(datetime.now(UTC))), caller)


def choices() -> dict[str, list[dict[str, str]]]:
    """The labelled codes the pages offer (directions, kinds of transfer, the kinds and states of 校内异动),
    from the domain's tables: the one copy of these labels. No data: any signed-in caller may read them."""

    def labelled(labels: dict[str, str]) -> list[dict[str, str]]:
        return [{"code": code, "label": label} for code, label in labels.items()]

    return {"directions": labelled(wf.DIRECTION_LABELS), "transfer_kinds": labelled(wf.KIND_LABELS),
            "internal_kinds": labelled(internal_rules.KINDS), "internal_states": labelled(internal_rules.STATES)}


def my_stages(caller: Caller) -> list[dict[str, str]]:
    """The stages of ours the caller's role decides, labelled: one approval queue each."""
    caller.require_role(*VIEW_ROLES)
    return [{"direction": direction, "direction_label": wf.DIRECTION_LABELS[direction], "stage": stage,
             "stage_label": wf.STAGE_LABELS[stage]} for direction, stage in wf.stages_decided_by(caller.role)]


def list_transfers(db: Database, caller: Caller, direction: str = "", state: str = "", q: str = "",
                   page: int = 1, per_page: int = 20, today: date | None = None) -> dict[str, Any]:
    caller.require_role(*VIEW_ROLES)
    if direction and direction not in wf.DIRECTIONS:
        raise Invalid("方向应为 inflow（转入）或 outflow（转出）")
    if state and state not in wf.STATES:
        raise Invalid(f"未知的状态 {state}")
    if not isinstance(page, int) or not isinstance(per_page, int) or page < 1 or not 1 <= per_page <= 100:
        raise Invalid("分页参数无效：page ≥ 1，1 ≤ per_page ≤ 100")
    query = select(Transfer)
    if direction:
        query = query.where(Transfer.direction == direction)
    if state:
        query = query.where(Transfer.state == state)
    q = (q or "").strip()
    if q:
        query = query.where(or_(Transfer.name.contains(q), Transfer.national_student_id == q.upper(),
                                Transfer.id_number == q.upper(), Transfer.outflow_student_number.startswith(q),
                                Transfer.inflow_student_number.startswith(q), Transfer.id.startswith(q.lower())))
    today = today or wf.campus_day(datetime.now(UTC))
    with db.reading() as s:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(Transfer.created_at.desc(), Transfer.id)
                         .offset((page - 1) * per_page).limit(per_page)).all()
        names, calendar = _peer_names(s), _calendar(s)
        items = [_actions(_summary(t, names, calendar, today), caller) for t in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page, "state_options": _state_options()}


def _state_options() -> list[dict[str, str]]:
    """Every state in the order a transfer passes them, labelled: the list page's filter."""
    return [{"state": state, "state_label": wf.STATE_LABELS[state]} for state in wf.STATES]


def transfer_evidence(db: Database, caller: Caller, transfer_id: str, file_id: int) -> dict[str, Any]:
    caller.require_role(*VIEW_ROLES)
    with db.reading() as s:
        row = s.get(TransferFile, int(file_id)) if str(file_id).isdigit() else None
        if row is None or row.transfer_id != transfer_id:
            raise NotFound("证明材料不存在")
        return {"filename": row.filename, "content_type": row.content_type,
                "data": base64.b64encode(row.data).decode("ascii")}
