"""The run's wiring: memory planned over the stages and the sink's encoders."""

from __future__ import annotations

from pathlib import Path

from panini_video.config import RunConfig
from panini_video.io.encoder import plan_encoder, with_lookahead
from panini_video.run.pipeline import plan_memory


def test_x264_lookahead_is_shortened_to_fit_and_reaches_the_encoder() -> None:
    config = RunConfig().with_overrides({"runtime": {"max_memory": "6G"}})
    big = plan_encoder(Path("o.mp4"), config.io, (7680, 4320))
    memory = plan_memory(config, [], big)
    assert memory.encoder_lookahead is not None and 0 <= memory.encoder_lookahead < 40
    assert memory.within_budget and memory.bytes_in_flight <= 6 * 2**30
    shorter = with_lookahead(big, memory.encoder_lookahead)
    assert shorter.options["rc-lookahead"] == str(memory.encoder_lookahead)
    small = plan_memory(config, [], plan_encoder(Path("o.mp4"), config.io, (1280, 720)))
    assert small.encoder_lookahead is None and small.queue_size == 8  # the preset's look-ahead stands


def test_two_x264_sinks_count_twice_and_share_the_shorter_lookahead() -> None:
    config = RunConfig().with_overrides({"runtime": {"max_memory": "10G"}})
    big = plan_encoder(Path("o.mp4"), config.io, (7680, 4320))
    one = plan_memory(config, [], [big])
    two = plan_memory(config, [], [big, plan_encoder(Path("o.mkv"), config.io, (7680, 4320))])
    assert one.encoder_lookahead is None  # one encoder fits with the preset's look-ahead
    assert two.encoder_lookahead is not None and two.encoder_lookahead < 40  # two do not: both shorten it
    assert two.frames_fixed > one.frames_fixed and two.bytes_in_flight <= 10 * 2**30
