"""A server-sent-events parser: lines in, (id, data) out. Pure: no IO."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RawEvent:
    id: str | None
    event: str | None
    data: str


@dataclass
class SseParser:
    """Feed it decoded lines (without the line break); it returns an event at each blank line that ends one."""

    _data: list[str] = field(default_factory=list)
    _id: str | None = None
    _event: str | None = None

    def feed(self, line: str) -> RawEvent | None:
        if not line:
            if not self._data:
                self._event = None
                return None
            event = RawEvent(self._id, self._event, "\n".join(self._data))
            self._data, self._event = [], None
            return event
        if line.startswith(":"):
            return None  # a comment: keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        elif name == "event":
            self._event = value
        return None
