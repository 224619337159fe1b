"""The face stages of the graph: detect, track, annotate, align, blend.

Thin: each stage holds its state and calls the module that does the work. Items are
``FrameItem`` records; every stage passes them on in the order it got them.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from panini_video.config import BlendConfig, DetectConfig, SelectConfig, SmoothConfig, TrackConfig
from panini_video.errors import UsageError
from panini_video.faces.align import alignment_matrix, warp_faces
from panini_video.faces.annotate import draw_faces
from panini_video.faces.blend import paste_faces
from panini_video.faces.detector import scaled_size
from panini_video.faces.scenecut import SCENE_CUT_SIDE, SceneCutDetector
from panini_video.faces.select import select_faces
from panini_video.faces.smoothing import LandmarkSmoother
from panini_video.faces.tracker import FaceTracker
from panini_video.records import Face, FaceJob, Frame, FrameItem
from panini_video.runtime.stage import Stage

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0  # frame time when a frame carries no timestamp


def is_detection_frame(index: int, every: int) -> bool:
    """Whether frame ``index`` goes through the detector when detecting every ``every`` frames."""
    return every <= 1 or index % every == 0


def frame_time(item: FrameItem) -> float:
    """The frame's time in seconds (from its index at 30 fps when it has no timestamp)."""
    t = item.frame.time
    return float(t) if t is not None else item.index / DEFAULT_FPS


