"""Every consumer's read copy of a student (identity, housing, aid, transfer) keeps the newest registration or
class change roster made: an older one delivered late (its first delivery failed while a newer one went through)
puts no old name or class back, and identity does not rename the account back. Both back ends."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from services.common.db import Database
from services.common.testing import class_changed, registered

NUMBER = "202301010105"
OLD_CLASS, NEW_CLASS, LATER_CLASS = "2023010101", "2023020101", "2023030101"
T = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("service", ["identity", "housing", "aid", "transfer"])
def test_an_older_snapshot_delivered_late_changes_nothing(migrated_db: Callable[[str], Database],
                                                          service: str) -> None:
    db = migrated_db(service)
    handlers = importlib.import_module(f"services.{service}.handlers")
    student_model = importlib.import_module(f"services.{service}.adapters.orm").Student

    def copy() -> tuple[str, str, str]:
        with db.reading() as s:
            row = s.get(student_model, NUMBER)
            return row.name, row.class_code, row.college_code

    handlers.on_student_registered(db, registered(NUMBER, name="张新", klass=NEW_CLASS, occurred_at=T))
    handlers.on_student_registered(db, registered(NUMBER, name="张旧", klass=OLD_CLASS,
                                                  occurred_at=T - timedelta(minutes=5)))
    assert copy() == ("张新", NEW_CLASS, "02")
    handlers.on_student_class_changed(db, class_changed(NUMBER, 1, OLD_CLASS, old_class=NEW_CLASS,
                                                        occurred_at=T - timedelta(minutes=1)))
    assert copy() == ("张新", NEW_CLASS, "02")
    if service == "identity":
        from services.identity.adapters.orm import Account

        with db.reading() as s:
            assert s.get(Account, NUMBER).display_name == "张新"

    # Newer ones still apply, the class change's time included.
    handlers.on_student_class_changed(db, class_changed(NUMBER, 2, LATER_CLASS, old_class=NEW_CLASS,
                                                        occurred_at=T + timedelta(minutes=1)))
    assert copy() == ("张新", LATER_CLASS, "03")
    handlers.on_student_registered(db, registered(NUMBER, name="张更正", klass=OLD_CLASS,
                                                  occurred_at=T + timedelta(seconds=30)))
    assert copy() == ("张新", LATER_CLASS, "03")  # made before the class change it arrived after
    handlers.on_student_registered(db, registered(NUMBER, name="张更正", klass=LATER_CLASS,
                                                  occurred_at=T + timedelta(minutes=2)))
    assert copy() == ("张更正", LATER_CLASS, "03")
