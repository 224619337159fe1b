"""Clips for the archival-fidelity tests (issue 13), made from a real face clip with Debian's ffmpeg CLI.

Every clip is a short (12 frames), small (320x180) cut of ``talking_720p_silent_audio.mp4``, one
face of about 70 px, in the pixel format and with the colour tags a test needs. ffmpeg, not our
own code, makes them: an independent maker, as the conversions under test are ours. Clips are
made on first use and kept for the session (``session_clips``); the tests skip with the reason
when the test data or the ffmpeg CLI is absent.

RGB to Y'CbCr goes through swscale with ``accurate_rnd+full_chroma_int``, whose results are
the exact formulas rounded (its default fast path is off by up to 2 codes), so a flat patch's
samples are the textbook conversion of its RGB.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SOURCE = "videos/talking_720p_silent_audio.mp4"  # one woman, near-frontal, 1280x720, 30 fps
DETECTOR = "weights/retinaface_mobilenet0.25_Final.pth"
SIZE = (320, 180)
FRAMES = 12
SKIN = (224, 172, 140)  # a light skin tone, RGB
PATCH = (8, 8, 48, 32)  # x, y, width, height: top left, far from the face (whole 4:2:0 chroma samples)
# HDR10 metadata as x265 takes it: P3 D65 mastering display of 0.005-1000 cd/m2, MaxCLL 1000, MaxFALL 400
MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
MAX_CLL = (1000, 400)
TIMEOUT = 120  # s, any one ffmpeg or ffprobe call
SWS = "accurate_rnd+full_chroma_int:sws_dither=none"

# --colorspace NAME -> ffmpeg's four tags (matrix, primaries, transfer, range)
TAGS = {
    "bt709": ("bt709", "bt709", "bt709", "tv"),
    "bt601": ("smpte170m", "smpte170m", "smpte170m", "tv"),
    "hdr10": ("bt2020nc", "bt2020", "smpte2084", "tv"),
}
_SCALE_MATRIX = {"bt709": "bt709", "bt601": "bt601", "hdr10": "bt2020"}


@dataclass(frozen=True)
class Recipe:
    """How one clip is made: pixel format, encoder arguments, colour tags (None: untagged)."""

    name: str
    pix_fmt: str
    encoder: tuple[str, ...]
    colour: str | None
    ext: str = ".mkv"
    size: tuple[int, int] = SIZE
    frames: int = FRAMES
    patch: bool = False  # the flat SKIN patch at PATCH


X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-crf", "12")
X264_LOSSLESS = ("-c:v", "libx264", "-preset", "ultrafast", "-qp", "0")  # the patch's samples as converted
X265_HDR = (
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    f"log-level=error:hdr10=1:repeat-headers=1:master-display={MASTER_DISPLAY}:max-cll={MAX_CLL[0]},{MAX_CLL[1]}",
)
RECIPES = {
    r.name: r
    for r in (
        Recipe("p422_10", "yuv422p10le", X264, "bt709", patch=True),  # x264 High 4:2:2, 10-bit
        Recipe("p444_10", "yuv444p10le", ("-c:v", "ffv1"), "bt601", patch=True),  # FFV1, 10-bit 4:4:4
        Recipe("bt709", "yuv420p", X264_LOSSLESS, "bt709", ".mp4", patch=True),
        Recipe("bt601", "yuv420p", X264_LOSSLESS, "bt601", ".mp4", patch=True),  # the same content, BT.601's matrix
        Recipe("untagged", "yuv420p", X264, None),
        Recipe("untagged_hd", "yuv420p", X264, None, size=(1280, 720), frames=4),
        Recipe("hdr10_mkv", "yuv420p10le", X265_HDR, "hdr10"),
        Recipe("hdr10_mp4", "yuv420p10le", X265_HDR, "hdr10", ".mp4"),
    )
}


def patch_samples(planes: list[np.ndarray], sub: tuple[int, int], margin: int = 8) -> list[np.ndarray]:
    """Y', Cb, Cr of the skin patch's interior (``margin`` luma px in), chroma repeated up to luma size.

    sub: log2 chroma subsampling (x, y). The margin keeps clear of the patch's edges, where
    chroma samples straddle patch and picture.
    """
    px, py, pw, ph = PATCH
    x0, y0, x1, y1 = px + margin, py + margin, px + pw - margin, py + ph - margin
    out = [planes[0][y0:y1, x0:x1]]
    for c in planes[1:3]:
        part = c[y0 >> sub[1] : y1 >> sub[1], x0 >> sub[0] : x1 >> sub[0]]
        out.append(np.repeat(np.repeat(part, 1 << sub[1], 0), 1 << sub[0], 1))
    return out


def raw_planes(path: Path, pix_fmt: str) -> list[list[np.ndarray]]:
    """Every frame's planes (Y, Cb, Cr at their own sizes) as the ffmpeg CLI decodes them, in ``pix_fmt``."""
    stream = probe_video(path)
    w, h = int(stream["width"]), int(stream["height"])
    sub = {"yuv420p": (1, 1), "yuv422p": (1, 0), "yuv444p": (0, 0)}[pix_fmt.removesuffix("10le")]
    dtype = np.dtype("<u2") if pix_fmt.endswith("10le") else np.dtype(np.uint8)
    sizes = [(h, w), (h >> sub[1], w >> sub[0]), (h >> sub[1], w >> sub[0])]
    args = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]
    done = subprocess.run(args, capture_output=True, timeout=TIMEOUT, check=True)
    data = np.frombuffer(done.stdout, dtype)
    per_frame = sum(a * b for a, b in sizes)
    assert data.size % per_frame == 0
    frames = []
    for k in range(data.size // per_frame):
        chunk, planes, at = data[k * per_frame : (k + 1) * per_frame], [], 0
        for ph, pw in sizes:
            planes.append(chunk[at : at + ph * pw].reshape(ph, pw))
            at += ph * pw
        frames.append(planes)
    return frames


def patch_box(margin: int = 8) -> tuple[slice, slice]:
    """(rows, columns) of the patch's interior in a full-size picture, as ``patch_samples`` cuts it."""
    px, py, pw, ph = PATCH
    return slice(py + margin, py + ph - margin), slice(px + margin, px + pw - margin)


def run_tool(args: list[str], timeout: float = TIMEOUT) -> str:
    """Run ffmpeg or ffprobe; its stdout, or an AssertionError with its stderr."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stderr[-2000:]}"
    return done.stdout


def make(recipe: Recipe, source: Path, out: Path) -> Path:
    """Make the clip of ``recipe`` from ``source`` at ``out`` with the ffmpeg CLI."""
    w, h = recipe.size
    matrix = _SCALE_MATRIX.get(recipe.colour or "")
    to_yuv = f"scale=out_color_matrix={matrix}:out_range=tv:flags={SWS}" if matrix else f"scale=flags={SWS}"
    if recipe.colour is None:  # nothing tagged at all: no matrix, range, primaries or transfer
        to_yuv += ",setparams=range=unknown:color_primaries=unknown:color_trc=unknown:colorspace=unknown"
    to_yuv += f",format={recipe.pix_fmt}"
    if recipe.patch:
        px, py, pw, ph = PATCH
        colour = "0x{:02X}{:02X}{:02X}".format(*SKIN)
        graph = (
            f"[0:v]scale={w}:{h},format=rgb24[bg];color=c={colour}:s={pw}x{ph}:r=30,format=rgb24[p];"
            f"[bg][p]overlay={px}:{py}:shortest=1,{to_yuv}"
        )
    else:
        graph = f"[0:v]scale={w}:{h},format=rgb24,{to_yuv}"
    tags: list[str] = []
    if recipe.colour is not None:
        m, p, t, r = TAGS[recipe.colour]
        tags = ["-colorspace", m, "-color_primaries", p, "-color_trc", t, "-color_range", r]
    args = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-filter_complex", graph]
    args += ["-frames:v", str(recipe.frames), "-an", *recipe.encoder, *tags, str(out)]
    run_tool(args)
    return out


def probe_video(path: Path) -> dict[str, str]:
    """ffprobe's facts of the first video stream (codec_name, pix_fmt, color_space, ...)."""
    out = run_tool(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(path)])
    (stream,) = json.loads(out)["streams"]
    return stream


