"""What a build runs side by side, and how many workers its parallel steps use.

On the host a local build overlaps the checks that read the installed files (RECORD hashes, the
ELF audit, Requires-Dist, exactly-the-plan: verify/layer.py ``check_content``) with the bytecode
step, and walks the finished tree, checks its requirements and compresses layer.zip while the import
check runs (the walk is used only if it saw what the check's snapshot saw before the first import; the
import check fails the build if the packages' code changed a file, and removes what it added). The
bytecode step compiles on one forked worker per CPU (install/bytecode.py), and the import check
imports each package the layer is for, with what it needs, on one forked worker per CPU
(install/import_check.py).

Two environment variables, for measuring what each pays (bench/run.py) or for a machine that must
stay quiet: ``CDK_LAYER_OVERLAP=0`` runs every step after the other, ``CDK_LAYER_JOBS=N`` gives the
bytecode step, the import check and the zip N workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
OVERLAP_ENV = "CDK_LAYER_OVERLAP"
JOBS_ENV = "CDK_LAYER_JOBS"


def overlap() -> bool:
    """Whether independent steps run side by side (default: yes)."""
    return os.environ.get(OVERLAP_ENV, "1").strip().lower() not in ("0", "off", "false", "no")


def jobs() -> int | None:
    """Workers for the bytecode step, the import check and the zip (None: one per CPU)."""
    value = os.environ.get(JOBS_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


class SideTasks:
    """Work a build started beside its main line: each is awaited where its result is needed, and all
    are awaited before the build gives up (none may still write into a staging folder being removed)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[object]] = []

    def start(self, action: Callable[[], T]) -> Future[T]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cdk-layer-side")
        future = self._pool.submit(action)
        self._pending.append(future)  # type: ignore[arg-type]
        return future

    def settle(self) -> None:
        """Wait for everything started (their errors are the caller's to have seen, or moot)."""
        for future in self._pending:
            try:
                future.result()
            except BaseException as exc:  # the build is failing already, or it will ask
                logger.debug("a side task ended with %s", exc)
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
