"""``panini-video bench faces``: detector recall, landmark jitter, id switches, speed, paste round trip.

Everything runs on the shared test data (``--testdata``; its MANIFEST.md gives the face counts):

- recall: the detector (default settings: threshold 0.8, det_size 640) on every photo and on
  every frame of every clip. Each frame has an expected count range [lo, hi] (the manifest's
  visual count); detecting n faces counts ``max(lo - n, 0)`` misses and ``max(n - hi, 0)``
  false positives. Recall = 1 - misses / sum(lo). Counts only: the data has no ground-truth boxes.
- jitter: the talking-head clips through the detector, tracker and smoother, once raw
  (``--smooth 0``) and once smoothed (default strength). Jitter is the landmark acceleration
  |p[t+1] - 2 p[t] + p[t-1]| in pixels, averaged over the 5 points and every frame of a track
  that has both neighbours in the same track.
- ids: the Hamilton clip through the same chain; each shot (cuts from the manifest) is checked
  for id switches against IoU-continuity: a detection continues a "person" when its box has
  IoU >= 0.3 with that person's last box seen at most ``max_misses + 1`` frames before (greedy,
  best IoU first); every change of track id along a person is a switch.
- speed: ``measure_detector_speed`` per backbone, det_size and batch (ResNet-50 with random
  weights: speed only), in ``--repeat`` rounds over all cases; the best round is reported (the
  least disturbed on a shared machine) beside the worst, so noise shows.
- paste: each photo's faces aligned to 512 crops, "restored" by an identity (the crop itself),
  pasted back; PSNR inside each face box, and the count of changed pixels outside the faces'
  paste regions (must be 0).
- agreement (with ``--facexlib JSON``): our RetinaFace against a facexlib dump written by
  ``tools/compare_facexlib.py dump`` on the same weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from panini_video.errors import InputNotFoundError, UsageError
from panini_video.records import Face

log = logging.getLogger(__name__)

SECTIONS = ("recall", "jitter", "ids", "speed", "paste", "agreement")
DEFAULT_SECTIONS = SECTIONS[:5]  # agreement needs a facexlib dump (--facexlib)
WEIGHTS_NAME = "weights/retinaface_mobilenet0.25_Final.pth"

# Expected faces per photo: the manifest's visual counts.
PHOTOS = {
    "photos/single_portrait.jpg": 1,
    "photos/single_lowres_240p.jpg": 1,
    "photos/single_lq_old_crop.png": 1,
    "photos/two_people.jpg": 2,
    "photos/group3_with_child.jpg": 3,
    "photos/old_family_lq_3faces.png": 3,
    "photos/no_face_beach.jpg": 0,
}
# Expected faces per frame of each clip, as (first frame, end frame, lo, hi): the manifest's visual
# counts (Hamilton per shot; the crowd clip's "about 5-6 clearly visible faces per frame").
TALKING = (
    "videos/talking_vfr_700.mp4",
    "videos/talking_hdtf_mpeg4_512.mp4",
    "videos/talking_portrait_720x1280_noaudio.mp4",
    "videos/talking_720p_silent_audio.mp4",
    "videos/lowq_real_388x512_noaudio.mp4",
)
HAMILTON = "videos/hamilton_short.mp4"
HAMILTON_CUTS = (20, 82, 211)  # first frames of shots 2-4 (manifest)
CROWD = "videos/crowd_multiface_1080p.mp4"
CLIPS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    **{name: ((0, 1 << 30, 1, 1),) for name in TALKING},
    HAMILTON: ((0, 20, 2, 2), (20, 82, 1, 3), (82, 211, 1, 1), (211, 1 << 30, 4, 6)),
    CROWD: ((0, 1 << 30, 5, 6),),
}
CHAIN_IOU = 0.3  # IoU continuing a "person" in the id-switch count


def default_testdata() -> Path:
    """``$PANINI_TESTDATA``, else ``../shared/testdata`` beside the repository."""
    env = os.environ.get("PANINI_TESTDATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "testdata"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--testdata", type=Path, help="shared test data folder (default: $PANINI_TESTDATA or ../shared/testdata)"
    )
    parser.add_argument(
        "--detector-weights", help="RetinaFace MobileNet weights (default: the test data's, else the cache)"
    )
    parser.add_argument("--frames", type=int, default=0, help="at most N frames of each clip (default 0: all)")
    parser.add_argument("--photos", help="comma-separated photo names to use (default: all)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument(
        "--facexlib",
        type=Path,
        action="append",
        metavar="JSON",
        help="facexlib dump (tools/compare_facexlib.py dump); repeatable; adds the agreement section",
    )
    parser.add_argument("--det-sizes", default="640,1280", help="speed: det_sizes (default 640,1280)")
    parser.add_argument("--batches", default="1,4", help="speed: batch sizes (default 1,4)")
    parser.add_argument(
        "--backbones", default="mobilenet,resnet50", help="speed: backbones (ResNet-50: random weights)"
    )
    parser.add_argument("--speed-seconds", type=float, default=1.0, help="speed: least time per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="speed: measurements per case; the best is reported")


def run(args: argparse.Namespace) -> int:
    sections = _sections(args)
    testdata = Path(args.testdata) if args.testdata else default_testdata()
    if not testdata.is_dir():
        raise InputNotFoundError(f"test data not found at {testdata}; pass --testdata DIR or set PANINI_TESTDATA")
    if args.frames < 0:
        raise UsageError("--frames must be >= 0 (0: every frame)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    weights = args.detector_weights
    if weights is None and (testdata / WEIGHTS_NAME).is_file():
        weights = str(testdata / WEIGHTS_NAME)
    from panini_video.config import DetectConfig
    from panini_video.faces.retinaface import load_detector

    detector = load_detector(DetectConfig(weights=weights), device)
    photos = _photos(testdata, args.photos)
    limit = args.frames or None
    report: dict[str, Any] = {
        "bench": "faces",
        "testdata": str(testdata),
        "weights": weights or "cache",
        "device": device,
        "frames_limit": limit,
        "detect": {"det_size": detector.settings.det_size, "threshold": detector.settings.threshold},
        "machine": machine(device),
    }
    traces: dict[str, ClipTrace] = {}

    def trace(name: str) -> ClipTrace:
        if name not in traces:
            traces[name] = trace_clip(detector, testdata / name, limit)
        return traces[name]

    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "recall": lambda: recall_section(detector, testdata, photos, trace, limit),
        "jitter": lambda: {"clips": [jitter_row(name, trace(name)) for name in TALKING]},
        "ids": lambda: id_section(trace(HAMILTON)),
        "speed": lambda: speed_section(detector, testdata, args),
        "paste": lambda: {
            "photos": [paste_row(detector, testdata / p, 512, out) for out in (512, 1024) for p in photos]
        },
        "agreement": lambda: agreement_section(detector, args.facexlib, testdata),
    }
    for name in sections:
        start = time.perf_counter()
        report[name] = steps[name]()
        report[name]["seconds"] = round(time.perf_counter() - start, 2)
        if not args.quiet:
            print(format_section(name, report[name], report), flush=True)
    report["machine"]["load_end"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    return 0


def _sections(args: argparse.Namespace) -> list[str]:
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in SECTIONS]
        if unknown:
            raise UsageError(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    else:
        wanted = list(DEFAULT_SECTIONS) + (["agreement"] if args.facexlib else [])
    if "agreement" in wanted and not args.facexlib:
        raise UsageError("the agreement section needs --facexlib JSON (from tools/compare_facexlib.py dump)")
    return wanted


def _photos(testdata: Path, names: str | None) -> list[str]:
    chosen = list(PHOTOS)
    if names:
        chosen = [n if n.startswith("photos/") else f"photos/{n}" for n in names.split(",") if n]
        unknown = [n for n in chosen if n not in PHOTOS]
        if unknown:
            raise UsageError(f"unknown photo(s) {', '.join(unknown)}; known: {', '.join(PHOTOS)}")
    return [n for n in chosen if (testdata / n).is_file()]


def machine(device: str) -> dict[str, Any]:
    """What the figures were measured on, with the load when the run started (shared machines)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_start": os.getloadavg()[0],
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


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
        for frame, det in zip(frames, detector.detect([f.image for f in frames]), strict=True):
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


