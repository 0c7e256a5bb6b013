"""问题学籍 (R14): suspected duplicates found on entry or on demand; merge of a verified one (R7)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, STUDENT_AFFAIRS, Caller
from services.common.db import Database
from services.common.envelope import new_event
from services.common.errors import Conflict, Invalid, NotFound
from services.common.events import StudentMerged
from services.common.outbox import record_event
from services.roster.adapters.orm import ProblemRecord, StatusChange, Student
from services.roster.domain import duplicates as dup
from services.roster.handlers import SOURCE, actor_of

OPEN, MERGED, DISMISSED = "open", "merged", "dismissed"
STATE_LABELS = {OPEN: "待处理", MERGED: "已合并", DISMISSED: "已排除"}


def register_suspects(s: Session, records: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Records without an ID number whose name, gender and birth date match someone registered."""
    people = {(r["name"], r["gender"], r["birth_date"]): r["student_number"] for r in records
              if r.get("birth_date")}
    if not people:
        return []
    rows = s.execute(select(Student.name, Student.gender, Student.birth_date, Student.student_number).where(
        tuple_(Student.name, Student.gender, Student.birth_date).in_(list(people)))).all()
    found: dict[tuple, list[str]] = {}
    for name, gender, born, number in rows:
        found.setdefault((name, gender, born), []).append(number)
    return [(dup.person_key(*person), sorted({*numbers, people[person]}))
            for person, numbers in found.items() if {*numbers} != {people[person]}]


def record_suspects(s: Session, suspects: Sequence[tuple[str, list[str]]]) -> int:
    """Add problem records, or widen one when new numbers join it; returns how many changed.

    A group already decided (dismissed, merged) is reopened only if a new number joins it,
    so importing the same file again changes nothing here either.
    """
    now = datetime.now(UTC)
    changed = 0
    for key, numbers in suspects:
        row = s.scalars(select(ProblemRecord).where(ProblemRecord.match_key == key)).first()
        if row is None:
            s.add(ProblemRecord(kind="duplicate", match_key=key, student_numbers=json.dumps(numbers),
                                evidence=dup.evidence(key, numbers), state=OPEN, created_at=now))
            changed += 1
            continue
        known = set(json.loads(row.student_numbers))
        if set(numbers) <= known:
            continue
        merged = sorted(n for n in known | set(numbers) if s.get(Student, n) is not None)
        row.student_numbers = json.dumps(merged)
        row.evidence = dup.evidence(key, merged)
        row.state, row.resolved_at, row.resolved_by = OPEN, None, None
        changed += 1
    s.flush()
    return changed


def scan(db: Database, caller: Caller) -> dict[str, int]:
    """On-demand 查重 across the register (same ID numbers are prevented by a unique index)."""
    caller.require_role(STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
    with db.transaction() as s:
        groups = s.execute(
            select(Student.name, Student.gender, Student.birth_date)
            .where(Student.birth_date.is_not(None))
            .group_by(Student.name, Student.gender, Student.birth_date)
            .having(func.count() > 1)
        ).all()
        suspects = []
        for name, gender, born in groups:
            numbers = sorted(s.scalars(select(Student.student_number).where(
                Student.name == name, Student.gender == gender, Student.birth_date == born,
            )))
            ids = {n for n in s.scalars(select(Student.national_id).where(Student.student_number.in_(numbers)))}
            if None in ids or len(ids) == 1:  # two different ID numbers mean two people
                suspects.append((dup.person_key(name, gender, born), numbers))
        touched = record_suspects(s, suspects)
        audit(s, caller, "problem.scan", "students", None, {"groups": touched}, chain=True)
    return {"found": touched}


def list_problems(db: Database, caller: Caller, state: str = OPEN) -> list[dict[str, Any]]:
    caller.require_role(STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
    with db.reading() as s:
        query = select(ProblemRecord).order_by(ProblemRecord.id.desc())
        if state:
            query = query.where(ProblemRecord.state == state)
        result = []
        for p in s.scalars(query.limit(500)):
            numbers = json.loads(p.student_numbers)
            students = {x.student_number: x for x in s.scalars(select(Student).where(
                Student.student_number.in_(numbers)))}
            result.append({
                "id": p.id, "kind": p.kind, "state": p.state, "state_label": STATE_LABELS.get(p.state, p.state),
                "evidence": p.evidence, "note": p.note, "created_at": p.created_at.isoformat(),
                "students": [_summary(students[n]) if n in students else {"student_number": n, "removed": True}
                             for n in numbers],
            })
        return result


def _summary(x: Student) -> dict[str, Any]:
    return {"student_number": x.student_number, "name": x.name, "gender": x.gender,
            "birth_date": x.birth_date.isoformat() if x.birth_date else None, "class_code": x.class_code,
            "status": x.status, "has_national_id": bool(x.national_id), "created_at": x.created_at.isoformat()}


def _open_problem(s: Session, problem_id: int) -> ProblemRecord:
    problem = s.get(ProblemRecord, problem_id)
    if problem is None:
        raise NotFound(f"问题学籍 {problem_id} 不存在")
    if problem.state != OPEN:
        raise Conflict(f"问题学籍 {problem_id} 已处理（{STATE_LABELS.get(problem.state, problem.state)}）")
    return problem


def merge(db: Database, caller: Caller, problem_id: int, keep: str, remove: str, evidence: str) -> dict[str, Any]:
    """R7: remove a verified duplicate; its status history moves to the kept record; audited and published."""
    caller.require_role(STUDENT_AFFAIRS)
    if not (evidence or "").strip():
        raise Invalid("合并重复学籍须说明核实依据（可信来源）")
    if keep == remove:
        raise Invalid("保留和删除的学号不能相同")
    with db.transaction() as s:
        problem = _open_problem(s, problem_id)
        numbers = json.loads(problem.student_numbers)
        if keep not in numbers or remove not in numbers:
            raise Invalid("只能合并本问题学籍中列出的学号")
        kept, removed = s.get(Student, keep), s.get(Student, remove)
        if kept is None or removed is None:
            raise Conflict("学籍已不存在，请刷新后重试")
        snapshot = {c.key: getattr(removed, c.key) for c in Student.__table__.columns}
        moved = s.execute(update(StatusChange).where(StatusChange.student_number == remove)
                          .values(student_number=keep)).rowcount
        s.execute(delete(Student).where(Student.student_number == remove))
        now = datetime.now(UTC)
        problem.state, problem.resolved_at, problem.resolved_by, problem.note = MERGED, now, caller.username, evidence
        audit(s, caller, "student.merge", remove, snapshot,
              {"merged_into": keep, "problem_id": problem_id, "evidence": evidence, "moved_changes": moved},
              chain=True)
        record_event(s, new_event(
            "student.merged", StudentMerged(removed_number=remove, kept_number=keep, merged_at=now),
            source=SOURCE, actor=actor_of(caller), correlation_id=caller.correlation_id,
        ))
    return {"problem_id": problem_id, "kept": keep, "removed": remove, "moved_changes": moved}


def dismiss(db: Database, caller: Caller, problem_id: int, note: str) -> dict[str, Any]:
    caller.require_role(STUDENT_AFFAIRS)
    if not (note or "").strip():
        raise Invalid("请填写排除理由")
    with db.transaction() as s:
        problem = _open_problem(s, problem_id)
        problem.state, problem.note = DISMISSED, note
        problem.resolved_at, problem.resolved_by = datetime.now(UTC), caller.username
        audit(s, caller, "problem.dismiss", str(problem_id), {"state": OPEN}, {"state": DISMISSED, "note": note},
              chain=True)
    return {"problem_id": problem_id, "state": DISMISSED}
