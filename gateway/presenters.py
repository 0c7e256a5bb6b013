"""Small view helpers: status tags, times and pagination for the pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

PAGE_SIZES = (10, 20, 30, 50)

# 学籍状态 shown as a coloured tag (success green, warning orange, info grey, danger red).
STATUS_TAGS: dict[str, str] = {
    "enrolled": "success",
    "visiting": "success",
    "suspended": "warning",
    "military": "warning",
    "not_reported": "warning",
    "suspected_dropout": "warning",
    "graduated": "info",
    "completed": "info",
    "attendance": "info",
    "transferred_out": "info",
    "withdrawn": "danger",
    "expelled": "danger",
    "deceased": "danger",
    "dropout": "danger",
}


def status_tag(status: str | None) -> str:
    return STATUS_TAGS.get(status or "", "info")


# Beijing time; China keeps no daylight saving, so a fixed offset is exact.
BEIJING = timezone(timedelta(hours=8))


def local_time(value: str | None) -> str:
    """An ISO 8601 time from a service as users read times: yyyy-MM-dd HH:mm:ss, Beijing."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Pagination:
    page: int
    per_page: int
    total: int
    capped: bool = False  # the service stopped counting at `total` (roster's search): "2000+"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def window(self, around: int = 2) -> list[int | None]:
        """Page numbers to show: first, last and a few around the current; None = gap."""
        shown = {1, self.pages, *range(self.page - around, self.page + around + 1)}
        numbers = sorted(n for n in shown if 1 <= n <= self.pages)
        out: list[int | None] = []
        for n in numbers:
            if out and out[-1] is not None and n - out[-1] > 1:
                out.append(None)
            out.append(n)
        return out


def page_args(page: str | None, per_page: str | None) -> tuple[int, int]:
    """Lenient parsing for pages: nonsense falls back to the first page of 10."""
    try:
        p = max(1, int(page or 1))
    except ValueError:
        p = 1
    try:
        size = int(per_page or PAGE_SIZES[0])
    except ValueError:
        size = PAGE_SIZES[0]
    return p, size if size in PAGE_SIZES else PAGE_SIZES[0]
