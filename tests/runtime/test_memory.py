"""The memory plan: queue depth from a byte budget, and the encoder model it counts."""

from __future__ import annotations

import pytest

from panini_video.io.encoder import encoder_frames
from panini_video.runtime.memory import default_budget, plan_queues, total_memory

MB = 2**20


def test_small_frames_keep_the_configured_depth() -> None:
    plan = plan_queues(2048 * MB, 640 * 360 * 3, queues=6, frames_fixed=30, queue_size=8)
    assert plan.queue_size == 8 and plan.within_budget
    assert plan.frames_in_flight == 30 + 6 * 8 and plan.bytes_in_flight == int(78 * 640 * 360 * 3)


def test_big_frames_get_what_the_budget_leaves() -> None:
    frame = 7680 * 4320 * 3  # 100 MB
    plan = plan_queues(3000 * MB, frame, queues=6, frames_fixed=10, queue_size=8)
    assert plan.queue_size == int((3000 * MB / frame - 10) // 6) == 3
    assert plan.bytes_in_flight <= 3000 * MB and plan.within_budget


def test_a_budget_too_small_for_one_frame_per_queue_says_so(caplog: pytest.LogCaptureFixture) -> None:
    plan = plan_queues(200 * MB, 7680 * 4320 * 3, queues=6, frames_fixed=10, queue_size=8)
    assert plan.queue_size == 1 and not plan.within_budget
    assert "memory budget" in caplog.text


def test_the_default_budget_is_a_quarter_of_the_memory() -> None:
    total = total_memory()
    assert total is not None and default_budget() == max(512 * MB, total // 4)


def test_the_encoder_model_grows_with_lookahead_and_threads() -> None:
    assert encoder_frames("libx264", "medium", 2) > encoder_frames("libx264", "medium", 2, lookahead=0)
    assert encoder_frames("libx264", "medium", 16) > encoder_frames("libx264", "medium", 2)
    assert encoder_frames("libx264", "ultrafast", 2) < encoder_frames("libx264", "medium", 2, lookahead=0)
    assert encoder_frames("ffv1", None, 2) < encoder_frames("libx264", "ultrafast", 2)
    assert encoder_frames("libx264", None, 2) == encoder_frames("libx264", "medium", 2)  # None: x264's medium
