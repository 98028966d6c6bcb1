"""The record of one build: each step with its duration, and what the build has to say.

Every builder step runs through ``StepLog.run``, so the CLI (``on_step``), the log, the result and
the synth line all see the same names and times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

#: Called after each step with its name and duration in seconds (the CLI prints them).
StepCallback = Callable[[str, float], None]
T = TypeVar("T")


class StepLog:
    """Steps in the order they ran, with their seconds, and the warnings for the user."""

    def __init__(self, on_step: StepCallback | None = None) -> None:
        self.on_step = on_step
        self.steps: list[tuple[str, float]] = []
        self.warnings: list[str] = []

    def run(self, name: str, action: Callable[[], T]) -> T:
        """Run ``action`` as the step ``name``: timed, logged and reported."""
        started = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - started
        self.steps.append((name, seconds))
        logger.info("step %s: %.2fs", name, seconds)
        if self.on_step:
            self.on_step(name, seconds)
        return result

    def warn(self, messages: Iterable[str]) -> None:
        self.warnings.extend(messages)

    def result_fields(self) -> dict[str, Any]:
        return {"steps": tuple(self.steps), "warnings": tuple(self.warnings)}
