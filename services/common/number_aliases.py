"""Former student numbers (R3): the alias table every consumer of `student.number_changed` keeps, and
looking numbers up through it.

Roster may publish an event for a student's old number and then `student.number_changed`; each travels
on its own queue, so a consumer can apply the rename first. The rename records old → new here, and the
handlers resolve every number an event names before looking anything up, so the late event applies to
the renamed student. A chain a→b→c is stored resolved (a→c, b→c), so a lookup is one query, never a walk.

The table is the one identity, housing and aid created in their migration 0004 and transfer in 0003
(same name, columns and index); it lives in its own metadata, which those services' `migrations/env.py`
add to their own, as with `MessagingBase`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import DateTime, String, delete, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

P = TypeVar("P", bound=BaseModel)


class NumberAliasBase(DeclarativeBase):
    pass


class NumberAlias(NumberAliasBase):
    """A student's former number and the current one; chains stored resolved."""

    __tablename__ = "number_aliases"

    old_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    new_number: Mapped[str] = mapped_column(String(20), index=True)
    renamed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def record_alias(session: Session, old: str, new: str, when: datetime) -> None:
    """Remember that `old` is now `new` (in the rename's transaction). Earlier names of `old` follow
    it to `new`; `new` itself is current again if it had been renamed away before."""
    session.execute(update(NumberAlias).where(NumberAlias.new_number == old).values(new_number=new, renamed_at=when))
    session.execute(delete(NumberAlias).where(NumberAlias.old_number == new))  # current again (drops new→new too)
    existing = session.get(NumberAlias, old)
    if existing is None:
        session.add(NumberAlias(old_number=old, new_number=new, renamed_at=when))
    else:  # the same number renamed again (redelivery is stopped earlier by the inbox)
        existing.new_number, existing.renamed_at = new, when
    session.flush()


def current_numbers(session: Session, numbers: Iterable[str]) -> dict[str, str]:
    """Each of these numbers mapped to the student's current number (itself unless renamed), in one
    query (batched handlers)."""
    wanted = set(numbers)
    if not wanted:
        return {}
    renamed = {old: new for old, new in session.execute(select(NumberAlias.old_number, NumberAlias.new_number)
                                                        .where(NumberAlias.old_number.in_(wanted)))}
    return {number: renamed.get(number, number) for number in wanted}


def current_number(session: Session, number: str) -> str:
    """The student's current number for a number an event names."""
    return current_numbers(session, (number,))[number]


def renumbered(payloads: Iterable[P], current: dict[str, str]) -> list[P]:
    """These payloads (each with a `student_number`) under the numbers `current` maps theirs to (from
    `current_numbers`); a payload already naming its current number is kept as it is."""
    result = []
    for p in payloads:
        number = p.student_number  # type: ignore[attr-defined]
        result.append(p if current.get(number, number) == number
                      else p.model_copy(update={"student_number": current[number]}))
    return result


def with_current_numbers(session: Session, payloads: Iterable[P]) -> list[P]:
    """These event payloads, each naming the student's current number: the rest of the handler then
    works as if roster had sent it under that number. One query."""
    items = list(payloads)
    return renumbered(items, current_numbers(session, (p.student_number for p in items)))  # type: ignore[attr-defined]


def with_current_number(session: Session, payload: P) -> P:
    """One event payload naming the student's current number (`with_current_numbers`)."""
    return with_current_numbers(session, (payload,))[0]
