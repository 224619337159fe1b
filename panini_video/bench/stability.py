"""``panini-video bench stability IN``: how much restored faces flicker, track codes against per-frame codes.

Flicker is the change of a face from one frame to the next that the input's motion does not
explain (the warping error of Lai et al., "Learning Blind Video Temporal Consistency", ECCV
2018: flow from the input, occluded pixels masked out). For every pair of frames (t-1, t):

- Farneback optical flow on the INPUT frames, backward (t -> t-1: ``calcOpticalFlowFarneback``
  with prev = frame t, next = frame t-1, so pixel (x, y) of t was at (x + fx, y + fy) in t-1)
  and forward (t-1 -> t) for the occlusion check;
- frame t-1 (input or restored) sampled at (x + fx, y + fy) with ``cv2.remap``, i.e. warped onto
  frame t;
- the mean absolute difference (grey levels, RGB averaged) over the pixels of the face boxes of
  frame t (clipped to the frame) whose flow is trusted: the forward-backward check holds
  (Sundaram et al., ECCV 2010: |b + f(x + b)|^2 <= 0.01 (|b|^2 + |f(x + b)|^2) + 0.5) and
  x + b falls inside frame t-1;
- only faces whose track is in both frames, and no pair across a scene cut.

The same figure for the input frames is the reference: what remains of a face's change after
motion compensation when nothing flickers (the flow's own error, lighting, expression). A
restorer adds flicker when its figure is above the input's. The flow is fitted to the input,
which slightly favours the input's row. A blurrier face changes less whether it flickers or
not (the warping error rewards blur), so each row also gives the faces' detail (mean absolute
Laplacian): compare rows of similar detail.

Rows: the input; the restorer with ``--dre-mode track`` (one steady code per track); the
restorer with ``--dre-mode frame`` (each frame its own code). Both restorer rows see the same
detected and tracked faces. With random weights (a variant whose weights are not in the cache)
the restorer rows say little about trained weights; the input row holds.
All frames are kept in memory (three copies): keep ``--frames`` modest at 1080p.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from panini_video.bench.pipeline import add_model_arguments, aligned, bench_models, machine_info
from panini_video.bench.report import write_json
from panini_video.config import RestoreConfig, RunConfig
from panini_video.errors import UsageError
from panini_video.records import FrameItem
from panini_video.runtime.stage import drive

log = logging.getLogger(__name__)

# Farneback settings (OpenCV's documented example values): 3 pyramid levels halving each time,
# 15-pixel window, 3 iterations, polynomial expansion over 5 pixels with sigma 1.2.
FARNEBACK: dict[str, Any] = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from panini_video.cli.run import DEFAULT_PIPELINE, add_face_options

    parser.add_argument("input", metavar="IN", help="a video file with faces")
    parser.add_argument("--frames", type=int, default=60, help="frames from the start of IN (default 60)")
    parser.add_argument(
        "--pipeline", metavar="NAME|FILE", default=DEFAULT_PIPELINE, help="preset, as for the main command"
    )
    add_model_arguments(parser, default_model="tiny")
    parser.add_argument("--dre-warmup", type=int, default=None, help=f"K frames (default {RestoreConfig.dre_warmup})")
    parser.add_argument("--dre-ema", type=float, default=None, help=f"EMA rate (default {RestoreConfig.dre_ema})")
    add_face_options(parser)


def run(args: argparse.Namespace) -> int:
    if args.frames < 2:
        raise UsageError("--frames must be at least 2")
    result = bench(args.input, config_from(args), frames=args.frames, seed=args.seed)
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
    return 0


def config_from(args: argparse.Namespace) -> RunConfig:
    """The preset with the flags over it; the output keeps the input's size (upscale 1)."""
    from panini_video.cli.run import face_overrides
    from panini_video.config import load_config

    restore = {
        "model": args.model,
        "device": args.device,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "dre_warmup": args.dre_warmup,
        "dre_ema": args.dre_ema,
        "upscale": 1,
    }
    return load_config(args.pipeline, {**face_overrides(args), "restore": restore})


# Faces and flow -----------------------------------------------------------------------------------


def detect_items(path: str | Path, config: RunConfig, frames: int, detector: Any = None) -> list[FrameItem]:
    """The first ``frames`` frames of ``path`` through the main command's detect and track stages."""
    from panini_video.io import VideoReader, probe
    from panini_video.run.pipeline import build_stages

    # annotate: build_stages then needs no Panini weights; only its first two stages are used.
    stages = build_stages(dataclasses.replace(config, annotate=True), probe(path), detector=detector)[:2]
    with VideoReader(path) as reader:
        items: list[FrameItem] = [FrameItem(f) for f in itertools.islice(reader, frames)]
    for stage in stages:
        items = drive(stage, items)
    return items


