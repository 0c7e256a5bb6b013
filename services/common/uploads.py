"""Evidence files as the gateway sends them ({filename, data (base64)}): PDF, JPEG or PNG, recognised by
their first bytes (magic numbers), never by name or declared type. Roster's status-change attachments
and transfer's evidence both take them through `parse_uploads`."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from services.common.errors import Invalid

MAX_FILES = 5
MAX_BYTES = 5 * 1024 * 1024
SIGNATURES = {b"%PDF-": "application/pdf", b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def parse_uploads(items: list[dict[str, Any]] | None, *, max_files: int = MAX_FILES,
                  max_bytes: int = MAX_BYTES) -> list[Upload]:
    items = items or []
    if not isinstance(items, list):
        raise Invalid("证明材料格式不正确")
    if len(items) > max_files:
        raise Invalid(f"证明材料最多 {max_files} 个文件")
    uploads = []
    for item in items:
        if not isinstance(item, dict):
            raise Invalid("证明材料格式不正确")
        name = str(item.get("filename") or "").strip()[-200:] or "附件"
        try:
            data = base64.b64decode(str(item.get("data") or ""), validate=True)
        except ValueError:
            raise Invalid(f"证明材料“{name}”无法读取") from None
        if not data:
            raise Invalid(f"证明材料“{name}”是空文件")
        if len(data) > max_bytes:
            raise Invalid(f"证明材料“{name}”超过 {max_bytes // 1024 // 1024} MB")
        kind = next((t for sig, t in SIGNATURES.items() if data.startswith(sig)), None)
        if kind is None:
            raise Invalid(f"证明材料“{name}”应为 PDF、JPEG 或 PNG 文件")
        uploads.append(Upload(name, kind, data))
    return uploads
