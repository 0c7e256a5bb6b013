"""Interchange messages leaving this institution: queued in the same transaction as the change
they report (an outbox for peers), signed when published, re-sent with backoff until acked.

`interchange.py` publishes what is due; the use cases only call `queue_message`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.errors import Conflict
from services.transfer.adapters.orm import InterchangeMessage, Peer, PeerKey
from services.transfer.domain import protocol

DEMO_INSTITUTION = "4142010001"


def own_code() -> str:
    """This institution's 10-digit code (学校标识码)."""
    return os.environ.get("TRANSFER_INSTITUTION_CODE", DEMO_INSTITUTION)


def resend_after(attempts: int) -> timedelta:
    """Backoff between re-sends of an unacked message: 2 s, 4 s, 8 s … up to TRANSFER_RESEND_MAX_SECONDS (300)."""
    ceiling = float(os.environ.get("TRANSFER_RESEND_MAX_SECONDS", "300"))
    return timedelta(seconds=min(ceiling, 2.0 ** max(1, attempts)))


def queue_message(s: Session, *, peer_code: str, kind: str, transfer_id: str, payload: dict[str, Any],
                  now: datetime | None = None) -> InterchangeMessage:
    """Write the message to send (body bytes fixed now: a re-send is the same message)."""
    sent_at = now or datetime.now(UTC)
    now = sent_at.astimezone(UTC)  # SQLite keeps no offset: every stored time is UTC
    body = protocol.build_body(kind=kind, transfer_id=transfer_id, sender=own_code(), recipient=peer_code,
                               sent_at=sent_at, payload=payload)
    message_id = protocol.Body.model_validate_json(body).message_id
    row = InterchangeMessage(direction="out", message_id=message_id, transfer_id=transfer_id, kind=kind,
                             peer_code=peer_code, body=body, headers="{}", state="pending", attempts=0,
                             # due at once, even when the business clock (run_deadlines' as_of) is ahead
                             next_attempt_at=min(now, datetime.now(UTC)), created_at=now)
    s.add(row)
    return row


def signing_key(s: Session, peer_code: str) -> tuple[str, bytes]:
    """The newest active key shared with the peer (a rotation adds a key, then retires the old one)."""
    key = s.scalars(select(PeerKey).where(PeerKey.peer_code == peer_code, PeerKey.state == "active")
                    .order_by(PeerKey.created_at.desc(), PeerKey.id.desc()).limit(1)).first()
    if key is None:
        raise Conflict(f"与单位 {peer_code} 没有可用的密钥，请先在对端单位管理中添加")
    return key.key_id, key.secret


def accepted_keys(s: Session) -> dict[tuple[str, str], bytes]:
    """(peer code, key id) → key, for every active key of an active peer: what verification accepts."""
    rows = s.execute(select(PeerKey.peer_code, PeerKey.key_id, PeerKey.secret)
                     .join(Peer, Peer.code == PeerKey.peer_code)
                     .where(PeerKey.state == "active", Peer.active.is_(True)))
    return {(peer, key_id): secret for peer, key_id, secret in rows}
