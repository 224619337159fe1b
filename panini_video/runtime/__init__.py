"""The generic stage graph: threads, bounded queues, stop and errors, reorder buffer, stats, memory.

It knows nothing of faces or files: ``panini_video.run`` puts a Source, the face stages and a
Sink on it.
"""

from __future__ import annotations

from panini_video.runtime.graph import Graph
from panini_video.runtime.reorder import DroppedIndices, ReorderBuffer
from panini_video.runtime.stage import Stage
from panini_video.runtime.stats import GraphStats, StageStats

__all__ = ["DroppedIndices", "Graph", "GraphStats", "ReorderBuffer", "Stage", "StageStats"]
