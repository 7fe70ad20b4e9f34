"""Progress reporting and cancellation shared by the GUI, the CLI and scripts.

The core's long computations are *generators*: they ``yield`` a :class:`ProgressEvent`
after each tile or slice and ``return`` their result. Every caller drains them with
:func:`drain`: scripts and the CLI in their own thread, the GUI in a worker thread whose
Cancel makes ``should_cancel`` true, which closes the generator at its next ``yield``. Either
way a run can be stopped within one tile, and nothing is written until the generator finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a long computation.

    Attributes:
        done: steps completed so far (0 <= done <= total).
        total: steps in the whole run (tiles x planes, for segmentation).
        stage: what the step was, e.g. ``"tile"``, ``"link"``.
    """

    done: int
    total: int
    stage: str = "tile"


ProgressGenerator = Generator[ProgressEvent, None, T]
ProgressCallback = Callable[[ProgressEvent], Any]
CancelCheck = Callable[[], bool]


class Cancelled(RuntimeError):
    """Raised by :func:`drain` when ``should_cancel`` asked to stop."""


def drain(
    gen: ProgressGenerator[T],
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> T:
    """Run a progress generator to the end and return its result.

    Args:
        gen: a generator yielding :class:`ProgressEvent` and returning the result.
        on_progress: called with every event (e.g. to advance a progress bar).
        should_cancel: polled after every event; when it returns True the generator
            is closed and :class:`Cancelled` is raised, so no result is produced.

    Whatever stops the run early (cancel, an error or Ctrl-C raised in ``on_progress``) closes
    the generator at once, so its clean-up (cancelling cluster tasks, removing a temporary
    output) runs before the exception reaches the caller, not when it is garbage collected.
    """
    try:
        while True:
            event = next(gen)
            if on_progress is not None:
                on_progress(event)
            if should_cancel is not None and should_cancel():
                raise Cancelled("cancelled by the user")
    except StopIteration as stop:
        return stop.value
    finally:
        gen.close()  # no-op once the generator has returned


def format_duration(seconds: float) -> str:
    """``"m:ss"`` (or ``"h:mm:ss"``) of a duration in seconds, e.g. ``"2:05"``."""
    minutes, secs = divmod(int(round(max(seconds, 0.0))), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(event: ProgressEvent, elapsed_s: float) -> str:
    """``"tile 44 / 196 · 0:12 elapsed, about 0:41 left"``: the estimate assumes equal steps.

    Without a finished step there is no estimate yet (``"… elapsed"`` only).
    """
    text = f"{event.stage} {event.done} / {event.total} · {format_duration(elapsed_s)} elapsed"
    if 0 < event.done < event.total:
        left = elapsed_s / event.done * (event.total - event.done)
        text += f", about {format_duration(left)} left"
    return text


class RunProgress:
    """Progress over all planes of a run; a plane's tile count may change (a resized pass)."""

    def __init__(self, per_plane: int, planes: int):
        self.per_plane = per_plane
        self.total = per_plane * planes
        self.done = 0

    def relay(self, gen: ProgressGenerator) -> ProgressGenerator:
        """Re-yield a per-plane generator's events on the whole run's scale; return its result."""
        counted = self.per_plane
        try:
            event = next(gen)
            while True:
                if event.total != counted:
                    self.total += event.total - counted
                    counted = event.total
                yield ProgressEvent(self.done + event.done, self.total, event.stage)
                event = next(gen)
        except StopIteration as stop:
            return stop.value
        finally:
            gen.close()
            self.done += counted
