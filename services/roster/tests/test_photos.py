"""R15 student photos: each rejection reason on generated JPEGs, file names, and the use cases
(single upload, R12 replacement, zip import all-or-nothing / valid only) on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from services.common.audit import verify_chain
from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import AuditEntry
from services.roster import handlers, importing, photos
from services.roster.adapters.orm import StudentPhoto
from services.roster.domain import photos as ph
from services.roster.tests.factories import student

LIGHT_BLUE = (120, 185, 240)


def jpeg(size: tuple[int, int] = (154, 189), background: tuple[int, int, int] = LIGHT_BLUE,
         dpi: tuple[int, int] | None = (150, 150), fmt: str = "JPEG", **options: Any) -> bytes:
    """A passport-style photo: plain background, a dark head and shoulders in the middle."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w * 0.3, h * 0.2, w * 0.7, h * 0.6), fill=(60, 40, 30))
    draw.rectangle((w * 0.15, h * 0.7, w * 0.85, h), fill=(20, 20, 40))
    buffer = io.BytesIO()
    if dpi:
        options["dpi"] = dpi
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# ---- domain: every rejection reason ---------------------------------------------------------------

def test_a_good_photo_passes() -> None:
    data = jpeg(quality=85)
    check = ph.check_photo(data)
    assert check.ok, check.reasons
    assert (check.width, check.height) == (154, 189) and len(data) < ph.MAX_BYTES
    assert ph.check_photo(jpeg((156, 187))).ok  # within ±2 px of rounding
    assert ph.check_photo(jpeg(dpi=None)).ok  # no dpi recorded: the pixel size is what counts
    assert ph.check_photo(jpeg(background=(67, 142, 219))).ok  # the standard ID-photo blue


def test_not_a_jpeg_or_broken() -> None:
    assert ph.check_photo(jpeg(fmt="PNG")).reasons == ["照片须为 JPEG 格式（.jpg）"]
    assert ph.check_photo(b"\xff\xd8\xff\xe0" + b"\x00" * 100).reasons == ["照片文件已损坏，无法打开"]


def test_too_large() -> None:
    # 70 KB of colour profile: the picture is fine, the file is not
    data = jpeg(icc_profile=b"\x00" * 70_000)
    assert len(data) >= ph.MAX_BYTES
    reasons = ph.check_photo(data).reasons
    assert len(reasons) == 1 and reasons[0].startswith("照片须小于 60 KB")


def test_wrong_pixel_size_and_low_dpi() -> None:
    assert ph.check_photo(jpeg((295, 413))).reasons == [
        "照片尺寸须为 154×189 像素（宽×高，26×32 mm、150 dpi），当前为 295×413"]
    assert ph.check_photo(jpeg((154, 231))).reasons[0].endswith("当前为 154×231")
    assert ph.check_photo(jpeg(dpi=(72, 72))).reasons == ["照片分辨率须不低于 150 dpi（当前 72 dpi）"]


@pytest.mark.parametrize("background", [(250, 250, 250), (200, 30, 30), (20, 40, 90), (170, 170, 175)])
def test_background_must_be_light_blue(background: tuple[int, int, int]) -> None:
    reasons = ph.check_photo(jpeg(background=background)).reasons
    assert len(reasons) == 1 and reasons[0].startswith("照片背景须为浅蓝色")


def test_file_names() -> None:
    assert ph.parse_filename("11010120050314001x.jpg") == ph.NameKey(national_id="11010120050314001X")
    assert ph.parse_filename("照片/10001_2023010101_张三.JPG") == ph.NameKey(
        school_code="10001", class_code="2023010101", name="张三")
    assert ph.parse_filename("张三.png") == "文件名须以 .jpg 结尾"
    assert ph.parse_filename("张三.jpg").startswith("文件名须为身份证件号")


# ---- use cases ------------------------------------------------------------------------------------

