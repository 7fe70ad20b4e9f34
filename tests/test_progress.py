"""Progress text with elapsed time and an estimate of the time left (the widgets' status line)."""

from __future__ import annotations

from napari_unet_maskrcnn.core.progress import ProgressEvent, format_duration, progress_text


def test_durations_read_as_clock_times():
    assert [format_duration(s) for s in (0, 5.4, 65, 3600 + 61)] == ["0:00", "0:05", "1:05", "1:01:01"]


def test_the_estimate_scales_the_time_per_step_to_the_steps_left():
    assert progress_text(ProgressEvent(44, 196), 12.0) == "tile 44 / 196 · 0:12 elapsed, about 0:41 left"
    assert progress_text(ProgressEvent(0, 10), 1.0) == "tile 0 / 10 · 0:01 elapsed"  # no step done: no estimate
    assert progress_text(ProgressEvent(10, 10, "link"), 30.0) == "link 10 / 10 · 0:30 elapsed"
