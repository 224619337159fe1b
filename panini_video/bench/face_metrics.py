"""The measures behind ``panini-video bench faces``: clip traces, count errors, jitter, id switches, paste, agreement.

Each takes what it measures (a detector, a clip trace, an image) and returns plain figures (dicts
of numbers) that the bench prints and writes as JSON; ``panini_video.bench.faces`` says what is
run on which data.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from panini_video.errors import InputNotFoundError
from panini_video.records import Face

log = logging.getLogger(__name__)

CHAIN_IOU = 0.3  # IoU continuing a "person" in the id-switch count


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# --- one pass over a clip ------------------------------------------------------------------------


class ClipTrace:
    """What one pass over a clip saw: detections per frame, raw and smoothed tracked faces, cuts."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: list[int] = []  # detector's faces per frame
        self.raw: list[tuple[Face, ...]] = []  # tracked, smoothing off
        self.smooth: list[tuple[Face, ...]] = []  # tracked, default smoothing
        self.cuts: list[int] = []  # frames the scene-cut detector started a shot at
        self.seconds = 0.0


def trace_clip(detector: Any, path: Path, limit: int | None = None, strength: float | None = None) -> ClipTrace:
    """Detect every frame (up to ``limit``) and run the tracking chain raw and smoothed."""
    from panini_video.config import DetectConfig, SelectConfig, SmoothConfig, TrackConfig
    from panini_video.faces.stages import FaceTrackerPipeline
    from panini_video.io import VideoReader
    from panini_video.records import FrameItem

    smooth = SmoothConfig() if strength is None else SmoothConfig(strength=strength)
    raw_chain = FaceTrackerPipeline(TrackConfig(), SmoothConfig(strength=0.0), SelectConfig())
    smooth_chain = FaceTrackerPipeline(TrackConfig(), smooth, SelectConfig())
    out = ClipTrace(path.name)
    batch_size = DetectConfig().batch_frames
    start = time.perf_counter()

    def run_batch(frames: list[Any]) -> None:
        for frame, det in zip(frames, detector.detect([f.rgb() for f in frames]), strict=True):
            item = FrameItem(frame=frame, faces=det.to_faces())
            out.counts.append(len(det))
            raw = raw_chain(item)
            out.raw.append(raw.faces)
            out.smooth.append(smooth_chain(item).faces)
            if raw.scene_cut:
                out.cuts.append(frame.index)

    with VideoReader(path) as reader:
        held: list[Any] = []
        for frame in reader:
            held.append(frame)
            if len(held) == batch_size:
                run_batch(held)
                held = []
            if limit is not None and frame.index + 1 >= limit:
                break
        if held:
            run_batch(held)
    out.seconds = time.perf_counter() - start
    log.info("%s: %d frames in %.1f s", path.name, len(out.counts), out.seconds)
    return out


