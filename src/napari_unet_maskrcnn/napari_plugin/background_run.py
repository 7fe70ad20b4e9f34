"""Run / Cancel buttons that run a dock's work in a napari thread worker, with progress.

Every computing dock (the two segmentation docks, Evaluate, Measure, Train) owns a
:class:`BackgroundRun`. Clicking Run asks the dock for a :class:`Job` (its checks run in the
main thread; a ``ValueError`` becomes a notification) and runs ``job.work`` in a worker thread.
The work is one of two kinds:

- the core's progress generator (segmentation, evaluation, measuring): Cancel closes it at its
  next ``yield`` and nothing is added;
- a stoppable function ``work(emit, should_stop)`` (training): it calls ``emit(event)`` with its
  progress and polls ``should_stop()``; Cancel asks it to stop, and what it returns (e.g. the
  best weights so far, written atomically) goes to ``job.finish`` like any result.

The events reach the main thread through a queued Qt signal, where ``job.on_event`` turns each
into the status line and the position of a progress bar in the activity dock (by default a
:class:`~napari_unet_maskrcnn.core.progress.ProgressEvent` as elapsed time and estimate).
``job.finish`` gets the result in the main thread and adds the layers, tables or files. A
failure (the dock's checks, the work, or ``job.finish``) becomes one napari notification with a
message for the user and one line in the ``napari_unet_maskrcnn`` log (the traceback only at
DEBUG level, never printed to the terminal by default); the dock's ``on_failure`` then clears
what the previous run showed, so no stale table stays under "Failed". Closing napari during a
run stops it without touching a deleted widget.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from magicgui.widgets import Container, Label, PushButton
from napari.qt.threading import create_worker
from napari.utils import cancelable_progress
from napari.utils.notifications import show_error
from qtpy.QtCore import QObject, Signal

from ..core.progress import Cancelled, ProgressEvent, ProgressGenerator, drain, progress_text

log = logging.getLogger("napari_unet_maskrcnn")

FAILED = "Failed; see the notification."
"""The status line after a failed run (the notification says why and what to change)."""

EventView = tuple[str, int, int]
"""What one progress event shows: (status line, done, total) of the progress bar."""
StoppableWork = Callable[[Callable[[Any], None], Callable[[], bool]], Any]
"""``work(emit, should_stop)``: reports progress with ``emit(event)``, ends early when ``should_stop()``."""


class RunError(Exception):
    """A run failed; the message is meant for the user.

    (Not a RuntimeError: napari's workers take a RuntimeError for a deleted worker and
    swallow it, which would leave the Run button disabled.)
    """


def progress_view(event: ProgressEvent, elapsed_s: float) -> EventView:
    """``"tile 44 / 196 · 0:12 elapsed, about 0:41 left"`` and the bar at 44 of 196."""
    return progress_text(event, elapsed_s), event.done, event.total


@dataclass(frozen=True)
class Job:
    """One run of a dock widget.

    Attributes:
        work: the core's progress generator (Cancel: nothing is added), or a
            :data:`StoppableWork` function (Cancel: it stops early and its result is kept). It
            runs in the worker thread, so it must not touch layers or widgets (take what it
            needs from them before).
        finish: called in the main thread with the work's result; adds the layers, tables or
            files and returns the status line.
        title: the progress bar's description, e.g. ``"Evaluate segmentation: cells"``.
        what: the run's name in a failure message, e.g. ``"Segmentation"``.
        on_event: called in the main thread with each progress event and the seconds since
            Run; returns what it shows (:data:`EventView`), or None to leave the status line
            and the bar as they are.
    """

    work: ProgressGenerator | StoppableWork
    finish: Callable[[Any], str]
    title: str
    what: str = "The run"
    on_event: Callable[[Any, float], EventView | None] = progress_view

    @property
    def keeps_partial_result(self) -> bool:
        """Whether Cancel keeps what the work did so far (a stoppable function, not a generator)."""
        return not inspect.isgenerator(self.work)


_CANCELLED = object()
"""The worker's result when Cancel closed a progress generator."""


