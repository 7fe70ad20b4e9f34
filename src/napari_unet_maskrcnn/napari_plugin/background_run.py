"""Run / Cancel buttons that run one of the core's progress generators in a napari thread worker.

Every computing dock (the two segmentation docks, Evaluate, Measure) owns a
:class:`BackgroundRun`. Clicking Run asks the dock for a :class:`Job` (its checks run in the
main thread; a ``ValueError`` becomes a notification), runs ``job.work`` in a napari
``thread_worker`` that re-yields its :class:`~napari_unet_maskrcnn.core.progress.ProgressEvent`
(a progress bar in the activity dock, elapsed time and estimate in the status line), and hands
the result to ``job.finish`` in the main thread, which adds the layers and tables. Cancel
(``worker.quit()``) stops the generator at its next ``yield``: a cancelled run adds nothing.
Closing napari during a run abandons it without touching a deleted widget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from magicgui.widgets import Container, Label, PushButton
from napari.qt.threading import create_worker
from napari.utils import cancelable_progress
from napari.utils.notifications import notification_manager, show_error

from ..core.progress import ProgressGenerator, progress_text


class RunError(Exception):
    """A run failed; the message is meant for the user.

    (Not a RuntimeError: napari's workers take a RuntimeError for a deleted worker and
    swallow it, which would leave the Run button disabled.)
    """


@dataclass(frozen=True)
class Job:
    """One run of a dock widget.

    Attributes:
        work: the core's progress generator; it runs in the worker thread, so it must not
            touch layers or widgets (take what it needs from them before).
        finish: called in the main thread with the generator's result; adds the layers and
            tables and returns the status line.
        title: the progress bar's description, e.g. ``"Evaluate segmentation: cells"``.
        what: the run's name in a failure message, e.g. ``"Segmentation"``.
    """

    work: ProgressGenerator
    finish: Callable[[Any], str]
    title: str
    what: str = "The run"


def _relay(job: Job):
    """Worker body: re-yield the core's progress events; give failures a user message."""
    try:
        return (yield from job.work)
    except ValueError as err:  # bad input, ModelFileError: the core's message says the fix
        raise RunError(str(err)) from err
    except Exception as err:
        raise RunError(f"{job.what} failed ({type(err).__name__}: {err}).") from err


class BackgroundRun(Container):
    """A row of Run and Cancel buttons and a status line under it.

    Args:
        prepare: called on Run in the main thread; returns the :class:`Job`, or raises
            ``ValueError`` with a message saying what to change (shown as a notification).
        run_text: the Run button's text (e.g. "Evaluate").
    """

    def __init__(self, prepare: Callable[[], Job], run_text: str = "Run"):
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self._prepare = prepare
        self._worker = None
        self._progress = None
        self._started = 0.0
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
            show_error(str(err))
            self.status.value = "Failed; see the notification."
            return
        self._progress = cancelable_progress(total=0, desc=job.title, cancel_callback=self.cancel)
        worker = create_worker(_relay, job, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda result: self._on_result(job, result))
        worker.errored.connect(self._on_error)
        worker.aborted.connect(self._on_cancelled)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = "Starting…"
        self._started = time.monotonic()
        worker.start()

    def cancel(self) -> None:
        """Stop the run at its next step (Cancel button); nothing is added."""
        if self._worker is not None:
            self._worker.quit()
            self.cancel_button.enabled = False
            self.status.value = "Cancelling…"

    def _on_progress(self, event) -> None:
        bar = self._progress
        if bar is None:  # napari's progress bar may process events: the run can end in here
            return
        self.status.value = progress_text(event, time.monotonic() - self._started)
        if bar.total != event.total:
            bar.total = event.total
        bar.update(event.done - bar.n)

    def _on_result(self, job: Job, result) -> None:
        try:
            self.status.value = job.finish(result)
        except ValueError as err:  # the layers changed during the run in a way the result cannot fit
            show_error(str(err))
            self.status.value = "Failed; see the notification."

    def _on_error(self, error: Exception) -> None:
        """Notify the failure (its message says what to change; the traceback is attached)."""
        self.status.value = "Failed; see the notification."
        notification_manager.receive_error(type(error), error, error.__traceback__)

    def _on_cancelled(self) -> None:
        self.status.value = "Cancelled; nothing was added."

    def _abandon(self) -> None:
        """The widget is being destroyed (napari closes): stop the run, touch no widget."""
        worker = self._worker
        if worker is None:
            return
        for signal in (worker.yielded, worker.returned, worker.errored, worker.aborted, worker.finished):
            signal.disconnect()
        worker.quit()
        self._progress.close()

    def _on_finished(self) -> None:
        self._progress.close()
        self._progress = None
        self._worker = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False