SYSTEM = system_caller("test")
REGISTRAR = Caller("1000001", "1000001", "student_affairs", Scope("institution"))
COUNSELOR = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))
OTHER = Caller("1000005", "1000005", "counselor", Scope("classes", ("2023010102",)))
A1, A2 = "202301010101", "202301010102"
NO_ID = "202301010103"  # registered without an ID number: named 学校代码_班级_姓名


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("roster")
    handlers.upsert_org_units(database, SYSTEM, [
        {"code": "01", "name": "计算机学院", "kind": "college"},
        {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
        {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
        {"code": "2023010102", "name": "计科2302", "kind": "class", "parent_code": "0101"},
    ])
    importing.register_students(database, SYSTEM, [student(1), student(2), student(3, with_id=False),
                                                  student(1, klass="2023010102")])
    return database


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_zip(files: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return b64(buffer.getvalue())


def stored(db: Database) -> dict[str, str]:
    with db.reading() as s:
        return {p.student_number: p.sha256 for p in s.scalars(select(StudentPhoto))}


def test_upload_read_and_replace(db: Database) -> None:
    first, second = jpeg(quality=80), jpeg(quality=70)
    with pytest.raises(Invalid, match="照片背景须为浅蓝色"):
        photos.upload_photo(db, COUNSELOR, A1, b64(jpeg(background=(250, 250, 250))))
    assert photos.upload_photo(db, COUNSELOR, A1, b64(first))["saved"]
    with pytest.raises(Forbidden):
        photos.upload_photo(db, OTHER, A1, b64(first))
    with pytest.raises(Conflict, match="学生处"):  # R12: a counselor cannot replace it
        photos.upload_photo(db, COUNSELOR, A1, b64(second))
    assert photos.upload_photo(db, REGISTRAR, A1, b64(second))["saved"]
    assert not photos.upload_photo(db, REGISTRAR, A1, b64(second))["saved"]  # the same photo again

    extras = photos.student_extras(db, COUNSELOR, A1)
    assert extras["photo"]["width"] == 154 and extras["former_numbers"] == []
    assert photos.student_extras(db, COUNSELOR, A2)["photo"] is None
    own = Caller(A1, A1, "student", Scope("self", (A1,)))
    assert base64.b64decode(photos.photo(db, own, A1)["content"]) == second
    with pytest.raises(Forbidden):
        photos.photo(db, own, A2)
    with pytest.raises(NotFound):
        photos.photo(db, REGISTRAR, A2)
    with pytest.raises(Forbidden):
        photos.upload_photo(db, own, A1, b64(first))
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "photo.upload")) == 2
        assert verify_chain(s).ok


def test_zip_import_all_or_nothing_then_valid_only(db: Database) -> None:
    good = jpeg(quality=80)
    files = {
        f"{student(1)['national_id']}.jpg": good,
        "10001_2023010101_学生零三.jpg": good,
        f"{student(2)['national_id']}.jpg": jpeg((295, 413)),
        "随便.jpg": good,
        "99999_2023010101_学生零三.jpg": good,
        f"{student(1, klass='2023010102')['national_id']}.jpg": good,  # outside the counselor's classes
    }
    result = photos.import_photos(db, COUNSELOR, make_zip(files))
    assert not result["ok"] and result["saved"] == 0 and stored(db) == {}
    by_file = {f["file"]: f for f in result["files"]}
    assert by_file[f"{student(1)['national_id']}.jpg"] == {
        "file": f"{student(1)['national_id']}.jpg", "student_number": A1, "name": "学生零一", "accepted": True,
        "reason": None}
    assert by_file["10001_2023010101_学生零三.jpg"]["student_number"] == NO_ID
    assert by_file[f"{student(2)['national_id']}.jpg"]["reason"].startswith("照片尺寸须为")
    assert by_file["随便.jpg"]["reason"].startswith("文件名须为身份证件号")
    assert "学校代码 99999" in by_file["99999_2023010101_学生零三.jpg"]["reason"]
    outside = by_file[f"{student(1, klass='2023010102')['national_id']}.jpg"]
    assert outside["student_number"] is None and "数据权限" in outside["reason"]

    valid = photos.import_photos(db, COUNSELOR, make_zip(files), valid_only=True)
    assert valid["saved"] == 2 and set(stored(db)) == {A1, NO_ID}
    again = photos.import_photos(db, REGISTRAR, make_zip({f"{student(1)['national_id']}.jpg": good}))
    assert again["ok"] and again["saved"] == 0 and again["unchanged"] == 1


def test_a_named_student_with_an_id_number_and_a_bad_archive(db: Database) -> None:
    result = photos.import_photos(db, REGISTRAR, make_zip({"10001_2023010101_学生零一.jpg": jpeg()}))
    assert result["files"][0]["reason"] == "该生有身份证件号，照片须以身份证件号命名"
    with pytest.raises(Invalid, match="zip"):
        photos.import_photos(db, REGISTRAR, b64(b"not a zip"))
