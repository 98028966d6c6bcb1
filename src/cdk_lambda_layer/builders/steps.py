"""The record of one build: each step with its duration, and what the build has to say.

Every builder step runs through ``StepLog.run``, so the CLI (``on_step``), the log, the result and
the synth line all see the same names and times. A step run inside another (the new packages' trim and
bytecode, done within a bumped build's install beside the copy: builders/host_steps.py) is reported
right after it, once per name with its runs' seconds added up, and the outer step's seconds leave its
out: the steps read in the order the build goes, and their seconds add up to the build's.
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
        #: For each step running (outermost first), the seconds of the steps run inside it so far.
        self._inside: list[float] = []
        #: Steps run inside the running outermost one, held to be reported after it (name -> seconds).
        self._held: dict[str, float] = {}

    def run(self, name: str, action: Callable[[], T]) -> T:
        """Run ``action`` as the step ``name``: timed, logged and reported (inside another: after it)."""
        self._inside.append(0.0)
        started = time.perf_counter()
        try:
            result = action()
        except BaseException:
            self._inside.pop()
            if not self._inside:
                self._held.clear()  # a failed step is not reported, nor what ran inside it
            raise
        total = time.perf_counter() - started
        seconds = total - self._inside.pop()
        logger.info("step %s: %.2fs", name, seconds)
        if self._inside:
            self._inside[-1] += total
            self._held[name] = self._held.get(name, 0.0) + seconds
            return result
        held, self._held = self._held, {}
        for step in ((name, seconds), *held.items()):
            self.steps.append(step)
            if self.on_step:
                self.on_step(*step)
        return result

    def warn(self, messages: Iterable[str]) -> None:
        self.warnings.extend(messages)

    def result_fields(self) -> dict[str, Any]:
        return {"steps": tuple(self.steps), "warnings": tuple(self.warnings)}
