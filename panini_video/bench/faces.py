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
- paste: each photo's faces aligned to 512 crops and "restored" by an identity: the 512 crop
  itself (512->512), or the face aligned at 1024 by the same affine, as from a restorer with
  MFR's 1024 output that changed nothing (512->1024); pasted back with the default blend. PSNR
  inside each face box, and the count of changed pixels outside the faces' paste regions (must
  be 0). Two resamplings (align, paste; bicubic) cost the most where the crop is near the frame's scale.
- agreement (with ``--facexlib JSON``, repeatable): our RetinaFace against facexlib dumps
  written by ``tools/compare_facexlib.py dump`` on the same weights.

Only the speed figures depend on the machine and its load; on a small shared machine
``--threads 1`` avoids oversubscription (2 threads on 2 busy cores ran 5x slower here).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from panini_video.bench.face_metrics import (
    CHAIN_IOU,
    ClipTrace,
    agreement_section,
    count_errors,
    id_section,
    jitter_row,
    paste_row,
    read_rgb,
    trace_clip,
)
from panini_video.bench.report import write_json
from panini_video.errors import InputNotFoundError, UsageError

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
        "ids": lambda: id_section(trace(HAMILTON), HAMILTON_CUTS),
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
        write_json(args.json, report, default=_jsonable)
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


# --- recall ---------------------------------------------------------------------------------------


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
                frames.append(frame.rgb())
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
