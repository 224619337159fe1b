"""Faces out of and into a picture's own planes: colour maths, chroma grid, samples outside untouched.

The reference for the colour maths is FFmpeg's swscale (through PyAV), an implementation
independent of ours; pictures are real frames of the shared clips, converted by swscale to each
pixel format.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch

from panini_video.config import BlendConfig
from panini_video.faces.align import alignment_matrix
from panini_video.faces.blend import paste_region
from panini_video.io.colour import Colour, resolve_colour, rgb_to_ycc, stream_colour, ycc_to_rgb
from panini_video.io.picture import Picture, native_format, plane_format, sws_args
from panini_video.records import FaceJob, FrameItem
from panini_video.restore.planes import (
    DevicePlanes,
    align_faces,
    align_to_grid,
    chroma_mask,
    paste_faces,
    region_mask,
    region_rgb,
)

BT709 = Colour(1, 1, 1, 1)
BT601_FULL = Colour(6, 2, 6, 6)
FORMATS = ["yuv420p", "yuv422p10le", "yuv444p", "yuv444p12le", "gray", "gbrp", "yuv420p10le"]


def _frame_rgb(testdata: Path, name: str = "talking_720p_silent_audio.mp4") -> np.ndarray:
    with av.open(str(testdata / "videos" / name)) as c:
        vf = next(c.decode(video=0))
        return vf.to_ndarray(format="rgb24")


def _picture(rgb: np.ndarray, pix_fmt: str, colour: Colour) -> Picture:
    vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt, **sws_args(None, colour))
    return Picture.of(vf, colour)


def _device(pic: Picture) -> DevicePlanes:
    copy = pic.writable_copy()
    return DevicePlanes([torch.from_numpy(p) for p in copy.planes], pic.format, pic.colour, *pic.size, host=copy)


@pytest.mark.parametrize("colour", [BT709, BT601_FULL], ids=["bt709-limited", "bt601-full"])
@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv444p10le"])
def test_conversion_matches_swscale(testdata: Path, pix_fmt: str, colour: Colour) -> None:
    """Our Y'CbCr -> RGB of a 4:4:4 picture is swscale's within one code value, both ways."""
    rgb = _frame_rgb(testdata)[:96, :128].copy()
    pic = _picture(rgb, pix_fmt, colour)
    fmt = pic.format
    ours = ycc_to_rgb(*(torch.from_numpy(p.copy()) for p in pic.planes), colour, fmt.bits)
    theirs = pic.frame.reformat(format="rgb24", **sws_args(colour, None)).to_ndarray()
    diff = np.abs(ours.round().clamp(0, 255).permute(1, 2, 0).numpy() - theirs.astype(np.float32))
    assert diff.max() <= 1.0, diff.max()
    y, cb, cr = rgb_to_ycc(torch.from_numpy(rgb).permute(2, 0, 1).float(), colour, fmt.bits)
    for mine, plane in zip((y, cb, cr), pic.planes, strict=True):
        assert np.abs(mine.round().numpy() - plane.astype(np.float32)).max() <= 2 ** (fmt.bits - 8)


def test_the_wrong_matrix_is_caught() -> None:
    """The same samples read with BT.601 instead of BT.709 are several code values off: the check can fail."""
    rgb = np.zeros((32, 64, 3), np.uint8)
    rgb[:, :32] = (224, 172, 140)  # skin
    rgb[:, 32:] = (200, 40, 40)  # a saturated red
    pic = _picture(rgb, "yuv444p", BT709)
    right = ycc_to_rgb(*(torch.from_numpy(p.copy()) for p in pic.planes), BT709, 8)
    assert np.abs(right.permute(1, 2, 0).numpy() - rgb.astype(np.float32)).max() <= 1.0
    wrong = ycc_to_rgb(*(torch.from_numpy(p.copy()) for p in pic.planes), Colour(6, 1, 6, 6), 8)
    assert np.abs(wrong.permute(1, 2, 0).numpy() - rgb.astype(np.float32)).max() > 8


def test_untagged_is_resolved_by_height_and_can_be_forced() -> None:
    assert resolve_colour(2, 0, 2, 2, 720).matrix == 1
    sd = resolve_colour(2, 0, 2, 2, 576)
    assert (sd.matrix, sd.range, sd.assumed[:1]) == (6, 1, ("matrix",))
    assert resolve_colour(1, 1, 1, 1, 1080).assumed == ()
    forced = resolve_colour(1, 1, 1, 1, 1080, assume_colorspace="bt601", assume_range="full")
    assert (forced.matrix, forced.range) == (6, 2)
    assert resolve_colour(0, 2, 1, 13, 1080, rgb=True).matrix == 0
    jpeg = stream_colour(
        SimpleNamespace(
            pix_fmt="yuvj420p", color_space=2, color_range=0, color_primaries=2, color_trc=2, height=480, path="a.avi"
        )
    )
    assert jpeg.range == 2 and "range" not in jpeg.assumed  # FFmpeg's JPEG formats say full range by name


def test_packed_and_semi_planar_formats_unpack_to_their_twin_losslessly(testdata: Path) -> None:
    rgb = _frame_rgb(testdata)[:64, :96].copy()
    planar = _picture(rgb, "yuv420p", BT709)
    nv12 = planar.frame.reformat(format="nv12")
    pic = Picture.of(nv12, BT709)
    assert pic.format.name == native_format("nv12") == "yuv420p"
    for a, b in zip(pic.planes, planar.planes, strict=True):
        np.testing.assert_array_equal(a, b)
    assert plane_format("yuv422p10le") is not None and plane_format("yuv422p10le").block == (2, 1)


def test_regions_align_to_the_chroma_grid() -> None:
    fmt420, fmt422, fmt444 = (plane_format(n) for n in ("yuv420p", "yuv422p", "yuv444p"))
    assert align_to_grid((3, 5, 10, 11), fmt420, (64, 48)) == (2, 4, 10, 12)
    assert align_to_grid((3, 5, 10, 11), fmt422, (64, 48)) == (2, 5, 10, 11)
    assert align_to_grid((3, 5, 10, 11), fmt444, (64, 48)) == (3, 5, 10, 11)
    assert align_to_grid((60, 40, 63, 47), fmt420, (63, 47)) == (60, 40, 63, 47)  # odd edge: clipped


def _face_job(item: FrameItem, size: int, pic: DevicePlanes, restored: torch.Tensor | None = None) -> FaceJob:
    face = item.faces[0]
    affine = alignment_matrix(face.landmarks, size)
    crop = align_faces(pic, [affine], size)[0]
    return FaceJob(item.index, face, affine, crop, crop if restored is None else restored)


@pytest.mark.parametrize("pix_fmt", FORMATS)
def test_paste_changes_only_the_paste_region(pix_fmt: str, clip_items: list[FrameItem]) -> None:
    """Outside the aligned paste region every sample is the input's; inside, the face changed."""
    item = clip_items[0]
    src = item.frame.image
    rgb = src.rgb()
    pic = _picture(rgb, pix_fmt, BT709)
    dev = _device(pic)
    size = 64
    restored = torch.full((3, size, size), 30.0)  # a flat dark face: inside the region must change
    job = _face_job(item, size, dev, restored)
    (region,) = paste_faces(dev, [job], None, BlendConfig())
    assert region == align_to_grid(paste_region(item.faces[0], pic.size), pic.format, pic.size)
    bw, bh = pic.format.block
    assert region[0] % bw == 0 and region[1] % bh == 0
    mask = region_mask(pic.size, [region])
    inside = 0
    for i, (before, after) in enumerate(zip(pic.planes, dev.host.planes, strict=True)):
        m = mask if i == 0 or pic.format.rgb else chroma_mask(mask, pic.format)
        assert np.count_nonzero(before[~m] != after[~m]) == 0, f"plane {i}: samples changed outside the region"
        inside += np.count_nonzero(before[m] != after[m])
    assert inside > 0


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p10le", "yuv444p"])
def test_an_identity_restorer_gives_the_face_back(pix_fmt: str, clip_items: list[FrameItem]) -> None:
    """Restored = the aligned crop: after warp, RGB, back and paste, the face is within a few codes of itself.

    This is the colour path's round trip (region to RGB with the stream's matrix, and back);
    a wrong matrix or range would shift it by far more.
    """
    item = clip_items[0]
    pic = _picture(item.frame.rgb(), pix_fmt, BT709)
    dev = _device(pic)
    job = _face_job(item, 256, dev)
    (region,) = paste_faces(dev, [job], None, BlendConfig())
    x0, y0, x1, y1 = (int(v) for v in item.faces[0].box)
    k = 2 ** (pic.format.bits - 8)
    before = pic.planes[0][y0:y1, x0:x1].astype(np.float64) / k
    after = dev.host.planes[0][y0:y1, x0:x1].astype(np.float64) / k
    assert np.abs(after - before).mean() < 2.0  # two resamplings blur a little; colour does not move
    assert abs(after.mean() - before.mean()) < 0.5
    rgb_before = region_rgb(
        DevicePlanes([torch.from_numpy(p) for p in pic.planes], pic.format, BT709, *pic.size), region
    )
    rgb_after = region_rgb(dev, region)
    assert (rgb_after.mean(dim=(1, 2)) - rgb_before.mean(dim=(1, 2))).abs().max() < 1.0