# --- recall ---------------------------------------------------------------------------------------


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


def expected_counts(name: str, frames: int) -> list[tuple[int, int]]:
    """The [lo, hi] face count of each of a clip's first ``frames`` frames."""
    out = []
    for i in range(frames):
        lo, hi = next((lo, hi) for a, b, lo, hi in CLIPS[name] if a <= i < b)
        out.append((lo, hi))
    return out


def recall_section(
    detector: Any, testdata: Path, photos: Sequence[str], trace: Callable[[str], ClipTrace], limit: int | None = None
) -> dict[str, Any]:
    """Photos and clips at the detector's det_size; the 1080p crowd clip also at 1280 (its faces are small)."""
    rows = []
    size = detector.settings.det_size
    for name in photos:
        n = len(detector.detect([read_rgb(testdata / name)])[0])
        rows.append({"input": name, "det_size": size, **count_errors([n], [(PHOTOS[name], PHOTOS[name])])})
    for name in CLIPS:
        if (testdata / name).is_file():
            t = trace(name)
            rows.append(
                {"input": name, "det_size": size, **count_errors(t.counts, expected_counts(name, len(t.counts)))}
            )
    if (testdata / CROWD).is_file() and size < 1280:
        t = trace_clip(detector.with_settings(det_size=1280), testdata / CROWD, limit)
        rows.append({"input": CROWD, "det_size": 1280, **count_errors(t.counts, expected_counts(CROWD, len(t.counts)))})
    return {"rows": rows}


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