def count_errors(counts: Sequence[int], expected: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Misses and false positives of per-frame face counts against per-frame [lo, hi] ranges."""
    misses = sum(max(lo - n, 0) for n, (lo, _) in zip(counts, expected, strict=True))
    extra = sum(max(n - hi, 0) for n, (_, hi) in zip(counts, expected, strict=True))
    wanted = sum(lo for lo, _ in expected)
    exact = sum(lo <= n <= hi for n, (lo, hi) in zip(counts, expected, strict=True))
    return {
        "frames": len(counts),
        "expected": wanted,
        "detected": int(sum(counts)),
        "misses": misses,
        "false_positives": extra,
        "recall": 1.0 - misses / wanted if wanted else None,
        "fp_per_frame": extra / len(counts) if counts else None,
        "frames_in_range": exact / len(counts) if counts else None,
    }


# --- jitter ---------------------------------------------------------------------------------------


def landmark_acceleration(frames: Sequence[Sequence[Face]]) -> tuple[list[float], list[float]]:
    """Per (track, frame) with both neighbours in the track: mean |p[t+1] - 2p[t] + p[t-1]| and face height."""
    tracks: dict[int, dict[int, Face]] = {}
    for t, faces in enumerate(frames):
        for f in faces:
            tracks.setdefault(f.track, {})[t] = f
    acc, heights = [], []
    for seen in tracks.values():
        for t, f in seen.items():
            if t - 1 in seen and t + 1 in seen:
                p = [np.asarray(seen[k].landmarks, np.float64) for k in (t - 1, t, t + 1)]
                acc.append(float(np.linalg.norm(p[2] - 2 * p[1] + p[0], axis=1).mean()))
                heights.append(f.height)
    return acc, heights


def jitter_row(name: str, trace: ClipTrace) -> dict[str, Any]:
    raw, heights = landmark_acceleration(trace.raw)
    smooth, _ = landmark_acceleration(trace.smooth)
    offsets = [
        float(np.linalg.norm(np.asarray(a.landmarks) - np.asarray(b.landmarks), axis=1).mean())
        for ra, sa in zip(trace.raw, trace.smooth, strict=True)
        for a, b in zip(ra, sa, strict=True)
    ]
    r, s = _mean(raw), _mean(smooth)
    return {
        "clip": name,
        "frames": len(trace.raw),
        "samples": len(raw),
        "face_height_px": _mean(heights),
        "raw_px": r,
        "smoothed_px": s,
        "ratio": s / r if r and s is not None else None,
        "offset_px": _mean(offsets),  # how far smoothing moves the landmarks (the lag it costs)
        "tracks": len({f.track for faces in trace.raw for f in faces}),
    }


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


# --- id switches ----------------------------------------------------------------------------------


def person_chains(frames: Sequence[Sequence[Face]], start: int, max_gap: int) -> list[list[tuple[int, int]]]:
    """Faces linked by IoU-continuity into "persons": lists of (frame, track id), frames from ``start``."""
    from panini_video.faces.tracker import greedy_assign, iou_matrix

    chains: list[list[tuple[int, int]]] = []
    last: list[tuple[int, np.ndarray]] = []  # per chain: last frame and box
    for offset, faces in enumerate(frames):
        t = start + offset
        live = [c for c, (seen, _) in enumerate(last) if t - seen <= max_gap + 1]
        boxes = np.stack([np.asarray(f.box) for f in faces]) if faces else np.zeros((0, 4))
        iou = iou_matrix(boxes, np.stack([last[c][1] for c in live])) if live and faces else np.zeros((0, 0))
        pairs = dict(greedy_assign(iou, CHAIN_IOU))
        for i, f in enumerate(faces):
            if i in pairs:
                c = live[pairs[i]]
            else:
                c = len(chains)
                chains.append([])
                last.append((t, np.asarray(f.box)))
            chains[c].append((t, f.track))
            last[c] = (t, np.asarray(f.box))
    return chains


def id_section(trace: ClipTrace, cuts: Sequence[int]) -> dict[str, Any]:
    """Id switches per shot of a traced clip, shots starting at ``cuts`` (frame indices)."""
    from panini_video.config import TrackConfig

    n = len(trace.raw)
    bounds = [0, *[c for c in cuts if c < n], n]
    rows = []
    previous_ids: set[int] = set()
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        chains = person_chains(trace.raw[a:b], a, TrackConfig().max_misses)
        switches = sum(sum(1 for (_, x), (_, y) in zip(c, c[1:], strict=False) if x != y) for c in chains)
        ids = {f.track for faces in trace.raw[a:b] for f in faces}
        # an id on two persons: the tracker bridged a break of IoU-continuity (a jump, a long miss),
        # rightly or by giving one person's id to another; listed, not counted as a switch
        shared = sum(sum(any(t == i for _, t in c) for c in chains) > 1 for i in ids)
        rows.append(
            {
                "shot": f"{a}-{b - 1}",
                "frames": b - a,
                "faces": sum(len(f) for f in trace.raw[a:b]),
                "persons": len(chains),
                "persons_5": sum(len(c) >= 5 for c in chains),  # seen on at least 5 frames
                "track_ids": len(ids),
                "id_switches": switches,
                "ids_on_2_persons": shared,
                "ids_from_previous_shot": len(ids & previous_ids),
            }
        )
        previous_ids = ids
    expected = [c for c in cuts if c < n]
    return {
        "clip": trace.name,
        "shots": rows,
        "cuts_expected": expected,
        "cuts_detected": trace.cuts,
        "cuts_missed": [c for c in expected if c not in trace.cuts],
        "cuts_false": [c for c in trace.cuts if c not in expected],
    }


# --- paste round trip -----------------------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 arrays (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def paste_row(detector: Any, path: Path, size: int = 512, out_size: int = 512) -> dict[str, Any]:
    """Identity restorer on one photo: PSNR inside each face box, changed pixels outside the regions.

    The "restored" crop is the face aligned at ``out_size`` by the job's own affine (rescaled as
    the blend rescales it), so 512 pastes the model's input back and 1024 stands for a restorer
    with Panini-Net MFR's 1024 output that changed nothing.
    """
    import dataclasses

    from panini_video.config import BlendConfig
    from panini_video.faces.align import rescale_affine, warp_faces
    from panini_video.faces.blend import paste_faces, paste_region
    from panini_video.faces.stages import make_jobs
    from panini_video.records import Frame, FrameItem

    image = read_rgb(path)
    h, w = image.shape[:2]
    faces = detector.detect([image])[0].to_faces()
    item = FrameItem(frame=Frame(index=0, pts=None, time_base=None, image=image), faces=faces)
    jobs = list(make_jobs(item, size))
    if out_size != size:
        chw = torch.from_numpy(image).permute(2, 0, 1)
        affines = [rescale_affine(j.affine, 1.0, out_size / size) for j in jobs]
        crops = warp_faces(chw, np.asarray(affines).reshape(-1, 2, 3), out_size)
        jobs = [dataclasses.replace(j, restored=c.permute(1, 2, 0).numpy()) for j, c in zip(jobs, crops, strict=True)]
    else:
        jobs = [dataclasses.replace(j, restored=j.crop) for j in jobs]
    pasted = paste_faces(image, jobs, BlendConfig())
    inside = np.zeros((h, w), bool)
    face_psnr = []
    for f in faces:
        x0, y0, x1, y1 = paste_region(f, (w, h))
        inside[y0:y1, x0:x1] = True
        bx0, by0 = max(int(f.box[0]), 0), max(int(f.box[1]), 0)
        bx1, by1 = min(int(math.ceil(f.box[2])), w), min(int(math.ceil(f.box[3])), h)
        face_psnr.append(psnr(pasted[by0:by1, bx0:bx1], image[by0:by1, bx0:bx1]))
    changed = (pasted != image).any(axis=2)
    scales = [math.sqrt(abs(np.linalg.det(j.affine[:, :2]))) for j in jobs]  # crop px per frame px
    return {
        "photo": path.name,
        "faces": len(faces),
        "crop": size,
        "restored": out_size,
        "crop_scale_min": min(scales) if scales else None,
        "psnr_min_db": min(face_psnr) if face_psnr else None,
        "psnr_mean_db": _mean(face_psnr),
        "changed_inside": int(changed[inside].sum()),
        "changed_outside": int(changed[~inside].sum()),
    }


# --- agreement with facexlib ----------------------------------------------------------------------


def agreement_section(detector: Any, dumps: Sequence[Path], testdata: Path) -> dict[str, Any]:
    """Our detections against facexlib dumps (``tools/compare_facexlib.py dump``), run by run.

    Faces are paired one to one, greedily by IoU (at least 0.5); the rest count as unmatched.
    """
    rows, versions = [], set()
    for dump in dumps:
        data = json.loads(Path(dump).read_text(encoding="utf-8"))
        versions.add(str(data["meta"].get("torch")))
        threshold = float(data["meta"]["threshold"])
        for run_name, photos in data["runs"].items():
            row = _agreement_row(detector, photos, run_name, threshold, testdata)
            rows.append({"dump": Path(dump).name, "threshold": threshold, **row})
    return {"dumps": [str(d) for d in dumps], "facexlib_torch": sorted(versions), "rows": rows}


def _agreement_row(
    detector: Any, photos: dict[str, Any], run_name: str, threshold: float, testdata: Path
) -> dict[str, Any]:
    from panini_video.faces.tracker import greedy_assign, iou_matrix

    box_d, lm_d, sc_d, unmatched, faces = [], [], [], 0, 0
    for name, ref in photos.items():
        path = Path(ref["path"])
        image = read_rgb(path if path.is_file() else testdata / "photos" / name)
        det_size = max(image.shape[:2]) if run_name == "origin" else int(run_name.removeprefix("det"))
        ours = detector.with_settings(det_size=det_size, threshold=threshold).detect([image])[0]
        boxes = np.asarray(ref["boxes"], np.float64).reshape(-1, 4)
        marks = np.asarray(ref["landmarks"], np.float64).reshape(-1, 5, 2)
        pairs = greedy_assign(iou_matrix(ours.boxes, boxes), 0.5)
        unmatched += len(ours) + len(boxes) - 2 * len(pairs)
        faces += len(boxes)
        for i, j in pairs:
            box_d.append(np.abs(ours.boxes[i] - boxes[j]))
            lm_d.append(np.abs(ours.landmarks[i] - marks[j]).ravel())
            sc_d.append(abs(float(ours.scores[i]) - float(ref["scores"][j])))
    b = np.concatenate(box_d) if box_d else np.zeros(1)
    lm = np.concatenate(lm_d) if lm_d else np.zeros(1)
    return {
        "run": run_name,
        "images": len(photos),
        "faces": faces,
        "unmatched": unmatched,
        "box_max_px": float(b.max()),
        "box_mean_px": float(b.mean()),
        "landmark_max_px": float(lm.max()),
        "landmark_mean_px": float(lm.mean()),
        "score_max": max(sc_d, default=0.0),
        "score_mean": _mean(sc_d) or 0.0,
    }
