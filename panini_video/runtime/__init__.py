"""The stage graph: threads, bounded queues, stop and errors, reorder buffer, stats.

``run_pipeline`` (in ``panini_video.runtime.pipeline``) puts the reader, the face stages and
the writer on it.
"""

from __future__ import annotations

from panini_video.runtime.graph import Graph
from panini_video.runtime.reorder import DroppedIndices, ReorderBuffer
from panini_video.runtime.stage import Stage
from panini_video.runtime.stats import GraphStats, StageStats

__all__ = ["DroppedIndices", "Graph", "GraphStats", "ReorderBuffer", "Stage", "StageStats"]
