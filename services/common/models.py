"""Tables every service database holds besides its own: outbox, inbox, audit log.

They live in their own MetaData; each service's alembic environment migrates both its
own metadata and this one into its database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class MessagingBase(DeclarativeBase):
    pass


class OutboxMessage(MessagingBase):
    """An event written in the same transaction as the change it reports."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(100))
    exchange: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)


class InboxRecord(MessagingBase):
    """An event a handler has applied; recorded in the same transaction as its effect."""

    __tablename__ = "inbox"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(150), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(MessagingBase):
    """Every write: who, in which role, when, what, before and after. Append-only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(64), index=True)
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(64))


class AuditChainBase(DeclarativeBase):
    """Opt-in tables of a tamper-evident audit chain (a service adds this metadata to its migrations)."""


class AuditChainLink(AuditChainBase):
    """One audit entry's place in the chain: hash = sha256(previous hash + the entry's content)."""

    __tablename__ = "audit_chain"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    audit_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(AuditChainBase):
    """The last link; its row lock serialises writers so the chain never forks."""

    __tablename__ = "audit_chain_head"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
