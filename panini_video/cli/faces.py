"""``panini-video faces IN... [--json PATH|-]``: what the pipeline sees, for photos and videos.

Each input goes through the same face stages as ``panini-video IN OUT`` (``DetectStage`` then
``TrackStage``: batched RetinaFace every ``--detect-every`` frames, scene cuts, tracker, One-Euro
landmark smoothing, selection), with the same preset and flags; nothing is restored.

Photos: an input whose first bytes OpenCV recognises as a still image (JPEG, PNG, BMP, WebP,
TIFF, ...; the name does not matter) is read by OpenCV as a one-frame video at time 0.0.
``cv2.IMREAD_COLOR`` applies the EXIF orientation, so boxes are in the upright picture's pixels.
GIF goes to the video reader: it may be animated. Anything else is read as a video.

Failures: every input is checked to exist before the detector loads; if any input then fails
(not media, corrupt), the whole command fails with that input's error and exit code, and no
JSON is written: a result that silently lacks an input is worse than none. (Without --json, the
summaries of the inputs done before the failure have been printed; the exit code still says it failed.)
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from panini_video import outputs
from panini_video.cli.run import (
    DEFAULT_PIPELINE,
    add_face_options,
    add_overwrite_options,
    face_overrides,
    overwrite_mode,
)
from panini_video.config import RunConfig, load_config
from panini_video.errors import CorruptInputError, InputError, InputNotFoundError
from panini_video.records import Face, Frame, FrameItem

log = logging.getLogger(__name__)

Kind = Literal["photo", "video"]

EPILOG = """The JSON (--json) is one object keyed by each input exactly as given:
  {"IN": {"kind": "video", "width": W, "height": H,
          "frames": [{"index": 0, "time": 0.0,
                      "faces": [{"track": 1, "box": [x0, y0, x1, y1], "score": 0.99,
                                 "landmarks": [[x, y], ... 5 points, after smoothing]}]}]}}
Every frame is listed, with "faces": [] when it has none. Pixels in the frame's own
coordinates, 2 decimals; scores and times (seconds) 4 decimals. A photo is one frame at time 0.
If any input fails, nothing is written.
exit codes: 0 done, 2 bad options, 3 bad input, 4 output not writable, 6 detector weights
missing, 130 interrupted."""


@dataclass(frozen=True)
class FrameFaces:
    """The faces the pipeline kept in one frame (after tracking, smoothing and selection)."""

    index: int
    time: float  # seconds
    faces: tuple[Face, ...]


@dataclass(frozen=True)
class TrackSummary:
    """One track over an input: when it is seen, in how many frames, how tall (median box height)."""

    track: int
    first: float  # seconds
    last: float
    frames: int
    median_height: float  # pixels


@dataclass(frozen=True)
class InputFaces:
    """Every frame of one input with its faces."""

    path: str  # as given on the command line
    kind: Kind
    width: int
    height: int
    frames: tuple[FrameFaces, ...]

    def tracks(self) -> list[TrackSummary]:
        """The input's tracks in order of first appearance."""
        seen: dict[int, list[tuple[float, float]]] = {}
        for frame in self.frames:
            for face in frame.faces:
                seen.setdefault(face.track, []).append((frame.time, face.height))
        tracks = [
            TrackSummary(
                track=track,
                first=min(t for t, _ in hits),
                last=max(t for t, _ in hits),
                frames=len(hits),
                median_height=float(statistics.median(h for _, h in hits)),
            )
            for track, hits in seen.items()
        ]
        return sorted(tracks, key=lambda t: (t.first, t.track))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "frames": [
                {"index": f.index, "time": round(f.time, 4), "faces": [face_to_dict(face) for face in f.faces]}
                for f in self.frames
            ],
        }