def id_section(trace: ClipTrace, cuts: Sequence[int] = HAMILTON_CUTS) -> dict[str, Any]:
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


# --- speed ----------------------------------------------------------------------------------------


def speed_section(detector: Any, testdata: Path, args: argparse.Namespace) -> dict[str, Any]:
    from panini_video.bench.detector import DetectorSpeed, measure_detector_speed
    from panini_video.faces.retinaface import RetinaFace
    from panini_video.faces.retinaface_net import RetinaFaceNet
    from panini_video.io import VideoReader

    frames = []  # 1920x1080 frames, so det_size 1280 really is 1280
    with VideoReader(testdata / CROWD) as reader:
        for frame in reader:
            if frame.index % 10 == 0:
                frames.append(frame.image)
            if len(frames) == 4:
                break
    detectors = {}
    for backbone in _names(args.backbones):
        if backbone == "mobilenet":
            detectors[backbone] = detector
        elif backbone == "resnet50":
            torch.manual_seed(0)
            detectors[backbone] = RetinaFace(RetinaFaceNet("resnet50"), detector.settings, detector.device)
        else:
            raise UsageError(f"unknown backbone {backbone!r}; known: mobilenet, resnet50")
    if args.repeat < 1:
        raise UsageError("--repeat must be at least 1")
    cases = [
        (name, d, b)
        for name in detectors
        for d in _ints(args.det_sizes, "--det-sizes")
        for b in _ints(args.batches, "--batches")
    ]
    runs: dict[tuple[str, int, int], list[DetectorSpeed]] = {}
    for _ in range(args.repeat):  # rounds over every case: a slow spell of a shared machine hits them all
        for name, d, b in cases:
            r = measure_detector_speed(
                detectors[name], frames, det_size=d, batch_size=b, min_seconds=args.speed_seconds, min_batches=2
            )
            runs.setdefault((name, d, b), []).append(r)
    rows = []
    for (name, d, _), measured in runs.items():
        best = max(measured, key=lambda r: r.fps)
        faces = len(detectors[name].with_settings(det_size=d).detect(frames[:1])[0])  # NMS work grows with it
        rows.append(
            {
                **best.to_dict(),
                "weights": "file" if name == "mobilenet" else "random",
                "faces": faces,
                "fps_all": [r.fps for r in measured],
                "fps_min": min(r.fps for r in measured),
            }
        )
    return {"rows": rows, "frames_from": CROWD, "repeat": args.repeat}


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(s) for s in _names(text)]
    except ValueError as exc:
        raise UsageError(f"{flag} takes comma-separated whole numbers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise UsageError(f"{flag} needs positive numbers, got {text!r}")
    return values


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


# --- tables ---------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else format(value, spec or ".3f")
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned text table: first column left, the others right."""
    cells = [list(headers)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) for r in cells
    )


# Per section: the list of rows in its figures, and its columns as (header, key, format).
COLUMNS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "recall": (
        "rows",
        [("input", "input", ""), ("det_size", "det_size", ""), ("frames", "frames", ""),
         ("expected", "expected", ""), ("detected", "detected", ""),
         ("misses", "misses", ""), ("FP", "false_positives", ""), ("recall", "recall", ".3f"),
         ("FP/frame", "fp_per_frame", ".3f"), ("in range", "frames_in_range", ".3f")],
    ),
    "jitter": (
        "clips",
        [("clip", "clip", ""), ("frames", "frames", ""), ("samples", "samples", ""),
         ("face h", "face_height_px", ".0f"), ("raw px", "raw_px", ".3f"), ("smooth px", "smoothed_px", ".3f"),
         ("ratio", "ratio", ".2f"),
         ("offset px", "offset_px", ".2f"), ("tracks", "tracks", "")],
    ),
    "ids": (
        "shots",
        [("shot", "shot", ""), ("frames", "frames", ""), ("faces", "faces", ""), ("persons", "persons", ""),
         ("persons>=5f", "persons_5", ""), ("track ids", "track_ids", ""), ("id switches", "id_switches", ""),
         ("ids on 2+ persons", "ids_on_2_persons", ""), ("ids carried", "ids_from_previous_shot", "")],
    ),
    "speed": (
        "rows",
        [("backbone", "backbone", ""), ("weights", "weights", ""), ("det_size", "det_size", ""),
         ("batch", "batch_size", ""), ("input", "input", ""), ("faces", "faces", ""),
         ("fps best", "fps", ".2f"), ("fps worst", "fps_min", ".2f"), ("ms/frame", "ms_per_frame", ".1f")],
    ),
    "paste": (
        "photos",
        [("photo", "photo", ""), ("faces", "faces", ""), ("crop->restored", "sizes", ""),
         ("crop scale", "crop_scale_min", ".2f"), ("PSNR min dB", "psnr_min_db", ".2f"),
         ("PSNR mean dB", "psnr_mean_db", ".2f"), ("changed in regions", "changed_inside", ""),
         ("changed outside", "changed_outside", "")],
    ),
    "agreement": (
        "rows",
        [("dump", "dump", ""), ("thr", "threshold", ".2f"), ("run", "run", ""), ("images", "images", ""),
         ("faces", "faces", ""), ("unmatched", "unmatched", ""),
         ("box max px", "box_max_px", ".2e"), ("box mean px", "box_mean_px", ".2e"),
         ("lmk max px", "landmark_max_px", ".2e"), ("lmk mean px", "landmark_mean_px", ".2e"),
         ("score max", "score_max", ".2e"), ("score mean", "score_mean", ".2e")],
    ),
}  # fmt: skip


def section_title(name: str, data: dict[str, Any], report: dict[str, Any]) -> str:
    """The line above a section's table: what was measured, how."""
    d, m = report["detect"], report["machine"]
    if name == "recall":
        return (
            "Detection recall / false positives: faces per frame against the manifest's visual counts "
            f"(det_size {d['det_size']}, threshold {d['threshold']}; clip frames: {report['frames_limit'] or 'all'})"
        )
    if name == "jitter":
        return (
            "Landmark jitter, raw (smooth 0) vs smoothed (default strength): "
            "mean |p[t+1]-2p[t]+p[t-1]| px over 5 points x track frames"
        )
    if name == "ids":
        return (
            f"Id switches on {data['clip']} per shot (persons: IoU >= {CHAIN_IOU} continuity); scene cuts expected "
            f"{data['cuts_expected']}, detected {data['cuts_detected']}"
        )
    if name == "speed":
        where = m.get("gpu") or f"CPU, {m['torch_threads']} torch threads of {m['cpu_count']} cores"
        return (
            f"Detector speed, whole detect call on 1920x1080 frames of {data['frames_from']} ({where}); "
            f"best and worst of {data['repeat']} rounds, ms/frame of the best"
        )
    if name == "paste":
        return (
            "Paste round trip, identity restorer (the face aligned at the restored size, default blend): PSNR in the "
            "face boxes, pixels changed inside/outside the paste regions; crop scale: 512-crop px per frame px"
        )
    return (
        f"Agreement with facexlib (torch {', '.join(data['facexlib_torch'])}), same weights: |ours - facexlib| over "
        "faces paired by IoU; origin = each image at its own size, detN = shrunk to longest side N"
    )


def format_section(name: str, data: dict[str, Any], report: dict[str, Any]) -> str:
    """One section's title line and table."""
    rows_key, columns = COLUMNS[name]
    rows = [[_fmt(_cell(r, key), spec) for _, key, spec in columns] for r in data[rows_key]]
    body = table([h for h, _, _ in columns], rows)
    return f"\n{section_title(name, data, report)} [{data['seconds']:.1f} s]\n{body}"


def _cell(row: dict[str, Any], key: str) -> Any:
    if key == "input" and "input_size" in row:  # speed rows: the network's input size
        return f"{row['input_size'][0]}x{row['input_size'][1]}"
    if key == "sizes":
        return f"{row['crop']}->{row['restored']}"
    return row.get(key)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
