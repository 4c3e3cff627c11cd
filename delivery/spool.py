"""Files waiting to be sent: the outbox's spool directory.

A file an outbox row sends (``SEND_DOCUMENT``, ``SEND_PHOTO``) is written here first, in a
batch directory of its own (``<root>/<batch>/<file>``), and the row names it by that
relative name. The file outlives restarts and is sent again, unchanged, after a 429; the
outbox deletes it once its row is sent or has failed for good, and :meth:`Spool.sweep`
(the daily outbox purge) removes what no live row names any more (a process that died
between writing a file and queueing its row, a row that expired).

Every instance that drains the outbox must see the same spool: with several instances on
one PostgreSQL, point ``INVITELOOP_DATA_DIR`` at a shared directory. A row whose file is
missing fails with that reason instead of sending something else.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

SWEEP_AGE = 6 * 3600.0  # seconds a file no row names is kept (its row may be on its way)


class Spool:
    """Batch directories of files under ``root`` (made on first use)."""

    def __init__(self, root: Path, *, wall: Callable[[], float] = time.time) -> None:
        self.root = root
        self._wall = wall

    def new_batch(self) -> Path:
        """A fresh, empty directory for the files of one answer."""
        batch = self.root / uuid.uuid4().hex
        batch.mkdir(parents=True, exist_ok=False)
        return batch

    def name_of(self, path: Path) -> str:
        """The spooled name of a file in one of this spool's batches (what a row stores)."""
        relative = path.resolve().relative_to(self.root.resolve())
        if len(relative.parts) != 2:
            raise ValueError(f"{path} is not a file of a spool batch")
        return "/".join(relative.parts)

    def path_of(self, name: str) -> Path | None:
        """The file a row names, or None if it is gone (or the name leaves the spool)."""
        parts = name.split("/")
        if len(parts) != 2 or any(part in ("", ".", "..") for part in parts):
            return None
        path = self.root / parts[0] / parts[1]
        return path if path.is_file() else None

    def discard(self, names: Iterable[str]) -> None:
        """Delete these spooled files, and their batch directories once empty."""
        for name in names:
            path = self.path_of(name)
            if path is None:
                continue
            path.unlink(missing_ok=True)
            try:
                path.parent.rmdir()
            except OSError:
                pass  # other files of the batch still wait

    def discard_batch(self, batch: Path) -> None:
        """Delete a batch directory and everything in it (an answer built but not queued)."""
        if batch.parent.resolve() == self.root.resolve():
            shutil.rmtree(batch, ignore_errors=True)

    def sweep(self, keep: Iterable[str], *, older_than: float = SWEEP_AGE) -> int:
        """Delete files no live row names (``keep``) that are older than ``older_than``
        seconds, and empty batch directories; returns how many files went."""
        if not self.root.is_dir():
            return 0
        kept = set(keep)
        cutoff = self._wall() - older_than
        removed = 0
        for batch in self.root.iterdir():
            if not batch.is_dir():
                continue
            for path in batch.iterdir():
                if f"{batch.name}/{path.name}" in kept:
                    continue
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except OSError:
                    continue
            try:
                if batch.stat().st_mtime < cutoff:
                    batch.rmdir()
            except OSError:
                pass  # not empty
        if removed:
            logger.info("spool: removed %d files no outbox row waits for", removed)
        return removed
