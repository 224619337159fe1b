"""The per-file provenance report (``--report PATH``): JSON, or one self-contained HTML page."""

from panini_video.report.build import build_report, write_report

__all__ = ["build_report", "write_report"]
