"""Face restoration on the device: DRE cache, batcher, device executor and the restore stage.

Public names are re-exported here; importing this package does not load a model.
"""

from panini_video.restore.batcher import Batcher, FrameWindow
from panini_video.restore.dre_cache import CodeTicket, DreCache, TrackRecord
from panini_video.restore.executor import DeviceExecutor, resolve_device, resolve_precision
from panini_video.restore.stage import RestoreStage

__all__ = [
    "Batcher",
    "CodeTicket",
    "DeviceExecutor",
    "DreCache",
    "FrameWindow",
    "RestoreStage",
    "TrackRecord",
    "resolve_device",
    "resolve_precision",
]