def face_to_dict(face: Face) -> dict[str, Any]:
    """A face as JSON: pixels to 2 decimals, score to 4."""
    return {
        "track": int(face.track),
        "box": [round(float(v), 2) for v in face.box],
        "score": round(float(face.score), 4),
        "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in np.asarray(face.landmarks)],
    }


def is_photo(path: Path) -> bool:
    """Whether OpenCV recognises the file's signature as a still image (GIF excepted: it may move)."""
    import cv2

    if path.suffix.lower() == ".gif":
        return False
    try:
        return bool(cv2.haveImageReader(str(path)))
    except cv2.error:
        return False


def read_photo(path: Path) -> Frame:
    """A photo as frame 0 at time 0.0, RGB, turned upright by its EXIF orientation."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: that one fails silently on odd paths
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None  # IMREAD_COLOR applies EXIF orientation
    if bgr is None:
        raise CorruptInputError(f"{path}: looks like an image but OpenCV cannot decode it (truncated or corrupt?)")
    rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return Frame(index=0, pts=0, time_base=Fraction(1, 1), image=rgb)


class FaceFinder:
    """Runs the detect and track stages of a ``RunConfig`` over one input after another.

    The detector is loaded once; each input gets fresh stages (its own tracks, ids from 1).
    """

    def __init__(self, config: RunConfig, detector: Any) -> None:
        self.config = config
        self.detector = detector

    def find(self, path: str, progress: Any = None) -> InputFaces:
        """Every frame of ``path`` (a photo or a video) with the faces the pipeline keeps."""
        p = Path(path)
        if is_photo(p):
            frame = read_photo(p)
            width, height = frame.size
            return InputFaces(path, "photo", width, height, tuple(self._run([frame])))
        from panini_video.io import VideoReader

        with VideoReader(p, threads=self.config.io.decode_threads) as reader:
            if progress is not None:
                progress.start(reader.info)
            try:
                frames = self._run(_counted(reader, progress), rotation=reader.info.rotation)
            finally:
                if progress is not None:
                    progress.close()
            width, height = reader.info.width, reader.info.height
        return InputFaces(path, "video", width, height, tuple(frames))

    def _run(self, frames: Iterable[Frame], rotation: int = 0) -> list[FrameFaces]:
        """Faces per frame, in the stored frame's pixels (a rotated video is detected upright)."""
        from panini_video.faces.stages import DetectStage, TrackStage, frame_time

        c = self.config
        detect = DetectStage(c.detect, detector=self.detector, rotation=rotation)
        track = TrackStage(c.track, c.smooth, c.select, c.detect.detect_every)
        out: list[FrameFaces] = []

        def collect(items: Iterable[FrameItem]) -> None:
            for item in items:
                for done in track.process(item):
                    out.append(FrameFaces(done.index, frame_time(done), tuple(done.faces)))

        for stage in (detect, track):
            stage.start()
        try:
            for frame in frames:
                collect(detect.process(FrameItem(frame)))
            collect(detect.flush())
            for done in track.flush():
                out.append(FrameFaces(done.index, frame_time(done), tuple(done.faces)))
        finally:
            for stage in (detect, track):
                stage.close()
        return out


def _counted(frames: Iterable[Frame], progress: Any) -> Iterator[Frame]:
    for n, frame in enumerate(frames, 1):
        yield frame
        if progress is not None:
            progress.update(n)


