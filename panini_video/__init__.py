"""panini-video: face restoration for video with Panini-Net."""

__version__ = "0.1.0"