def ffmpeg_rgb(path: Path, matrix: str, frames: int = 1) -> np.ndarray:
    """(frames, h, w, 3) uint8 RGB of ``path`` as ffmpeg converts it, with ``matrix`` and limited range."""
    scale = f"scale=in_color_matrix={matrix}:in_range=tv:flags={SWS},format=rgb24"
    args = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vf", scale, "-frames:v", str(frames)]
    done = subprocess.run([*args, "-f", "rawvideo", "-"], capture_output=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    stream = probe_video(path)
    w, h = int(stream["width"]), int(stream["height"])
    return np.frombuffer(done.stdout, np.uint8).reshape(-1, h, w, 3)


class FidelityClips:
    """The clips of ``RECIPES`` by name, each made on first use (``clips["p422_10"]``).

    folder: where they are made; a clip already there (made by another test module of the
    session) is used as it is.
    """

    def __init__(self, testdata: Path, folder: Path) -> None:
        self.source = testdata / SOURCE
        self.detector = testdata / DETECTOR
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def __getitem__(self, name: str) -> Path:
        recipe = RECIPES[name]
        path = self.folder / f"{name}{recipe.ext}"
        if not path.exists():
            partial = self.folder / f"partial_{name}{recipe.ext}"  # renamed only when ffmpeg is done
            make(recipe, self.source, partial)
            partial.rename(path)
        return path


def with_container_hdr(clip: Path, out: Path) -> Path:
    """A copy of the Matroska ``clip`` whose track carries MASTERING_DISPLAY and MAX_CLL as Matroska
    elements (MasteringMetadata, MaxCLL/MaxFALL), as mastering tools write them, by mkvpropedit.

    Skips when mkvtoolnix is not installed (``apt-get install mkvtoolnix``).
    """
    if shutil.which("mkvpropedit") is None:
        pytest.skip("mkvpropedit is not installed (apt-get install mkvtoolnix)")
    shutil.copyfile(clip, out)
    values = {  # MASTER_DISPLAY and MAX_CLL in Matroska's units: CIE xy and cd/m2
        "chromaticity-coordinates-red-x": 0.68,
        "chromaticity-coordinates-red-y": 0.32,
        "chromaticity-coordinates-green-x": 0.265,
        "chromaticity-coordinates-green-y": 0.69,
        "chromaticity-coordinates-blue-x": 0.15,
        "chromaticity-coordinates-blue-y": 0.06,
        "white-coordinates-x": 0.3127,
        "white-coordinates-y": 0.329,
        "max-luminance": 1000,
        "min-luminance": 0.005,
        "max-content-light": MAX_CLL[0],
        "max-frame-light": MAX_CLL[1],
    }
    args = ["mkvpropedit", "-q", str(out), "--edit", "track:v1"]
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    run_tool(args)
    return out


def session_clips(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> FidelityClips:
    """The session's fidelity clips, shared by every module that asks; skips without the ffmpeg CLI.

    Call it from a test module's own fixture: the clips live in one folder of the session's
    base temp folder, so each is made once however many modules use it.
    """
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("the ffmpeg CLI is not installed (apt-get install ffmpeg; tools/test-servers.sh does it)")
    return FidelityClips(testdata, tmp_path_factory.getbasetemp() / "fidelity_clips")
