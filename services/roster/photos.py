"""R15 student photos: one current photo per student in `student_photos`, uploaded one at a time or
as a zip named by the rule; every file checked (domain/photos.py) with a Chinese reason.

Who (R10–R12): staff with the student in scope upload the first photo — counselors their classes,
deputy secretaries their college, the student affairs office everyone. The photo is a key field
(R12): once a student has one, only the student affairs office replaces it. Students see their own.
A zip is saved all or nothing unless "valid only" is asked for; each saved photo is audited (chained).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import (
    ACADEMIC_AFFAIRS,
    COUNSELOR,
    DEPUTY_SECRETARY,
    IT_CENTRE,
    STUDENT,
    STUDENT_AFFAIRS,
    SYSTEM,
    Caller,
)
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.roster import number_mapping
from services.roster.adapters.orm import Student, StudentPhoto
from services.roster.domain import photos as ph

WRITERS = (STUDENT_AFFAIRS, COUNSELOR, DEPUTY_SECRETARY)
REPLACERS = (STUDENT_AFFAIRS, SYSTEM)  # R12: the photo is a key field
READERS = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, IT_CENTRE, COUNSELOR, DEPUTY_SECRETARY, STUDENT)
INSTITUTION_WIDE = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, IT_CENTRE, SYSTEM)
MAX_FILES = 5000
MAX_ZIP_BYTES = 100 * 1024 * 1024
MAX_ENTRY_BYTES = 1024 * 1024  # larger entries are refused unread (a photo must be under 60 KB anyway)


def school_code() -> str:
    """学校代码 in `<school code>_<class>_<name>` file names."""
    return os.environ.get("ROSTER_SCHOOL_CODE", "10001")


def _decode(content: str, what: str) -> bytes:
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Invalid(f"上传的{what}不是有效的文件") from None


def _in_scope(caller: Caller, student: Student) -> bool:
    return caller.is_system() or caller.scope.covers_student(student.student_number, student.college_code,
                                                             student.class_code)


def _student(s: Session, caller: Caller, number: str) -> Student:
    student = s.get(Student, number)
    if student is None:
        if caller.role in INSTITUTION_WIDE:
            raise NotFound(f"学号 {number} 不存在")
        raise Forbidden(f"学生 {number} 不在您的数据权限范围内")
    caller.require_student(student.student_number, student.college_code, student.class_code)
    return student


def _replace_refusal(caller: Caller, existing: StudentPhoto | None) -> str | None:
    if existing is not None and caller.role not in REPLACERS:
        return "该生已有照片；照片为关键信息，更换须由学生处办理"
    return None


def _save(s: Session, caller: Caller, student: Student, data: bytes, check: ph.PhotoCheck,
          filename: str | None, existing: StudentPhoto | None, now: datetime) -> bool:
    """Store the photo; False when it is the one already stored."""
    digest = hashlib.sha256(data).hexdigest()
    if existing is not None and existing.sha256 == digest:
        return False
    before = None if existing is None else {"sha256": existing.sha256, "size": existing.size}
    row = existing or StudentPhoto(student_number=student.student_number)
    row.data, row.sha256, row.size = data, digest, len(data)
    row.width, row.height, row.filename = check.width, check.height, filename
    row.uploaded_by, row.uploaded_at = caller.username, now
    if existing is None:
        s.add(row)
    audit(s, caller, "photo.upload", student.student_number, before,
          {"sha256": digest, "size": len(data), "filename": filename}, chain=True)
    return True


# ---- use cases -----------------------------------------------------------------------------------


def upload_photo(db: Database, caller: Caller, student_number: str, content: str,
                 filename: str | None = None) -> dict[str, Any]:
    caller.require_role(*WRITERS)
    data = _decode(content, "照片")
    check = ph.check_photo(data)
    if not check.ok:
        raise Invalid("；".join(check.reasons))
    with db.transaction() as s:
        student = _student(s, caller, student_number)
        existing = s.get(StudentPhoto, student.student_number)
        refusal = _replace_refusal(caller, existing)
        if refusal:
            raise Conflict(refusal)
        changed = _save(s, caller, student, data, check, filename, existing, datetime.now(UTC))
    return {"student_number": student_number, "saved": changed, "sha256": hashlib.sha256(data).hexdigest()}


def photo(db: Database, caller: Caller, student_number: str) -> dict[str, Any]:
    caller.require_role(*READERS)
    with db.reading() as s:
        _student(s, caller, student_number)
        row = s.get(StudentPhoto, student_number)
        if row is None:
            raise NotFound("该生尚未上传照片")
        return {"student_number": student_number, "content": base64.b64encode(row.data).decode("ascii"),
                "sha256": row.sha256, "size": row.size, "width": row.width, "height": row.height,
                "uploaded_by": row.uploaded_by, "uploaded_at": row.uploaded_at.isoformat()}


def student_extras(db: Database, caller: Caller, student_number: str) -> dict[str, Any]:
    """What the student page shows beside the record: former numbers (R3) and the photo's size, if any
    (the picture itself comes from `photo`)."""
    with db.reading() as s:
        student = _student(s, caller, student_number)
        row = s.get(StudentPhoto, student.student_number)
        visible = caller.role in READERS or caller.is_system()
        photo_meta = {"width": row.width, "height": row.height, "sha256": row.sha256} \
            if row is not None and visible else None
    former = number_mapping.number_changes(db, caller, student_number)["former_numbers"]
    return {"student_number": student_number, "former_numbers": former, "photo": photo_meta}


@dataclass
class _File:
    name: str
    data: bytes | None
    reason: str | None = None
    student: Student | None = None
    check: ph.PhotoCheck | None = None
    missing: bool = False  # the name follows the rule but names nobody registered


def _entries(archive: bytes) -> list[_File]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile:
        raise Invalid("上传的文件不是有效的 zip 压缩包") from None
    infos = [i for i in zf.infolist() if not i.is_dir() and not _hidden(i.filename)]
    if not infos:
        raise Invalid("压缩包中没有照片文件")
    if len(infos) > MAX_FILES:
        raise Invalid(f"一个压缩包最多 {MAX_FILES} 张照片")
    files = []
    for info in infos:
        name = _decoded_name(info)
        if info.file_size > MAX_ENTRY_BYTES:
            files.append(_File(name, None, f"照片须小于 60 KB（当前 {info.file_size / 1024:.0f} KB）"))
            continue
        try:
            files.append(_File(name, zf.read(info)))
        except (zipfile.BadZipFile, OSError, RuntimeError):  # RuntimeError: an encrypted entry
            files.append(_File(name, None, "文件无法解压"))
    return files


def _hidden(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _decoded_name(info: zipfile.ZipInfo) -> str:
    """Chinese file names: zips made on Windows store them in GBK without the UTF-8 flag."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _match(s: Session, files: Iterable[_File]) -> None:
    """Find each file's student by its name (one query per kind of name)."""
    keys: dict[int, ph.NameKey] = {}
    for index, f in enumerate(files):
        if f.reason:
            continue
        key = ph.parse_filename(f.name)
        if isinstance(key, str):
            f.reason = key
        else:
            keys[index] = key
    ids = sorted({k.national_id for k in keys.values() if k.national_id})
    classes = sorted({k.class_code for k in keys.values() if k.class_code})
    by_id = {x.national_id: x for x in s.scalars(select(Student).where(Student.national_id.in_(ids)))} if ids else {}
    by_class: dict[tuple[str, str], list[Student]] = {}
    if classes:
        for x in s.scalars(select(Student).where(Student.class_code.in_(classes))):
            by_class.setdefault((x.class_code, x.name), []).append(x)
    listed = list(files)
    for index, key in keys.items():
        f = listed[index]
        if key.national_id:
            f.student = by_id.get(key.national_id)
            if f.student is None:
                f.reason, f.missing = f"没有身份证件号为 {key.national_id} 的学生", True
            continue
        if key.school_code != school_code():
            f.reason = f"文件名中的学校代码 {key.school_code} 不是本校代码 {school_code()}"
            continue
        found = by_class.get((key.class_code or "", key.name or ""), [])
        if not found:
            f.reason, f.missing = f"班级 {key.class_code} 中没有名为“{key.name}”的学生", True
        elif len(found) > 1:
            f.reason = f"班级 {key.class_code} 中有 {len(found)} 名学生名为“{key.name}”，请用身份证件号命名"
        elif found[0].national_id:
            f.reason = "该生有身份证件号，照片须以身份证件号命名"
        else:
            f.student = found[0]


