"""Automatic allocation of an intake (H2): every student gets a free bed that the rules
allow, by college and gender, classmates side by side.

Students are grouped by (college, gender) and, inside a group, by class (largest class
first). Each group fills the rooms allocated to its college first, then rooms allocated
to no college, room after room, so a class occupies consecutive rooms and a room holds
at most the tail of one class and the head of the next. A room never mixes genders,
even in a mixed building.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from services.housing.domain.assignment import Resident, check_eligible, gender_allowed
from services.housing.domain.refusal import Refusal


@dataclass(frozen=True)
class FreeBed:
    label: str
    room: str
    gender_policy: str
    college_code: str | None


@dataclass
class Allocation:
    placed: list[tuple[str, str]] = field(default_factory=list)  # (student_number, bed label)
    unplaced: list[tuple[str, str]] = field(default_factory=list)  # (student_number, why, Chinese)


@dataclass
class _Room:
    label: str
    gender_policy: str
    college_code: str | None
    free: list[str]
    genders: set[str]


def allocate(students: Sequence[Resident], free_beds: Iterable[FreeBed],
             room_genders: Mapping[str, set[str]] | None = None) -> Allocation:
    """Place `students` (who hold no bed) into `free_beds` (in the order rooms should be
    filled). `room_genders` gives the genders already living in each room."""
    result = Allocation()
    rooms: dict[str, _Room] = {}
    for bed in free_beds:
        room = rooms.get(bed.room)
        if room is None:
            genders = set((room_genders or {}).get(bed.room, set()))
            room = rooms[bed.room] = _Room(bed.room, bed.gender_policy, bed.college_code, [], genders)
        room.free.append(bed.label)

    groups: dict[tuple[str, str], dict[str, list[Resident]]] = defaultdict(lambda: defaultdict(list))
    for student in students:
        try:
            check_eligible(student)
        except Refusal as refusal:
            result.unplaced.append((student.student_number, refusal.message))
            continue
        groups[(student.college_code, student.gender)][student.class_code].append(student)

    for (college, gender), classes in sorted(groups.items()):
        candidates = [r for r in rooms.values() if r.college_code == college] + \
                     [r for r in rooms.values() if r.college_code is None]
        candidates = [r for r in candidates if gender_allowed(gender, r.gender_policy)]
        ordered = sorted(classes.items(), key=lambda item: (-len(item[1]), item[0]))
        index = 0
        for _class_code, members in ordered:
            for student in sorted(members, key=lambda s: s.student_number):
                while index < len(candidates) and not _usable(candidates[index], gender):
                    index += 1
                if index == len(candidates):
                    result.unplaced.append((student.student_number, "没有符合学院和性别要求的空床位"))
                    continue
                room = candidates[index]
                room.genders.add(gender)
                result.placed.append((student.student_number, room.free.pop(0)))
    return result


def _usable(room: _Room, gender: str) -> bool:
    return bool(room.free) and room.genders <= {gender}