@dataclasses.dataclass
class Region:
    """One face of frame t compared with frame t-1: its box, where to sample t-1, which pixels count."""

    t: int
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame t, end exclusive
    map_x: np.ndarray  # (h, w) float32: x in frame t-1 of each pixel of the box
    map_y: np.ndarray
    valid: np.ndarray  # (h, w) bool: flow trusted (forward-backward consistent, inside t-1)


def clipped_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """A float box as whole pixels covering it, inside the frame (may be empty)."""
    x0, y0 = max(math.floor(float(box[0])), 0), max(math.floor(float(box[1])), 0)
    x1, y1 = min(math.ceil(float(box[2])), width), min(math.ceil(float(box[3])), height)
    return x0, y0, max(x1, x0), max(y1, y0)


def optical_flow(prev: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Farneback flow (H, W, 2): pixel (x, y) of ``prev`` is at (x, y) + flow in ``other``."""
    f = FARNEBACK
    args = (f["pyr_scale"], f["levels"], f["winsize"], f["iterations"], f["poly_n"], f["poly_sigma"], f["flags"])
    return np.asarray(cv2.calcOpticalFlowFarneback(prev, other, None, *args))  # type: ignore[call-overload]


def face_regions(items: Sequence[FrameItem]) -> list[Region]:
    """The face boxes of every frame t >= 1 with the input's flow onto frame t-1."""
    regions: list[Region] = []
    prev_gray: np.ndarray | None = None
    prev_tracks: set[int] = set()
    for t, item in enumerate(items):
        gray = cv2.cvtColor(item.frame.rgb(), cv2.COLOR_RGB2GRAY)
        tracks = {f.track for f in item.faces if f.track >= 0}
        faces = [f for f in item.faces if f.track in prev_tracks]
        if prev_gray is not None and prev_gray.shape == gray.shape and not item.scene_cut and faces:
            back = optical_flow(gray, prev_gray)  # t -> t-1
            fwd = optical_flow(prev_gray, gray)  # t-1 -> t
            h, w = gray.shape
            for face in faces:
                x0, y0, x1, y1 = clipped_box(face.box, w, h)
                if x1 - x0 < 2 or y1 - y0 < 2:
                    continue
                ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
                b = back[y0:y1, x0:x1]
                map_x, map_y = xs + b[..., 0], ys + b[..., 1]
                f = cv2.remap(fwd, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                err = ((b + f) ** 2).sum(axis=-1)
                bound = 0.01 * ((b**2).sum(axis=-1) + (f**2).sum(axis=-1)) + 0.5
                inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
                regions.append(Region(t, (x0, y0, x1, y1), map_x, map_y, (err <= bound) & inside))
        prev_gray, prev_tracks = gray, tracks
    return regions


def flicker(images: Sequence[np.ndarray], regions: Sequence[Region]) -> dict[str, float]:
    """Mean and 95th percentile, over faces, of the motion-compensated change in the trusted pixels.

    ``detail`` is the mean absolute Laplacian of the grey face boxes: a blurrier face changes
    less from frame to frame whether it flickers or not, so the change is read beside it.
    """
    values, trusted, detail = [], [], []
    for r in regions:
        if not r.valid.any():
            continue
        x0, y0, x1, y1 = r.box
        current = images[r.t][y0:y1, x0:x1]
        warped = cv2.remap(images[r.t - 1], r.map_x, r.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diff = np.abs(warped.astype(np.float32) - current.astype(np.float32)).mean(axis=-1)
        values.append(float(diff[r.valid].mean()))
        trusted.append(float(r.valid.mean()))
        grey = cv2.cvtColor(np.ascontiguousarray(current), cv2.COLOR_RGB2GRAY).astype(np.float32)
        detail.append(float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean()))
    if not values:
        nan = float("nan")
        return {"mean": nan, "p95": nan, "faces": 0, "trusted": nan, "detail": nan}
    return {
        "mean": float(np.mean(values)),
        "p95": float(np.percentile(values, 95)),
        "faces": len(values),
        "trusted": float(np.mean(trusted)),  # share of box pixels whose flow passed the check
        "detail": float(np.mean(detail)),
    }


# Restoration --------------------------------------------------------------------------------------


def restore_frames(items: Sequence[FrameItem], config: RunConfig, model: Any) -> tuple[list[np.ndarray], dict]:
    """Every item through the main command's RestoreStage; the output images and the stage's figures."""
    from panini_video.restore.stage import RestoreStage

    stage = RestoreStage(config.restore, config.blend, model=model)
    out: list[FrameItem] = drive(stage, items)
    if [o.frame.index for o in out] != [i.frame.index for i in items]:
        raise RuntimeError("the restore stage did not return every frame once, in order")
    return [o.frame.rgb() for o in out], stage.stats()


def weighted_track_mean(tracks: Sequence[dict[str, Any]], key: str) -> float:
    """``key`` of the DRE cache's track records, averaged with the tracks' lengths as weights."""
    total = sum(t["length"] for t in tracks)
    return sum(t[key] * t["length"] for t in tracks) / total if total else 0.0


def bench(
    path: str | Path,
    config: RunConfig,
    *,
    frames: int = 60,
    seed: int = 0,
    model: Any = None,
) -> dict[str, Any]:
    """Flicker of the input and of the restorer in both DRE modes on the first ``frames`` frames.

    ``model`` replaces the one ``config.restore.model`` names (tests); otherwise the cached
    weights, or seeded random weights for a variant without them.
    """

    if config.restore.upscale != 1:
        config = dataclasses.replace(config, restore=dataclasses.replace(config.restore, upscale=1))
    model, weights, device, detector = bench_models(config, model, seed)
    items = detect_items(path, config, frames, detector)
    regions = face_regions(items)
    log.info("%d frames, %d face comparisons", len(items), len(regions))
    rows: list[dict[str, Any]] = [{"name": "input", **flicker([it.frame.rgb() for it in items], regions)}]
    stats: dict[str, Any] = {}
    for mode in ("track", "frame"):
        mode_config = dataclasses.replace(config, restore=dataclasses.replace(config.restore, dre_mode=mode))
        images, stats = restore_frames(items, mode_config, model)
        rows.append(
            {
                "name": f"dre={mode}",
                **flicker(images, regions),
                "code_step_mean": weighted_track_mean(stats["tracks"], "code_step_mean"),
                "mask_step_mean": weighted_track_mean(stats["tracks"], "mask_step_mean"),
                "faces_restored": stats["faces"],
                "faces_failed": stats["faces_failed"],
            }
        )
    base = rows[0]["mean"]
    for r in rows:
        r["vs_input"] = r["mean"] / base if math.isfinite(base) and base > 0 else None
    return {
        "input": str(path),
        "frames": len(items),
        "pairs_compared": len({r.t for r in regions}),
        "model": config.restore.model,
        "weights": weights,
        "device": stats.get("device", str(device)),
        "precision": stats.get("precision"),
        "dre_warmup": config.restore.dre_warmup,
        "dre_ema": config.restore.dre_ema,
        "farneback": FARNEBACK,
        "rows": rows,
        "machine": machine_info(stats.get("device", str(device))),
    }


def format_table(result: dict[str, Any]) -> str:
    head = [
        f"stability of {result['input']}: {result['frames']} frames, {result['pairs_compared']} frame pairs; "
        f"model {result['model']} ({result['weights']}) on {result['device']} {result['precision']}, "
        f"DRE warmup {result['dre_warmup']}, EMA {result['dre_ema']}",
        "mean |change| of the face boxes after compensating the input's motion (grey levels, trusted flow only);",
        "detail: mean |Laplacian| of the boxes (a blurrier face changes less, flicker or not)",
    ]
    if result["weights"].startswith("random"):
        head.append("RANDOM WEIGHTS: the restorer rows say little about trained weights; the input row holds")
    lines = [["", "mean", "p95", "x input", "detail", "faces", "trusted", "code step", "mask step", "failed"]]

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None or not math.isfinite(value) else format(value, fmt)

    for r in result["rows"]:
        lines.append(
            [
                r["name"],
                num(r["mean"], ".3f"),
                num(r["p95"], ".3f"),
                num(r["vs_input"], ".2f"),
                num(r["detail"], ".2f"),
                str(r["faces"]),
                num(r["trusted"], ".0%"),
                num(r.get("code_step_mean"), ".3g"),
                num(r.get("mask_step_mean"), ".3g"),
                str(r.get("faces_failed", "-")),
            ]
        )
    return "\n".join([*head, *aligned(lines)])
