"""A small, strict server-sent-events reader for tests: events, their data, and comment lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class SSEEvent:
    event: str | None
    data: str

    def json(self) -> Any:
        return orjson.loads(self.data)


@dataclass
class SSEStream:
    events: list[SSEEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    def data(self) -> list[Any]:
        """Every event's data as JSON, leaving out the OpenAI `[DONE]` sentinel."""
        return [e.json() for e in self.events if e.data != "[DONE]"]

    @property
    def done(self) -> bool:
        return bool(self.events) and self.events[-1].data == "[DONE]"


def parse_sse(text: str) -> SSEStream:
    stream = SSEStream()
    event: str | None = None
    data: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "":
            if data:
                stream.events.append(SSEEvent(event, "\n".join(data)))
            event, data = None, []
        elif line.startswith(":"):
            stream.comments.append(line[1:].strip())
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        stream.events.append(SSEEvent(event, "\n".join(data)))
    return stream
