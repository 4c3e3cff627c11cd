"""Group commit: concurrent callers' writes share one transaction.

Here every awaited statement costs 0.2–0.5 ms and SQLite has one writer, so a write per
caller tops out at a few hundred per second; callers that arrive together (the updates of
one ``getUpdates`` batch, a burst of joins) are handed to ``process`` as one list, which
writes them with a constant number of set-based statements.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Groups concurrent :meth:`submit` calls into batches handled by one worker task.

    ``process`` gets the items in arrival order and returns one result (or exception) per
    item, in the same order. Callers await their own result. A batch that fails as a whole
    is retried one item at a time, so one bad item cannot fail the others.
    """

    def __init__(
        self,
        process: Callable[[list[T]], Awaitable[Sequence[R | Exception]]],
        *,
        name: str,
        max_batch: int = 500,
    ) -> None:
        self._process = process
        self._name = name
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if self._worker is None or self._worker.done():
            # The worker starts on the next turn of the loop: everything submitted in this
            # turn (say, by the lanes of one update batch) lands in its first batch.
            self._worker = loop.create_task(self._run(), name=f"inviteloop-{self._name}")
        return await future

    async def _run(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                results = await self._process_isolated([item for item, _ in batch])
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            # Cancelled (shutdown): nobody may wait forever on an unprocessed item.
            for _, future in self._queue:
                if not future.done():
                    future.set_exception(RuntimeError(f"the {self._name} batcher stopped"))
            self._queue.clear()

    async def _process_isolated(self, items: list[T]) -> list[R | Exception]:
        try:
            return list(await self._process(items))
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            logger.warning(
                "a batch of %d (%s) failed (%s); retrying one by one", len(items), self._name, exc
            )
        results: list[R | Exception] = []
        for item in items:
            try:
                results.extend(await self._process([item]))
            except Exception as exc:
                results.append(exc)
        return results