def import_photos(db: Database, caller: Caller, content: str, valid_only: bool = False) -> dict[str, Any]:
    """Per file: the student matched, accepted or rejected with the reason; saved all or nothing
    (unless `valid_only`)."""
    caller.require_role(*WRITERS)
    archive = _decode(content, "压缩包")
    if len(archive) > MAX_ZIP_BYTES:
        raise Invalid("压缩包不能超过 100 MB")
    files = _entries(archive)
    for f in files:
        if f.data is not None and not f.reason:
            f.check = ph.check_photo(f.data)
            if not f.check.ok:
                f.reason = "；".join(f.check.reasons)
    saved = unchanged = 0
    with db.transaction() as s:
        _match(s, files)
        existing = {p.student_number: p for p in s.scalars(select(StudentPhoto).where(
            StudentPhoto.student_number.in_(sorted({f.student.student_number for f in files if f.student}))))}
        seen: dict[str, list[_File]] = {}
        hidden = "没有找到照片对应的学生，或该生不在您的数据权限范围内"  # scoped callers cannot probe the register
        for f in files:
            if f.missing and caller.role not in INSTITUTION_WIDE:
                f.reason = hidden
            if f.student is None:
                continue
            if not _in_scope(caller, f.student):
                f.reason, f.student = hidden, None
                continue
            seen.setdefault(f.student.student_number, []).append(f)
            f.reason = f.reason or _replace_refusal(caller, existing.get(f.student.student_number))
        for number, same in seen.items():
            if len(same) > 1:
                for f in same:
                    f.reason = f.reason or f"压缩包中有 {len(same)} 张照片属于学号 {number}"
        accepted = [f for f in files if not f.reason]
        ok = len(accepted) == len(files)
        if ok or valid_only:
            now = datetime.now(UTC)
            for f in accepted:
                assert f.student is not None and f.data is not None and f.check is not None
                if _save(s, caller, f.student, f.data, f.check, f.name, existing.get(f.student.student_number), now):
                    saved += 1
                else:
                    unchanged += 1
            if saved:
                audit(s, caller, "photo.import", "students", None, {"saved": saved, "files": len(files)}, chain=True)
    return {
        "ok": ok, "count": len(files), "accepted": len(accepted), "rejected": len(files) - len(accepted),
        "saved": saved, "unchanged": unchanged, "applied": ok or valid_only,
        "files": [{"file": f.name, "student_number": f.student.student_number if f.student else None,
                   "name": f.student.name if f.student else None, "accepted": not f.reason, "reason": f.reason}
                  for f in files],
    }
