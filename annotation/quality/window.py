"""The date range a metrics request covers: whole UTC days, `since` and `until` both included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


@dataclass(frozen=True)
class Window:
    since: date | None = None
    until: date | None = None

    @property
    def start(self) -> datetime | None:
        """The first instant inside the window (UTC), None for no lower bound."""
        return None if self.since is None else datetime.combine(self.since, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime | None:
        """The first instant after the window (UTC midnight after `until`), None for no upper bound."""
        return None if self.until is None else datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=UTC)

    def contains(self, when: datetime) -> bool:
        return (self.start is None or when >= self.start) and (self.end is None or when < self.end)

    @property
    def key(self) -> str:
        """The cache key: "all", or "<since>..<until>" with an empty side for an open bound."""
        if self.since is None and self.until is None:
            return "all"
        return f"{self.since.isoformat() if self.since else ''}..{self.until.isoformat() if self.until else ''}"

    @classmethod
    def from_key(cls, key: str) -> Window:
        """The window of a cache key (`key`'s inverse)."""
        if key == "all":
            return cls()
        since, until = key.split("..", 1)
        return cls(
            since=date.fromisoformat(since) if since else None, until=date.fromisoformat(until) if until else None
        )


ALL = Window()