def _run(job: Job, emit: Callable[[Any], None], should_stop: Callable[[], bool]):
    """Worker body: the work, its events to ``emit``; failures get a message for the user."""
    try:
        if job.keeps_partial_result:
            return job.work(emit, should_stop)
        return drain(job.work, emit, should_stop)
    except Cancelled:
        return _CANCELLED
    except ValueError as err:  # bad input, ModelFileError: the core's message says the fix
        raise RunError(str(err)) from err
    except Exception as err:
        raise RunError(f"{job.what} failed ({type(err).__name__}: {err}).") from err


class _Events(QObject):
    """Carries progress events from the worker thread to the main thread (queued signal)."""

    event = Signal(object)


class BackgroundRun(Container):
    """A row of Run and Cancel buttons and a status line under it.

    Args:
        prepare: called on Run in the main thread; returns the :class:`Job`, or raises
            ``ValueError`` with a message saying what to change (shown as a notification).
        run_text: the Run button's text (e.g. "Evaluate").
        on_failure: called in the main thread when a run fails (before it starts, in the work
            or in ``job.finish``), e.g. to clear the previous run's table.
    """

    def __init__(self, prepare: Callable[[], Job], run_text: str = "Run",
                 on_failure: Callable[[], None] | None = None):
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self._prepare = prepare
        self._on_failure = on_failure
        self._job: Job | None = None
        self._worker = None
        self._progress = None
        self._stop = threading.Event()
        self._started = 0.0
        self._events = _Events()
        self._events.event.connect(self._on_event)
        self.run_button = PushButton(text=run_text)
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        buttons = Container(layout="horizontal", labels=False, widgets=[self.run_button, self.cancel_button])
        buttons.margins = (0, 0, 0, 0)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)  # a long status line must not widen the dock
        self.extend([buttons, self.status])
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.native.destroyed.connect(lambda *_: self._abandon())

    @property
    def running(self) -> bool:
        return self._worker is not None

    def run(self) -> None:
        """Start a run in a worker thread (Run button); does nothing while one is running."""
        if self.running:
            return
        try:
            job = self._prepare()
        except ValueError as err:
            self._fail(str(err))
            return
        self._job = job
        self._stop = threading.Event()  # per run: a worker being abandoned keeps its own, set
        self._progress = cancelable_progress(total=0, desc=job.title, cancel_callback=self.cancel)
        worker = create_worker(_run, job, self._events.event.emit, self._stop.is_set,
                               _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda result: self._on_result(job, result))
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = "Starting…"
        self._started = time.monotonic()
        worker.start()

    def cancel(self) -> None:
        """Cancel button: a generator stops at its next step (nothing is added); a stoppable
        work stops at its next step and keeps what it has done."""
        if self._worker is None or self._stop.is_set():
            return
        self._stop.set()
        self.cancel_button.enabled = False
        self.status.value = ("Stopping after the current step…" if self._job.keeps_partial_result
                             else "Cancelling…")

    def _on_event(self, event) -> None:
        bar = self._progress
        if bar is None:  # napari's progress bar may process events: the run can end in here
            return
        shown = self._job.on_event(event, time.monotonic() - self._started)
        if shown is None:
            return
        text, done, total = shown
        if not self._stop.is_set():  # keep "Cancelling…" in sight
            self.status.value = text
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    def _on_result(self, job: Job, result) -> None:
        if result is _CANCELLED:
            self.status.value = "Cancelled; nothing was added."
            return
        try:
            self.status.value = job.finish(result)
        except ValueError as err:  # the layers changed during the run in a way the result cannot fit
            self._fail(str(err))

    def _on_error(self, error: Exception) -> None:
        """The work failed: its message says what to change (a RunError's is meant for the user)."""
        log.debug("Traceback of the failed run:", exc_info=(type(error), error, error.__traceback__))
        self._fail(str(error))

    def _fail(self, message: str) -> None:
        """One notification, one log line, the status line, and the dock's stale results cleared."""
        log.error("%s", message)
        show_error(message)
        self.status.value = FAILED
        if self._on_failure is not None:
            self._on_failure()

    def _abandon(self) -> None:
        """The widget is being destroyed (napari closes): stop the run, touch no widget."""
        worker = self._worker
        if worker is None:
            return
        for signal in (worker.returned, worker.errored, worker.finished):
            signal.disconnect()
        self._events.event.disconnect()
        self._stop.set()
        self._progress.close()

    def _on_finished(self) -> None:
        self._progress.close()
        self._progress = None
        self._worker = None
        self._job = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False