def summary_lines(result: InputFaces) -> list[str]:
    """The readable summary of one input: a header line, then one line per track (a photo: per face)."""
    size = f"{result.width}x{result.height}"
    if result.kind == "photo":
        faces = result.frames[0].faces if result.frames else ()
        lines = [f"{result.path}: photo, {size}, {len(faces)} face{'' if len(faces) == 1 else 's'}"]
        for face in sorted(faces, key=lambda f: f.track):
            x0, y0, x1, y1 = (round(float(v)) for v in face.box)
            lines.append(
                f"  track {face.track}: box ({x0}, {y0})-({x1}, {y1}), height {face.height:.0f} px,"
                f" score {face.score:.3f}"
            )
        return lines
    times = [f.time for f in result.frames]
    span = f", {min(times):.3f}-{max(times):.3f} s" if times else ""
    tracks = result.tracks()
    count = f"{len(tracks)} track{'' if len(tracks) == 1 else 's'}"
    lines = [f"{result.path}: video, {size}, {len(result.frames)} frames{span}, {count}"]
    for t in tracks:
        seen = f"{t.frames} frame{'' if t.frames == 1 else 's'}"
        lines.append(f"  track {t.track}: {t.first:.3f}-{t.last:.3f} s, {seen}, median height {t.median_height:.0f} px")
    if not tracks:
        lines.append("  no faces")
    return lines


def write_json(target: str, data: dict[str, Any]) -> None:
    """The JSON to ``target`` (``-``: stdout); a file is written whole or not at all (temp + rename)."""
    text = json.dumps(data, separators=(",", ":")) + "\n"
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    outputs.write_text(target, text, option="--json")


def check_inputs(inputs: list[str], json_target: str | None, overwrite: outputs.Overwrite = "refuse") -> bool:
    """Fail before any work: a missing input, a folder, or a JSON path that cannot be written.

    False when the JSON exists and ``overwrite`` is ``skip`` (nothing to do).
    """
    for path in inputs:
        p = Path(path)
        if not p.exists():
            raise InputNotFoundError(f"{p}: no such file")
        if p.is_dir():
            raise InputError(f"{p}: is a folder, not a photo or video file")
    if json_target is not None:
        targets = [outputs.Output(json_target, "--json", stdout_ok=True)]
        return outputs.check_outputs(targets, inputs, overwrite)
    return True


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "What the pipeline sees: the faces found, tracked and smoothed in photos and videos,\n"
            "with the same preset and flags as the main command; nothing is restored. Prints a\n"
            "summary per input (its tracks; a photo: its faces), or every frame's faces as JSON."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="photo (jpg, png, bmp, webp, ...) or video file")
    parser.add_argument(
        "--json", metavar="PATH|-", help="write every frame's faces as JSON to PATH (-: stdout) instead of a summary"
    )
    parser.add_argument(
        "--pipeline", metavar="NAME|FILE", default=DEFAULT_PIPELINE, help="preset or TOML file (default: %(default)s)"
    )
    parser.add_argument("--device", help="detector device: cpu, cuda, cuda:1, ... (default: cuda when available)")
    add_overwrite_options(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress bar")
    add_face_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from panini_video.cli.progress import ProgressBar  # tqdm only when the command runs
    from panini_video.faces.retinaface import load_detector
    from panini_video.restore.executor import resolve_device

    inputs = list(dict.fromkeys(args.inputs))  # one key per input in the JSON: a repeat is read once
    if not check_inputs(inputs, args.json, overwrite_mode(args)):
        log.warning("%s exists; skipped (-n)", args.json)
        return 0
    if args.json not in (None, "-"):
        outputs.remove_stale_temps([Path(args.json).parent])
    overrides: dict[str, Any] = face_overrides(args)
    overrides["detect"]["device"] = args.device
    config = load_config(args.pipeline, overrides)
    device = resolve_device(config.detect.device or config.restore.device)
    detector = load_detector(config.detect, device)
    finder = FaceFinder(config, detector)
    results: dict[str, InputFaces] = {}
    for path in inputs:
        progress = ProgressBar(description=Path(path).name) if ProgressBar.wanted(args.quiet) else None
        result = finder.find(path, progress)
        log.info("%s: %d frames, %d tracks", path, len(result.frames), len(result.tracks()))
        if args.json is None:  # the summary as each input is done: a long batch shows its progress
            print("\n".join(summary_lines(result)), flush=True)
        results[path] = result
    if args.json is not None:
        write_json(args.json, {path: r.to_dict() for path, r in results.items()})
    return 0
