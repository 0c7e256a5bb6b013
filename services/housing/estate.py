"""Housing use cases of the estate itself (H1): campuses, buildings, rooms and beds kept
by the housing centre, rooms allocated to colleges, the inventory imported from Excel,
and the building → room → bed browser."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common import sheets
from services.common.audit import audit
from services.common.caller import HOUSING_CENTRE, STUDENT_AFFAIRS, Caller
from services.common.db import Database
from services.common.errors import Conflict, Invalid, NotFound
from services.housing.adapters.orm import Bed, Building, Campus, Occupancy, Room, Student
from services.housing.domain.assignment import gender_allowed
from services.housing.domain.inventory import (
    GENDER_POLICIES,
    MAX_CAPACITY,
    RoomDetails,
    check_code,
    check_college,
    check_name,
    check_policy,
    parse_bed_spec,
    parse_room_details,
)
from services.housing.domain.refusal import Refusal
from services.housing.handlers import _error, _iso, add_beds
from services.housing.stays import room_label

# Who sees the whole estate with names of occupants.
ESTATE_READERS = (HOUSING_CENTRE, STUDENT_AFFAIRS)
POLICY_BY_LABEL = {label: code for code, label in GENDER_POLICIES.items()}


def _refused(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except Refusal as refusal:
        raise _error(refusal) from None


def _room(s: Session, building_code: Any, room_no: Any) -> Room:
    room = s.scalar(select(Room).where(Room.building_code == str(building_code), Room.room_no == str(room_no))
                    .with_for_update(of=Room))
    if room is None:
        raise NotFound(f"房间 {building_code}-{room_no} 不存在")
    return room


def room_view(room: Room, beds: int = 0, occupied: int = 0) -> dict[str, Any]:
    return {"building_code": room.building_code, "building_name": room.building.name, "room_no": room.room_no,
            "label": f"{room.building.name}-{room.room_no}", "capacity": room.capacity, "floor": room.floor,
            "room_type": room.room_type, "fee": room.fee, "college_code": room.college_code,
            "beds": beds, "occupied": occupied}


def building_view(b: Building, beds: int = 0, occupied: int = 0, rooms: int = 0) -> dict[str, Any]:
    return {"code": b.code, "name": b.name, "gender_policy": b.gender_policy,
            "gender_policy_label": GENDER_POLICIES.get(b.gender_policy, b.gender_policy),
            "campus_code": b.campus_code, "floors": b.floors, "rooms": rooms, "beds": beds,
            "occupied": occupied, "free": beds - occupied}


# --- campuses and buildings --------------------------------------------------------------
def save_campus(db: Database, caller: Caller, code: Any, name: Any) -> dict[str, Any]:
    caller.require_role(HOUSING_CENTRE)
    code, name = _refused(check_code, code, "校区编号"), _refused(check_name, name, "校区名称")
    with db.transaction() as s:
        campus = s.get(Campus, code, with_for_update=True)
        before = {"name": campus.name} if campus else None
        if campus is None:
            campus = Campus(code=code, name=name)
            s.add(campus)
        campus.name = name
        audit(s, caller, "campus.save", code, before, {"name": name})
        return {"code": code, "name": name}


def choices() -> dict[str, list[dict[str, str]]]:
    """The labelled codes the pages offer (buildings' gender policies), from the domain's table: the one copy of
    these labels. No data: any signed-in caller may read them."""
    return {"gender_policies": [{"code": code, "label": label} for code, label in GENDER_POLICIES.items()]}


def list_campuses(db: Database, caller: Caller) -> list[dict[str, Any]]:
    caller.require_role(*ESTATE_READERS)
    with db.reading() as s:
        return [{"code": c.code, "name": c.name} for c in s.scalars(select(Campus).order_by(Campus.code))]


def save_building(db: Database, caller: Caller, data: Any) -> dict[str, Any]:
    """Create a building or change its name, gender policy, campus or floors. A new
    policy must still admit everyone living there."""
    caller.require_role(HOUSING_CENTRE)
    if not isinstance(data, dict):
        raise Invalid("楼栋数据格式不正确")
    code = _refused(check_code, data.get("code"), "楼栋编号")
    name = _refused(check_name, data.get("name"), "楼栋名称")
    policy = _refused(check_policy, data.get("gender_policy"))
    campus = data.get("campus_code") or None
    floors = data.get("floors")
    if floors is not None and (not isinstance(floors, int) or isinstance(floors, bool) or not 1 <= floors <= 200):
        raise Invalid("楼层数必须是 1 到 200 之间的整数")
    with db.transaction() as s:
        if campus is not None and s.get(Campus, campus) is None:
            raise NotFound(f"校区 {campus} 不存在")
        building = s.get(Building, code, with_for_update=True)
        before = None
        if building is None:
            building = Building(code=code, name=name, gender_policy=policy)
            s.add(building)
        else:
            before = {"name": building.name, "gender_policy": building.gender_policy,
                      "campus_code": building.campus_code, "floors": building.floors}
            genders = set(s.scalars(select(Student.gender).join(Bed, Bed.occupant == Student.student_number)
                                    .join(Room, Room.id == Bed.room_id).where(Room.building_code == code)))
            if any(not gender_allowed(g, policy) for g in genders):
                raise Conflict(f"楼栋 {building.name} 现有住宿学生不符合新的性别类型，不能修改")
            if name != building.name and s.scalar(select(func.count()).select_from(Bed).join(Room)
                                                  .where(Room.building_code == code)):
                raise Conflict("楼栋已有床位，床位编号含楼栋名称，不能改名")
        building.name, building.gender_policy, building.campus_code, building.floors = name, policy, campus, floors
        after = {"name": name, "gender_policy": policy, "campus_code": campus, "floors": floors}
        audit(s, caller, "building.save", code, before, after)
        return building_view(building)


def list_buildings(db: Database, caller: Caller) -> list[dict[str, Any]]:
    caller.require_role(*ESTATE_READERS)
    with db.reading() as s:
        counts = {code: (rooms, beds, occupied or 0) for code, rooms, beds, occupied in s.execute(
            select(Room.building_code, func.count(func.distinct(Room.id)), func.count(Bed.id),
                   func.count(Bed.occupant)).select_from(Room).join(Bed, Bed.room_id == Room.id, isouter=True)
            .group_by(Room.building_code))}
        return [building_view(b, counts.get(b.code, (0, 0, 0))[1], counts.get(b.code, (0, 0, 0))[2],
                              counts.get(b.code, (0, 0, 0))[0])
                for b in s.scalars(select(Building).order_by(Building.code))]


# --- rooms and beds ------------------------------------------------------------------------
def save_room(db: Database, caller: Caller, data: Any) -> dict[str, Any]:
    """Create a room or change its capacity, floor, type, fee or college; `beds` (on
    creation) adds that many beds numbered 1…n."""
    caller.require_role(HOUSING_CENTRE)
    if not isinstance(data, dict):
        raise Invalid("房间数据格式不正确")
    details: RoomDetails = _refused(parse_room_details, data)
    capacity = data.get("capacity")
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= MAX_CAPACITY:
        raise Invalid(f"房间容量必须是 1 到 {MAX_CAPACITY} 之间的整数")
    room_no = data.get("room_no")
    if not isinstance(room_no, str) or not room_no.strip().isalnum() or len(room_no.strip()) > 16:
        raise Invalid("房间号只能由字母和数字组成，最长 16 位")
    room_no = room_no.strip()
    new_beds = data.get("beds", 0)
    if not isinstance(new_beds, int) or isinstance(new_beds, bool) or not 0 <= new_beds <= capacity:
        raise Invalid("床位数必须在 0 到房间容量之间")
    with db.transaction() as s:
        building = s.get(Building, str(data.get("building_code")))
        if building is None:
            raise NotFound(f"楼栋 {data.get('building_code')} 不存在")
        room = s.scalar(select(Room).where(Room.building_code == building.code, Room.room_no == room_no)
                        .with_for_update(of=Room))
        before = None
        if room is None:
            room = Room(building=building, room_no=room_no, capacity=capacity)
            s.add(room)
            s.flush()
        else:
            before = {"capacity": room.capacity, "floor": room.floor, "room_type": room.room_type,
                      "fee": room.fee, "college_code": room.college_code}
        existing = s.scalar(select(func.count()).select_from(Bed).where(Bed.room_id == room.id)) or 0
        if capacity < existing + new_beds:
            raise Conflict(f"房间已有 {existing} 张床位，容量不能小于床位数")
        room.capacity, room.floor, room.room_type, room.fee, room.college_code = (
            capacity, details.floor, details.room_type, details.fee, details.college_code)
        numbers = {b for b in s.scalars(select(Bed.bed_no).where(Bed.room_id == room.id))}
        added, n = 0, 1
        while added < new_beds:
            if str(n) not in numbers:
                s.add(Bed(room=room, bed_no=str(n), label=f"{building.name}-{room_no}-{n}"))
                added += 1
            n += 1
        after = {"capacity": capacity, "floor": details.floor, "room_type": details.room_type,
                 "fee": details.fee, "college_code": details.college_code, "beds_added": added}
        audit(s, caller, "room.save", f"{building.code}-{room_no}", before, after)
        try:
            s.flush()
        except IntegrityError:
            raise Conflict("床位编号与其他楼栋的床位重复，或房间正在被同时修改") from None
        return room_view(room, existing + added)


def delete_bed(db: Database, caller: Caller, label: Any) -> dict[str, Any]:
    """Remove a bed that nobody ever slept in (history is never deleted)."""
    caller.require_role(HOUSING_CENTRE)
    with db.transaction() as s:
        bed = s.scalar(select(Bed).where(Bed.label == str(label)).with_for_update(of=Bed))
        if bed is None:
            raise NotFound(f"床位 {label} 不存在")
        if bed.occupant is not None or s.scalar(select(func.count()).select_from(Occupancy)
                                                .where(Occupancy.bed_id == bed.id)):
            raise Conflict(f"床位 {bed.label} 有住宿记录，不能删除")
        audit(s, caller, "bed.delete", bed.label, {"room": room_label(bed), "bed_no": bed.bed_no}, None)
        s.delete(bed)
        return {"deleted": bed.label}


def allocate_rooms(db: Database, caller: Caller, rooms: Any, college_code: Any) -> dict[str, Any]:
    """Allocate rooms (list of {building_code, room_no}) to a college, or to none (None)."""
    caller.require_role(HOUSING_CENTRE)
    college = _refused(check_college, college_code)
    if not isinstance(rooms, list) or not rooms or len(rooms) > 5000:
        raise Invalid("请选择 1 到 5000 个房间")
    with db.transaction() as s:
        for raw in rooms:
            if not isinstance(raw, dict):
                raise Invalid("房间数据格式不正确")
            room = _room(s, raw.get("building_code"), raw.get("room_no"))
            if room.college_code != college:
                audit(s, caller, "room.allocate", f"{room.building_code}-{room.room_no}",
                      {"college_code": room.college_code}, {"college_code": college})
                room.college_code = college
        return {"allocated": len(rooms), "college_code": college}


def allocate_beds(db: Database, caller: Caller, labels: Any, college_code: Any) -> dict[str, Any]:
    """Allocate single beds to a college (None: back to their room's allocation)."""
    caller.require_role(HOUSING_CENTRE)
    college = _refused(check_college, college_code)
    if not isinstance(labels, list) or not labels or len(labels) > 5000:
        raise Invalid("请选择 1 到 5000 张床位")
    with db.transaction() as s:
        for label in labels:
            bed = s.scalar(select(Bed).where(Bed.label == str(label)).with_for_update(of=Bed))
            if bed is None:
                raise NotFound(f"床位 {label} 不存在")
            if bed.college_code != college:
                audit(s, caller, "bed.allocate_college", bed.label, {"college_code": bed.college_code},
                      {"college_code": college})
                bed.college_code = college
        return {"allocated": len(labels), "college_code": college}


def building_rooms(db: Database, caller: Caller, building_code: Any) -> dict[str, Any]:
    """One building's rooms with their beds and who is in each (the browser)."""
    caller.require_role(*ESTATE_READERS)
    with db.reading() as s:
        building = s.get(Building, str(building_code))
        if building is None:
            raise NotFound(f"楼栋 {building_code} 不存在")
        rooms = list(s.scalars(select(Room).where(Room.building_code == building.code)
                               .order_by(Room.floor, Room.room_no)))
        beds: dict[int, list[Any]] = defaultdict(list)
        rows = s.execute(select(Bed, Student, Occupancy.checked_in_at)
                         .join(Room, Room.id == Bed.room_id)
                         .outerjoin(Student, Student.student_number == Bed.occupant)
                         .outerjoin(Occupancy, (Occupancy.bed_id == Bed.id) & Occupancy.ended_at.is_(None))
                         .where(Room.building_code == building.code).order_by(Bed.id))
        for bed, student, checked_in in rows:
            beds[bed.room_id].append({
                "label": bed.label, "bed_no": bed.bed_no, "occupant": bed.occupant, "allocated_to": bed.allocated_to,
                "name": student.name if student else None, "gender": student.gender if student else None,
                "college_code": student.college_code if student else None,
                "class_code": student.class_code if student else None,
                "since": _iso(bed.occupied_since), "checked_in_at": _iso(checked_in)})
        total = sum(len(v) for v in beds.values())
        occupied = sum(1 for v in beds.values() for b in v if b["occupant"])
        return {"building": building_view(building, total, occupied, len(rooms)),
                "rooms": [room_view(r, len(beds[r.id]), sum(1 for b in beds[r.id] if b["occupant"]))
                          | {"bed_list": beds[r.id]} for r in rooms]}


# --- inventory from Excel (H1) ---------------------------------------------------------------
INVENTORY_COLUMNS = (
    sheets.Column("building_code", "楼栋编号", required=True, text=True, note="字母、数字或下划线，最长 16 位"),
    sheets.Column("building_name", "楼栋名称", required=True, note="如：1号楼；不能含“-”"),
    sheets.Column("gender_policy", "性别类型", required=True, choices=tuple(GENDER_POLICIES.values())),
    sheets.Column("floor", "楼层"),
    sheets.Column("room_no", "房间号", required=True, text=True),
    sheets.Column("room_type", "房间类型", note="如：四人间"),
    sheets.Column("capacity", "容量", required=True, note=f"1 到 {MAX_CAPACITY} 的整数"),
    sheets.Column("fee", "收费标准（元/年）"),
    sheets.Column("bed_no", "床位号", required=True, text=True),
    sheets.Column("college_code", "分配学院代码", text=True, note="不填表示不限学院"),
)


def inventory_template() -> bytes:
    return sheets.template(INVENTORY_COLUMNS, "宿舍床位导入模板", example={
        "building_code": "B1", "building_name": "1号楼", "gender_policy": "男生楼", "floor": "1", "room_no": "101",
        "room_type": "四人间", "capacity": "4", "fee": "1200", "bed_no": "1", "college_code": "01"})


def _check_inventory_row(row: int, values: dict[str, str]) -> tuple[dict[str, Any], list[sheets.CellError]]:
    errors: list[sheets.CellError] = []

    def bad(key: str, message: str) -> None:
        column = next(c for c in INVENTORY_COLUMNS if c.key == key)
        errors.append(sheets.CellError(row, sheets.column_letter(INVENTORY_COLUMNS, key), column.header,
                                       values.get(key, ""), message))

    spec: dict[str, Any] = {k: values.get(k, "") for k in
                            ("building_code", "building_name", "room_no", "bed_no")}
    policy = POLICY_BY_LABEL.get(values.get("gender_policy", ""), values.get("gender_policy", ""))
    if policy not in GENDER_POLICIES:
        bad("gender_policy", "性别类型必须是男生楼、女生楼或男女混合楼")
    spec["gender_policy"] = policy
    capacity = values.get("capacity", "")
    if not capacity.isdigit() or not 1 <= int(capacity) <= MAX_CAPACITY:
        bad("capacity", f"容量必须是 1 到 {MAX_CAPACITY} 的整数")
    else:
        spec["capacity"] = int(capacity)
    for key, check in (("building_code", lambda v: check_code(v, "楼栋编号")),
                       ("building_name", lambda v: check_name(v, "楼栋名称"))):
        try:
            check(spec[key])
        except Refusal as refusal:
            bad(key, refusal.message)
    for key, limit in (("room_no", 16), ("bed_no", 8)):
        if not spec[key].isalnum() or len(spec[key]) > limit:
            bad(key, f"只能由字母和数字组成，最长 {limit} 位")
    details = None
    for key in ("floor", "room_type", "fee", "college_code"):
        try:
            parse_room_details({key: values.get(key) or None})
        except Refusal as refusal:
            bad(key, refusal.message)
    if not errors:
        details = parse_room_details({k: values.get(k) or None for k in ("floor", "room_type", "fee", "college_code")})
    return {"spec": spec, "details": details}, errors


def import_inventory(db: Database, caller: Caller, data: bytes) -> dict[str, Any]:
    """Beds with their rooms and buildings from the housing centre's workbook, checked cell
    by cell; any error → nothing changes and the workbook comes back annotated."""
    caller.require_role(HOUSING_CENTRE)
    rows: list[tuple[int, dict[str, Any]]] = []
    errors: list[sheets.CellError] = []
    for row, values in sheets.read_rows(data, INVENTORY_COLUMNS):
        checked, problems = _check_inventory_row(row, values)
        rows.append((row, checked))
        errors.extend(problems)
    if len(rows) > 5000:
        raise Invalid("每次最多导入 5000 张床位")
    if errors:
        return _refused_file(data, errors)
    bed_no = sheets.column_letter(INVENTORY_COLUMNS, "bed_no")
    try:
        specs = [parse_bed_spec(checked["spec"], row) for row, checked in rows]
    except Refusal as refusal:
        return _refused_file(data, [sheets.CellError(rows[0][0], bed_no, "床位号", "", refusal.message)])
    try:
        with db.transaction() as s:
            add_beds(s, caller, specs)
            _save_room_details(s, caller, rows)
    except (Invalid, Conflict) as exc:
        # The inventory itself disagrees with the file (e.g. a room's capacity): nothing changed.
        message = str(exc.args[0]) if exc.args else "数据与现有床位不一致"
        return _refused_file(data, [sheets.CellError(rows[0][0], bed_no, "床位号", "", message)])
    return {"ok": True, "errors": [], "imported": len(rows)}


def _save_room_details(s: Session, caller: Caller, rows: list[tuple[int, dict[str, Any]]]) -> None:
    seen: set[tuple[str, str]] = set()
    for _, checked in rows:
        spec, details = checked["spec"], checked["details"]
        key = (spec["building_code"], spec["room_no"])
        if key in seen:
            continue
        seen.add(key)
        room = _room(s, *key)
        before = {"floor": room.floor, "room_type": room.room_type, "fee": room.fee,
                  "college_code": room.college_code}
        after = {"floor": details.floor, "room_type": details.room_type, "fee": details.fee,
                 "college_code": details.college_code}
        if before != after:
            room.floor, room.room_type, room.fee, room.college_code = (
                details.floor, details.room_type, details.fee, details.college_code)
            audit(s, caller, "room.save", f"{key[0]}-{key[1]}", before, after)


def _refused_file(data: bytes, errors: list[sheets.CellError]) -> dict[str, Any]:
    return {"ok": False, "errors": [_error_view(e) for e in errors],
            "annotated": sheets.annotate(data, INVENTORY_COLUMNS, errors)}


def _error_view(error: sheets.CellError) -> dict[str, Any]:
    return {"row": error.row, "column": error.column, "header": error.header, "value": error.value,
            "message": error.message}
