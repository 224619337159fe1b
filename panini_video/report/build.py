"""The per-file provenance report: what went in, what was done with which settings, what came out.

An archivist keeps it beside the restored file: the input named by size and hashes (so the same
master is found again), every setting and the weights' hashes (so the run can be repeated), what was
converted (deinterlacing, assumed colour, the output's codec), each track with a before/after face,
and the verification of frames, timestamps, audio packets and the pixels outside the faces.
``build_report`` gives a JSON-ready dict; ``write_report`` writes it as JSON, or as one HTML page
when the path ends in ``.html``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from panini_video import __version__, outputs
from panini_video.errors import PaniniError
from panini_video.report.identity import file_identity, media_facts
from panini_video.report.images import png_data_uri
from panini_video.report.weights import weight_hashes
from panini_video.run.pipeline import RunReport

log = logging.getLogger(__name__)

REPORT_VERSION = 1
HTML_SUFFIXES = (".html", ".htm")
NOT_RUN = "not run"


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as JSON values only (fractions, paths and tuples as JSON writes them)."""
    return json.loads(json.dumps(data, default=str))


def stats_dict(run: RunReport) -> dict[str, Any]:
    """The run's ``--stats-json`` figures as plain JSON values (arrays and records left out)."""
    data = run.to_dict()
    data.pop("artifacts", None)  # pictures, not figures
    return _plain(data)


def _track_row(track: dict[str, Any]) -> dict[str, Any]:
    row = {k: track.get(k) for k in ("track", "first_frame", "last_frame", "faces")}
    size = track.get("median_size")
    row["median_size"] = None if size is None else [int(round(float(v))) for v in size]
    best = track.get("best")
    if best:
        row["best"] = {
            "frame": int(best["frame"]),
            "sharpness": float(best["sharpness"]),
            "before": None if best.get("before") is None else png_data_uri(best["before"]),
            "after": None if best.get("after") is None else png_data_uri(best["after"]),  # None: --upscale
        }
    else:
        row["best"] = None
    return row


def tracks_section(run: RunReport) -> dict[str, Any]:
    """Each track's frame range, face count and size, and its sharpest face before and after.

    The pictures come from the restore stage's artifacts; a run without them (annotate, or a
    stage that kept none) lists the tracks from the stats alone.
    """
    artifacts = getattr(run, "artifacts", None) or {}
    tracks = (artifacts.get("restore") or {}).get("tracks")
    if tracks is not None:
        rows = [_track_row(t) for t in sorted(tracks, key=lambda t: (t["first_frame"], t["track"]))]
        return {"count": len(rows), "source": "restore", "rows": rows}
    rows = []
    for t in run.stage_stats.get("restore", {}).get("tracks", []):
        first, last = t.get("first_frame"), t.get("last_frame")
        rows.append(
            {
                "track": t.get("track"),
                "first_frame": first,
                "last_frame": last,
                "faces": t.get("length"),
                "median_size": None,
                "best": None,
            }
        )
    count = run.stage_stats.get("track", {}).get("tracks", len(rows))
    return {"count": count, "source": "stats", "rows": rows}


def _verify(input_path: str, output_path: str, stats: dict[str, Any]) -> dict[str, Any]:
    try:
        from panini_video.verify import verify_files  # written beside this; absent in older trees
    except ImportError:
        return {"status": NOT_RUN, "reason": "this build has no verifier (panini_video.verify)"}
    try:
        result = verify_files(input_path, output_path, stats)
    except PaniniError as e:
        log.warning("verification of %s failed to run: %s", output_path, e)
        return {"status": "error", "reason": str(e)}
    return {"status": "ok" if result.ok else "failed", **_plain(result.to_dict())}


def conversion_section(stats: dict[str, Any], out_facts: dict[str, Any] | None) -> dict[str, Any]:
    """What changed between the input's samples and the output's: fields, colour, codec."""
    source = stats.get("stage_stats", {}).get("source", {})
    output = None
    if out_facts is not None:
        output = {k: out_facts.get(k) for k in ("container", "codec", "profile", "pix_fmt", "colour", "hdr")}
    return {
        "deinterlace": source.get("deinterlace"),
        "colour": source.get("colour"),
        "output": output,
    }


def build_report(
    run: RunReport,
    *,
    output_paths: Sequence[str | os.PathLike[str]] | None = None,
    verification: dict[str, Any] | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """The report of one finished file run, as JSON-ready values.

    output_paths: the files written (default ``run.output``); each is named and probed.
    verification: a verification already made (``Verification.to_dict()`` of the first output);
    else, with ``verify``, it is made here, else the section says "not run".
    """
    stats = stats_dict(run)
    paths = [str(p) for p in (output_paths if output_paths is not None else [run.output])]
    outs = []
    for p in paths:
        try:
            outs.append({"identity": file_identity(p).to_dict(), "probe": media_facts(p)})
        except PaniniError as e:
            log.warning("the output %s cannot be described in the report: %s", p, e)
            outs.append({"identity": {"path": p}, "probe": None, "error": str(e)})
    if verification is not None:
        checked = {"status": "ok" if verification.get("ok") else "failed", **_plain(verification)}
    elif verify and paths:
        checked = _verify(run.input, paths[0], stats)
    else:
        checked = {"status": NOT_RUN, "reason": "verification was not asked for"}
    return {
        "report_version": REPORT_VERSION,
        "panini_video": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "input": {"identity": file_identity(run.input).to_dict(), "probe": media_facts(run.input)},
        "outputs": outs,
        "run": {
            "frames_in": run.frames_in,
            "frames_out": run.frames_out,
            "dropped": run.dropped,
            "wall_s": round(run.wall_s, 3),
            "fps": round(run.fps, 3),
            "faces_restored": run.stage_stats.get("restore", {}).get("faces"),
            "faces_failed": run.stage_stats.get("restore", {}).get("faces_failed"),
        },
        "settings": stats["config"],
        "weights": weight_hashes(run.config),
        "conversion": conversion_section(stats, outs[0]["probe"] if outs else None),
        "tracks": tracks_section(run),
        "verification": checked,
    }


def is_html(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in HTML_SUFFIXES


def write_report(path: str | os.PathLike[str], report: dict[str, Any]) -> None:
    """``report`` as JSON, or as one self-contained HTML page when ``path`` ends in .html; whole or not at all."""
    if is_html(path):
        from panini_video.report.html import render_html

        text = render_html(report)
    else:
        text = json.dumps(report, indent=2) + "\n"
    outputs.write_text(path, text, option="--report")
