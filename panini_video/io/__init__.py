"""Video input and output: probe, threaded reader, writer with audio remux."""

from __future__ import annotations

from panini_video.io.encoder import EncoderPlan, plan_encoder
from panini_video.io.probe import StreamInfo, VideoInfo, probe
from panini_video.io.reader import VideoReader
from panini_video.io.writer import VideoWriter

__all__ = ["EncoderPlan", "StreamInfo", "VideoInfo", "VideoReader", "VideoWriter", "plan_encoder", "probe"]