def load_face_detector(config: DetectConfig, device: str | torch.device = "cpu") -> Any:
    """The RetinaFace of ``config`` (imported only when a stage needs it: the network is heavy)."""
    from panini_video.faces.retinaface import load_detector

    return load_detector(config, device)


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """The frame as it is displayed: turned ``rotation`` degrees counterclockwise (a multiple of 90)."""
    k = (rotation // 90) % 4
    return image if k == 0 else np.ascontiguousarray(np.rot90(image, k))


def points_to_upright(points: np.ndarray, rotation: int, stored_size: tuple[int, int]) -> np.ndarray:
    """(..., 2) x, y in the stored frame (width, height) -> the same points in the upright frame.

    Pixel-centre coordinates, as everywhere in the face modules (pixel i's centre is at i): one
    counterclockwise quarter turn maps a point (x, y) of a frame W wide to (y, W - 1 - x).
    """
    w, h = stored_size
    pts = np.asarray(points, np.float32).copy()
    for i in range((rotation // 90) % 4):
        width = w if i % 2 == 0 else h
        x, y = pts[..., 0].copy(), pts[..., 1].copy()
        pts[..., 0], pts[..., 1] = y, width - 1 - x
    return pts


def points_to_stored(points: np.ndarray, rotation: int, stored_size: tuple[int, int]) -> np.ndarray:
    """(..., 2) x, y in the upright frame -> the same points in the stored frame (width, height).

    The remaining quarter turns of the upright frame bring it back to the stored one.
    """
    w, h = stored_size
    shown = (w, h) if (rotation // 90) % 2 == 0 else (h, w)
    return points_to_upright(points, -rotation, shown)


def _turned_boxes(boxes: np.ndarray, turn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(N, 4) boxes -> the bounds of their corners after ``turn`` (a quarter-turn point map)."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    corners = turn(np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1))
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(np.float32)


def face_to_upright(face: Face, rotation: int, stored_size: tuple[int, int]) -> Face:
    """``face`` in the upright frame's pixels."""
    if (rotation // 90) % 4 == 0:
        return face
    turn = functools.partial(points_to_upright, rotation=rotation, stored_size=stored_size)
    return dataclasses.replace(face, box=_turned_boxes(face.box, turn)[0], landmarks=turn(face.landmarks))


def detection_to_stored(det: Any, rotation: int, stored_size: tuple[int, int]) -> Any:
    """A ``Detection`` made on the upright frame, in the stored frame's pixels."""
    if (rotation // 90) % 4 == 0 or len(det) == 0:
        return det
    turn = functools.partial(points_to_stored, rotation=rotation, stored_size=stored_size)
    return dataclasses.replace(det, boxes=_turned_boxes(det.boxes, turn), landmarks=turn(det.landmarks))


def detector_image(frame: Frame, det_size: int) -> np.ndarray:
    """What the detector sees of ``frame``: RGB, and a picture already at the detector's size.

    A ``Picture`` is scaled and converted in one swscale call (area averaging, as the detector
    would scale); an RGB frame goes as it is (the detector scales it itself).
    """
    if frame.is_rgb:
        return frame.image  # type: ignore[return-value]
    w, h = frame.size
    sh, sw = scaled_size(h, w, det_size)
    return frame.image.thumbnail((sw, sh))  # type: ignore[union-attr]


def scale_detection(det: Any, frame_size: tuple[int, int], seen_size: tuple[int, int]) -> Any:
    """A ``Detection`` made on a ``seen_size`` copy, in the pixels of the ``frame_size`` frame.

    The same map the detector applies to its own scaled copy: coordinates times the size ratio.
    """
    if frame_size == seen_size or len(det) == 0:
        return det
    sx, sy = frame_size[0] / seen_size[0], frame_size[1] / seen_size[1]
    k = np.array([sx, sy], np.float32)
    return dataclasses.replace(
        det,
        boxes=(np.asarray(det.boxes, np.float32) * np.tile(k, 2)).astype(np.float32),
        landmarks=(np.asarray(det.landmarks, np.float32) * k).astype(np.float32),
    )


class DetectStage(Stage):
    """Runs the detector on every ``detect_every``-th frame, ``batch_frames`` frames per call.

    Frames wait here until their batch is full (frames between detections wait with them), so
    they leave in order; ``flush`` runs the last, partial batch. Frames not detected leave with
    no faces: the track stage carries the tracks over them.

    detector: anything with ``detect(frames) -> [Detection]``; None loads RetinaFace from
    ``config`` in ``start`` (in the stage's own thread). rotation: the video's display rotation
    (``VideoInfo.rotation``, counterclockwise degrees): frames are detected as they are shown
    (a phone's portrait video is stored sideways, where the detector sees faces turned and
    labels their landmarks for that view), and the faces come back in the stored frame's
    pixels, where everything after works.
    """

    name = "detect"

    def __init__(
        self, config: DetectConfig, detector: Any = None, device: str | None = None, rotation: int = 0
    ) -> None:
        if rotation % 90:
            raise UsageError(f"display rotation {rotation} is not a multiple of 90 degrees")
        self.config = config
        self.detector = detector
        self.device = device or config.device or "cpu"
        self.rotation = rotation % 360
        self._held: list[FrameItem] = []
        self._pending = 0  # frames in _held waiting for the detector

    def start(self) -> None:
        if self.detector is None:
            self.detector = load_face_detector(self.config, self.device)

    def process(self, item: FrameItem) -> Iterable[FrameItem]:
        self._held.append(item)
        if is_detection_frame(item.index, self.config.detect_every):
            self._pending += 1
        if self._pending >= max(1, self.config.batch_frames):
            return self._run()
        if self._pending == 0:
            return self._release()
        return ()

    def flush(self) -> Iterable[FrameItem]:
        return self._run()

    def _release(self) -> list[FrameItem]:
        out, self._held = self._held, []
        return out

    def _run(self) -> list[FrameItem]:
        if self.detector is None:
            self.start()
        wanted = [i for i, it in enumerate(self._held) if is_detection_frame(it.index, self.config.detect_every)]
        if wanted:
            images = [detector_image(self._held[i].frame, self.config.det_size) for i in wanted]
            results = self.detector.detect([upright(im, self.rotation) for im in images])
            for i, det, image in zip(wanted, results, images, strict=True):
                det = detection_to_stored(det, self.rotation, (image.shape[1], image.shape[0]))
                det = scale_detection(det, self._held[i].frame.size, (image.shape[1], image.shape[0]))
                self._held[i] = dataclasses.replace(self._held[i], faces=tuple(det.to_faces()))
        self._pending = 0
        return self._release()


class FaceTrackerPipeline:
    """Scene cuts, tracking, smoothing and selection for one stream, frame by frame."""

    def __init__(
        self,
        track: TrackConfig,
        smooth: SmoothConfig,
        select: SelectConfig,
        detect_every: int = 1,
    ) -> None:
        self.cuts = SceneCutDetector(track.scene_cut_threshold)
        self.tracker = FaceTracker(track)
        self.smoother = LandmarkSmoother(smooth)
        self.select = select
        self.detect_every = detect_every
        self.cut_frames: list[int] = []  # frames a scene cut was found at
        self.frames_with_faces = 0
        self.faces = 0
        self.tracks: set[int] = set()
        self._epoch = 0
        self.reconnect_frames: list[int] = []  # frames a live source's new connection started at

    def __call__(self, item: FrameItem) -> FrameItem:
        reconnected = item.frame.epoch != self._epoch  # a live source came back: another picture
        if reconnected:
            self._epoch = item.frame.epoch
            self.cuts.reset()
            self.reconnect_frames.append(item.index)
        cut = self.cuts.update(scene_cut_image(item.frame)) or reconnected
        if cut:
            self.tracker.reset()
            self.smoother.reset()
        if is_detection_frame(item.index, self.detect_every):
            faces = self.tracker.update(item.faces)
        else:
            faces = self.tracker.carry()
        faces = select_faces(self.smoother.smooth(faces, frame_time(item)), self.select)
        if cut and not reconnected:
            self.cut_frames.append(item.index)
        self.frames_with_faces += bool(faces)
        self.faces += len(faces)
        self.tracks.update(f.track for f in faces)
        return dataclasses.replace(item, faces=faces, scene_cut=cut or item.scene_cut)


def scene_cut_image(frame: Frame) -> np.ndarray:
    """The RGB the scene-cut test reads: a picture's 64x64 thumbnail (one swscale call), or the RGB frame."""
    if frame.is_rgb:
        return frame.image  # type: ignore[return-value]
    return frame.image.thumbnail((SCENE_CUT_SIDE, SCENE_CUT_SIDE))  # type: ignore[union-attr]


class TrackStage(Stage):
    """Scene cut, tracker, smoothing and selection: sets each item's faces (with track ids)."""

    name = "track"

    def __init__(self, track: TrackConfig, smooth: SmoothConfig, select: SelectConfig, detect_every: int = 1) -> None:
        self.pipeline = FaceTrackerPipeline(track, smooth, select, detect_every)

    def process(self, item: FrameItem) -> Iterable[FrameItem]:
        return (self.pipeline(item),)

    def stats(self) -> dict[str, Any]:
        p = self.pipeline
        return {
            "faces": p.faces,
            "frames_with_faces": p.frames_with_faces,
            "tracks": len(p.tracks),
            "scene_cuts": p.cut_frames,
            **({"reconnects_at": p.reconnect_frames} if p.reconnect_frames else {}),
        }


class AnnotateStage(Stage):
    """Draws each face's box, track id and landmarks onto the frame (preview mode).

    rotation: the video's display rotation; the drawing is made on the upright frame and turned
    back, so labels read upright when the video is shown.
    """

    name = "annotate"

    def __init__(self, rotation: int = 0) -> None:
        self.rotation = rotation % 360

    def process(self, item: FrameItem) -> Iterable[FrameItem]:
        stored = item.frame.rgb()  # the preview converts whole frames
        size = (stored.shape[1], stored.shape[0])
        faces = [face_to_upright(f, self.rotation, size) for f in item.faces]
        drawn = draw_faces(upright(stored, self.rotation), faces)
        image = drawn if self.rotation == 0 else np.ascontiguousarray(np.rot90(drawn, -(self.rotation // 90)))
        return (dataclasses.replace(item, frame=dataclasses.replace(item.frame, image=image)),)


def make_jobs(
    item: FrameItem, size: int, device: str | torch.device = "cpu", as_tensor: bool = False
) -> tuple[FaceJob, ...]:
    """FaceJobs for every face of ``item``: aligned ``size`` crops, all faces in one warp.

    as_tensor: keep the crops as (3, S, S) uint8 tensors on ``device`` (for a restorer on that
    device); otherwise (S, S, 3) uint8 numpy.
    """
    if not item.faces:
        return ()
    affines = np.stack([alignment_matrix(f.landmarks, size) for f in item.faces])
    image = torch.from_numpy(np.ascontiguousarray(item.frame.rgb())).permute(2, 0, 1).to(device)
    crops = warp_faces(image, affines, size)
    jobs = []
    for face, affine, crop in zip(item.faces, affines, crops, strict=True):
        c: Any = crop if as_tensor else crop.permute(1, 2, 0).cpu().numpy()
        jobs.append(FaceJob(frame_index=item.index, face=face, affine=affine, crop=c))
    return tuple(jobs)


class AlignStage(Stage):
    """Makes the aligned crops (``FaceJob``) of each frame's faces for a model of input ``size``."""

    name = "align"

    def __init__(self, size: int, device: str = "cpu", as_tensor: bool = False) -> None:
        self.size = size
        self.device = device
        self.as_tensor = as_tensor

    def process(self, item: FrameItem) -> Iterable[FrameItem]:
        return (dataclasses.replace(item, jobs=make_jobs(item, self.size, self.device, self.as_tensor)),)


class BlendStage(Stage):
    """Pastes each item's restored jobs back into its frame (failed or unrestored jobs skipped).

    scale: the frame is enlarged this many times before pasting (``--upscale``); resize: how
    (default: bicubic via OpenCV), called only when scale > 1.
    """

    name = "blend"

    def __init__(
        self,
        config: BlendConfig,
        scale: int = 1,
        resize: Callable[[np.ndarray, int], np.ndarray] | None = None,
    ) -> None:
        self.config = config
        self.scale = scale
        self.resize = resize or _resize_bicubic

    def process(self, item: FrameItem) -> Iterable[FrameItem]:
        if self.scale <= 1 and not any(j.restored is not None and not j.failed for j in item.jobs):
            return (item,)
        image = item.frame.rgb()  # this stage pastes in RGB (RestoreStage pastes into the planes)
        if self.scale > 1:
            image = self.resize(image, self.scale)
        pasted = paste_faces(image, item.jobs, self.config, scale=self.scale)
        return (dataclasses.replace(item, frame=dataclasses.replace(item.frame, image=pasted)),)


def _resize_bicubic(image: np.ndarray, scale: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
