"""Ship the end of each server's serial console log to the API when it grew: the agent reaches the
API (the API never connects to hosts), at most :data:`~epa.domain.console.MAX_TAIL_BYTES` a time."""

from __future__ import annotations

import os
from pathlib import Path

from epa.domain.console import MAX_TAIL_BYTES, from_bytes


class ConsoleTails:
    """What was last sent per server: a log is read again only when its size or time changed."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, int]] = {}

    def changed(self, server_id: str, path: Path) -> str | None:
        """The escaped end of ``path`` when it changed since the last call for ``server_id``, else None."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        if self._seen.get(server_id) == stamp:
            return None
        with path.open("rb") as f:
            f.seek(max(0, st.st_size - MAX_TAIL_BYTES), os.SEEK_SET)
            raw = f.read(MAX_TAIL_BYTES)
        self._seen[server_id] = stamp
        return from_bytes(raw)

    def forget(self, server_id: str) -> None:
        self._seen.pop(server_id, None)
