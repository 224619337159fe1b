"""1080p clips with exactly 1, 2 or 4 faces, tiled from a one-face clip of the shared test data.

``bench gpu`` measures the pipeline against the number of faces per frame, and the shared data
has no 1080p clip with a known small count (the crowd clip has 4 to 7). A tile grid of one real
talking head fixes the count: 1 face fills the frame (1280x720 enlarged 1.5x), 2 faces sit side
by side (each tile the middle 640x720 of the source, where the face stays, enlarged 1.5x), 4
faces in a 2x2 grid (the source at 0.75x). Each tile starts ``frames / N`` later in the source, so
no two faces move alike, and a source that ends starts again (a hard cut the scene-cut detector
sees, as in real footage). Clips are written once into a cache folder, never into the repository.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from panini_video import cache

log = logging.getLogger(__name__)

SOURCE = "videos/talking_720p_silent_audio.mp4"  # 1280x720, 30 fps, 180 frames, one face
SIZE = (1920, 1080)
GRIDS = {1: (1, 1), 2: (1, 2), 4: (2, 2)}  # faces: (rows, columns)


def clips_dir() -> Path:
    """Where made clips are kept: ``bench-clips`` in the cache folder."""
    return cache.cache_dir() / "bench-clips"


def face_clips(
    testdata: Path, counts: tuple[int, ...] = (1, 2, 4), frames: int = 240, folder: Path | None = None
) -> dict[int, Path]:
    """The clip for each face count in ``counts``, made on first use (``frames`` frames each)."""
    folder = folder or clips_dir()
    return {n: face_clip(testdata / SOURCE, n, folder / clip_name(n, frames), frames) for n in counts}


def clip_name(faces: int, frames: int) -> str:
    """The file name of the clip with ``faces`` faces and ``frames`` frames."""
    return f"faces{faces}_{SIZE[0]}x{SIZE[1]}_{frames}f.mp4"


def face_clip(source: Path, faces: int, out: Path, frames: int) -> Path:
    """Write ``out`` (H.264, yuv420p, 30 fps) with ``faces`` tiles of ``source``; kept if it exists."""
    if faces not in GRIDS:
        raise ValueError(f"face count {faces} has no tile layout; use one of {sorted(GRIDS)}")
    if frames < 1:
        raise ValueError(f"a clip needs at least one frame, got {frames}")
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, cols = GRIDS[faces]
    cell = (SIZE[0] // cols, SIZE[1] // rows)
    tiles = [_frames(source, start=k * frames // faces) for k in range(faces)]
    partial = out.with_name(f".{out.name}.partial")
    try:
        with av.open(str(partial), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=30, options={"preset": "veryfast", "crf": "18"})
            stream.width, stream.height = SIZE
            stream.pix_fmt = "yuv420p"
            canvas = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
            for i in range(frames):
                for k, tile in enumerate(tiles):
                    r, c = divmod(k, cols)
                    canvas[r * cell[1] : (r + 1) * cell[1], c * cell[0] : (c + 1) * cell[0]] = _fit(next(tile), cell)
                frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    log.info("made %s: %d faces, %d frames", out, faces, frames)
    return out


def _frames(source: Path, start: int) -> Iterator[np.ndarray]:
    """RGB frames of ``source`` from frame ``start`` on, starting over at its end, forever."""
    skip = start
    while True:
        got = 0
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for vf in container.decode(stream):
                got += 1
                if skip:
                    skip -= 1
                    continue
                yield vf.to_ndarray(format="rgb24")
        if not got:
            raise ValueError(f"{source} has no video frames")


def _fit(image: np.ndarray, cell: tuple[int, int]) -> np.ndarray:
    """The middle of ``image`` at the cell's aspect, resized to the cell (width, height)."""
    h, w = image.shape[:2]
    cw, ch = cell
    if w * ch > h * cw:  # wider than the cell: keep the middle columns
        keep = round(h * cw / ch)
        image = image[:, (w - keep) // 2 : (w - keep) // 2 + keep]
    else:
        keep = round(w * ch / cw)
        image = image[(h - keep) // 2 : (h - keep) // 2 + keep]
    shrink = image.shape[1] > cw
    return cv2.resize(image, cell, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
