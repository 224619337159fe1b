"""The run's wiring: a Source, the face stages and a Sink on the stage graph, and its report.

The main command, live runs and batches share it; they differ in the Source and Sink they build.
"""

from __future__ import annotations

from panini_video.run.pipeline import RunReport, build_stages, run, run_pipeline
from panini_video.run.sinks import FileSink, MultiSink, Sink
from panini_video.run.sources import FileSource, Source

__all__ = ["FileSink", "FileSource", "MultiSink", "RunReport", "Sink", "Source", "build_stages", "run", "run_pipeline"]
