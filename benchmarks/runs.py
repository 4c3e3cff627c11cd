"""What the end-to-end benchmarks share: a work directory (temporary, or ``--keep DIR``
with an earlier run's databases replaced) and running ``run(args, workdir)`` in it."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any


def workdir_for(keep: str | None, prefix: str) -> Path:
    """``--keep DIR``: the databases of an earlier run there are replaced."""
    if keep is None:
        return Path(tempfile.mkdtemp(prefix=prefix))
    workdir = Path(keep).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("*.db*"):
        stale.unlink()
    return workdir


def run_in_workdir(
    args: Any, run: Callable[[Any, Path], Coroutine[Any, Any, int]], prefix: str
) -> int:
    """``run(args, workdir)`` on its own event loop; a temporary workdir is removed after,
    a kept one (``args.keep``) is named."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    workdir = workdir_for(args.keep, prefix)
    try:
        code = asyncio.run(run(args, workdir))
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.keep:
        print(f"databases kept in {workdir}", flush=True)
    return code
