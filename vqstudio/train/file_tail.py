"""Whole lines appended to a file by another process, read from the last byte offset.

The writers of a run folder append whole lines and flush (``runfolder.py``), but a reader can
still catch a line half written, or a file that a resume rewrote (``RunFolder.set_aside_after``
replaces ``metrics.csv`` and ``events.jsonl`` atomically: a new inode, often shorter). So:

- each :meth:`FileTail.read` stats the file first; when neither its size, its modification
  time nor its identity moved it reads nothing (a few microseconds);
- only complete lines are returned; bytes after the last newline stay unread and are read again,
  whole, once their newline arrives (:attr:`FileTail.partial` says whether some are waiting);
- a file that got shorter, or is another file now (device and inode, or, for a file removed and
  created again on a reused inode, other first bytes), is read again from the start and
  :meth:`read` says so (``restarted``), so the reader can forget what it had.
"""

from __future__ import annotations

import os
from pathlib import Path

HEAD_BYTES = 64  # the first bytes remembered, to tell a new file on a reused inode


class FileTail:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0  # bytes of whole lines already returned
        self.partial = 0  # bytes after the last newline seen (a line being written)
        self._identity: tuple[int, int] | None = None
        self._size: tuple[int, int] = (-1, -1)  # (size, mtime_ns) last read
        self._head = b""

    def read(self) -> tuple[list[bytes], bool]:
        """``(new whole lines without their newline, restarted)``; a missing file reads as none
        (and, if it was there before, as a restart)."""
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            restarted = self._identity is not None
            self._identity, self.offset, self.partial, self._size = None, 0, 0, (-1, -1)
            return [], restarted
        identity = (st.st_dev, st.st_ino)
        restarted = False
        if identity != self._identity or st.st_size < self.offset + self.partial:
            restarted = self._identity is not None
            self._identity, self.offset, self.partial = identity, 0, 0
        elif (st.st_size, st.st_mtime_ns) == self._size:
            return [], False
        self._size = (st.st_size, st.st_mtime_ns)
        try:
            with open(self.path, "rb") as handle:
                head = handle.read(HEAD_BYTES)
                if self.offset and head[:len(self._head)] != self._head[:len(head)]:
                    restarted, self.offset, self.partial = True, 0, 0  # another file, same inode
                self._head = head
                handle.seek(self.offset)
                data = handle.read(max(0, st.st_size - self.offset))
        except OSError:
            return [], restarted
        end = data.rfind(b"\n") + 1
        self.partial = len(data) - end
        lines = data[:end].split(b"\n")[:-1] if end else []
        self.offset += end
        return lines, restarted
