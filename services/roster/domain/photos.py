"""R15: student photos — JPEG, under 60 KB, 26×32 mm at ≥150 dpi (≈154×189 px), light-blue
background; a file is named after the ID number, or `<school code>_<class>_<name>` without one.

Every check gives a Chinese reason the operator can act on; all problems of a file are listed.
"""

from __future__ import annotations

import colorsys
import io
import re
import warnings
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

MAX_BYTES = 60 * 1024  # "under 60 KB": 61,440 bytes and more are refused
# 26 × 32 mm at 150 dpi is 153.5 × 189.0 px; cropping tools round either way, and the national
# system takes 154 × 189. ±2 px absorbs the rounding without letting through another format
# (e.g. 1-inch 295 × 413, or a 2:3 crop at 150 dpi, 154 × 231).
WIDTH, HEIGHT, TOLERANCE = 154, 189, 2
MIN_DPI = 150
# Background: sampled on a band along the top and the upper two thirds of both sides (the bottom
# holds the shoulders). A pixel is light blue when its hue is blue (180–250°), it is not grey
# (saturation ≥ 0.12) and not dark (value ≥ 0.55); JPEG noise and a little hair at the edge are
# allowed for by asking only 80 % of the band.
BAND = 4
BLUE_HUE = (180 / 360, 250 / 360)
MIN_SATURATION, MIN_VALUE = 0.12, 0.55
MIN_BLUE_SHARE = 0.80

_ID = re.compile(r"^\d{17}[\dXx]$")
_SCHOOL_CLASS_NAME = re.compile(r"^(\d{5,10})_(\d{6,16})_(.{1,64})$")


@dataclass
class PhotoCheck:
    reasons: list[str] = field(default_factory=list)
    width: int = 0
    height: int = 0

    @property
    def ok(self) -> bool:
        return not self.reasons


def check_photo(data: bytes) -> PhotoCheck:
    """Every problem of the photo, in the order an operator would fix them."""
    result = PhotoCheck()
    if not data.startswith(b"\xff\xd8\xff"):
        result.reasons.append("照片须为 JPEG 格式（.jpg）")
        return result
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError):
        result.reasons.append("照片文件已损坏，无法打开")
        return result
    if image.format != "JPEG":
        result.reasons.append("照片须为 JPEG 格式（.jpg）")
        return result
    if len(data) >= MAX_BYTES:
        result.reasons.append(f"照片须小于 60 KB（当前 {len(data) / 1024:.1f} KB）")
    result.width, result.height = image.size
    if abs(image.width - WIDTH) > TOLERANCE or abs(image.height - HEIGHT) > TOLERANCE:
        result.reasons.append(f"照片尺寸须为 {WIDTH}×{HEIGHT} 像素（宽×高，26×32 mm、150 dpi），"
                              f"当前为 {image.width}×{image.height}")
    dpi = image.info.get("dpi")
    if dpi and min(float(dpi[0]), float(dpi[1])) < MIN_DPI - 0.5:  # JFIF stores whole numbers; EXIF may round
        result.reasons.append(f"照片分辨率须不低于 {MIN_DPI} dpi（当前 {round(float(dpi[0]))} dpi）")
    share = blue_share(image)
    if share < MIN_BLUE_SHARE:
        result.reasons.append(f"照片背景须为浅蓝色（边缘仅 {share:.0%} 为浅蓝色）")
    return result


def blue_share(image: Image.Image) -> float:
    """The share of light-blue pixels in the band along the top and the upper sides."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    band = max(1, min(BAND, width // 4, height // 4))
    boxes = [(0, 0, width, band), (0, band, band, height * 2 // 3), (width - band, band, width, height * 2 // 3)]
    total = blue = 0
    for box in boxes:
        for r, g, b in rgb.crop(box).getdata():
            total += 1
            hue, saturation, value = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
            if BLUE_HUE[0] <= hue <= BLUE_HUE[1] and saturation >= MIN_SATURATION and value >= MIN_VALUE:
                blue += 1
    return blue / total if total else 0.0


@dataclass(frozen=True)
class NameKey:
    """Who a photo file names: by ID number, or by school code, class and name."""

    national_id: str | None = None
    school_code: str | None = None
    class_code: str | None = None
    name: str | None = None


def parse_filename(filename: str) -> NameKey | str:
    """The file's name as R15 writes it, or a Chinese reason why it does not follow the rule."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot or ext.lower() not in ("jpg", "jpeg"):
        return "文件名须以 .jpg 结尾"
    if _ID.match(stem):
        return NameKey(national_id=stem.upper())
    m = _SCHOOL_CLASS_NAME.match(stem)
    if m:
        return NameKey(school_code=m.group(1), class_code=m.group(2), name=m.group(3).strip())
    return "文件名须为身份证件号，或“学校代码_班级_姓名”（如 10001_2023010101_张三.jpg）"
