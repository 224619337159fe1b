"""Fidelity of the I/O layer on ffmpeg-made clips (issue 13): samples as decoded, colour maths, HDR10 metadata.

The oracle is Debian's ffmpeg CLI: its raw decode of each clip, and its own swscale conversions
(exact rounding, no dither) between RGB and Y'CbCr; ``tests.io.fidelity_media`` makes the clips.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from panini_video.io.colour import Colour, rgb_to_ycc, stream_colour, ycc_to_rgb
from panini_video.io.hdr import ContentLight, HdrMetadata, MasteringDisplay, hdr_options
from panini_video.io.probe import probe
from panini_video.io.reader import VideoReader
from tests.io.fidelity_media import (
    FRAMES,
    MASTER_DISPLAY,
    MAX_CLL,
    SKIN,
    FidelityClips,
    ffmpeg_rgb,
    patch_box,
    patch_samples,
    raw_planes,
    session_clips,
    with_container_hdr,
)

# what each clip is, as ffmpeg was told: (pix_fmt, matrix code, log2 chroma subsampling, bits)
CLIPS = {
    "p422_10": ("yuv422p10le", 1, (1, 0), 10),
    "p444_10": ("yuv444p10le", 6, (0, 0), 10),
    "bt709": ("yuv420p", 1, (1, 1), 8),
    "bt601": ("yuv420p", 6, (1, 1), 8),
}


@pytest.fixture(scope="module")
def clips(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> FidelityClips:
    return session_clips(testdata, tmp_path_factory)


def to_rgb(samples: list[np.ndarray], colour: Colour, bits: int) -> np.ndarray:
    y, cb, cr = (torch.from_numpy(p.astype(np.float32)) for p in samples)
    return ycc_to_rgb(y, cb, cr, colour, bits).clamp(0, 255).round().permute(1, 2, 0).numpy()


@pytest.mark.parametrize("clip", ["p422_10", "p444_10", "bt709"])
def test_the_reader_keeps_the_decoded_samples_in_their_format(clips: FidelityClips, clip: str) -> None:
    pix_fmt, _, _, bits = CLIPS[clip]
    want = raw_planes(clips[clip], pix_fmt)
    with VideoReader(clips[clip]) as reader:
        got = list(reader)
    assert len(got) == len(want) == FRAMES
    for frame, planes in zip(got, want, strict=True):
        pic = frame.image
        assert pic.format.name == pix_fmt and pic.format.bits == bits
        for ours, theirs in zip(pic.planes, planes, strict=True):
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


@pytest.mark.parametrize("clip", ["p422_10", "p444_10", "bt709", "bt601"])
def test_rgb_to_ycc_gives_the_samples_ffmpeg_converts_the_skin_tone_to(clips: FidelityClips, clip: str) -> None:
    pix_fmt, matrix, sub, bits = CLIPS[clip]
    decoded = patch_samples(raw_planes(clips[clip], pix_fmt)[0], sub)
    skin = torch.tensor(SKIN, dtype=torch.float32).view(3, 1, 1)
    ours = [float(v) for v in rgb_to_ycc(skin, Colour(matrix, 1, matrix, matrix), bits)]
    for plane, value in zip(decoded, ours, strict=True):
        assert np.unique(plane).size == 1  # flat: one value per plane
        assert abs(int(plane.flat[0]) - value) <= 1.0, (clip, int(plane.flat[0]), value)


@pytest.mark.parametrize("clip", ["p422_10", "p444_10", "bt709", "bt601"])
def test_ycc_to_rgb_matches_ffmpeg_within_one_code_value(clips: FidelityClips, clip: str) -> None:
    pix_fmt, matrix, sub, bits = CLIPS[clip]
    name = {1: "bt709", 6: "bt601"}[matrix]
    planes = raw_planes(clips[clip], pix_fmt)[0]
    theirs = ffmpeg_rgb(clips[clip], name)[0].astype(np.float32)
    ours = to_rgb(patch_samples(planes, sub), Colour(matrix, 1, matrix, matrix), bits)
    assert np.abs(ours - theirs[patch_box()]).max() <= 1.0
    assert np.abs(ours - np.array(SKIN, np.float32)).max() <= 1.0
    if sub == (0, 0):  # no chroma to interpolate: every pixel of the frame compares
        whole = to_rgb(list(planes), Colour(matrix, 1, matrix, matrix), bits)
        assert np.abs(whole - theirs).max() <= 1.0
    # read with the other matrix the patch is off by more than the tolerance: the test can fail
    other = 6 if matrix == 1 else 1
    wrong = to_rgb(patch_samples(planes, sub), Colour(other, 1, other, other), bits)
    assert np.abs(wrong - theirs[patch_box()]).max() > 3.0


@pytest.mark.parametrize(
    ("clip", "matrix", "assumed"),
    [
        ("untagged", 6, True),  # 180 lines: BT.601 (SMPTE 170M)
        ("untagged_hd", 1, True),  # 720 lines: BT.709
        ("bt709", 1, False),
        ("bt601", 6, False),
        ("hdr10_mkv", 9, False),
    ],
)
def test_the_stream_colour_is_the_tagged_one_or_said_to_be_assumed(
    clips: FidelityClips, clip: str, matrix: int, assumed: bool
) -> None:
    colour = stream_colour(probe(clips[clip]))
    assert colour.matrix == matrix and colour.range == 1
    assert ("matrix" in colour.assumed) is assumed and ("range" in colour.assumed) is assumed
    if clip == "hdr10_mkv":
        assert (colour.primaries, colour.transfer) == (9, 16)  # BT.2020, SMPTE ST 2084 (PQ)


def _expected_hdr() -> HdrMetadata:
    """The metadata of MASTER_DISPLAY and MAX_CLL, written out by hand from x265's units."""
    xy = [Fraction(v, 50000) for v in (34000, 16000, 13250, 34500, 7500, 3000)]
    return HdrMetadata(
        MasteringDisplay(
            primaries=((xy[0], xy[1]), (xy[2], xy[3]), (xy[4], xy[5])),  # R, G, B
            white_point=(Fraction(15635, 50000), Fraction(16450, 50000)),
            min_luminance=Fraction(50, 10000),
            max_luminance=Fraction(1000),
        ),
        ContentLight(*MAX_CLL),
    )


@pytest.mark.parametrize("clip", ["hdr10_mkv", "hdr10_mp4"])
def test_hdr10_metadata_is_read_from_the_first_frame(clips: FidelityClips, clip: str) -> None:
    hdr = probe(clips[clip]).hdr
    assert hdr == _expected_hdr()
    assert hdr.mastering is not None and hdr.mastering.sei_value() == MASTER_DISPLAY  # back to x265's own string
    assert hdr.describe() == "mastering display 0.005-1000 cd/m2, MaxCLL 1000, MaxFALL 400"
    facts = json.loads(json.dumps(hdr.as_dict()))
    assert facts["content_light"] == {"max_cll": 1000, "max_fall": 400}
    assert (
        facts["mastering_display"]["primaries"][0] == [0.68, 0.32]
        and facts["mastering_display"]["max_luminance"] == 1000
    )


def test_hdr10_metadata_in_the_matroska_container_is_read(clips: FidelityClips, tmp_path: Path) -> None:
    """FFV1 has no SEI: its HDR metadata lives in Matroska's track, which FFmpeg hands on with each frame."""
    hdr = probe(with_container_hdr(clips["p444_10"], tmp_path / "mastered.mkv")).hdr
    assert hdr is not None and hdr.light == ContentLight(*MAX_CLL)
    assert hdr.mastering is not None and hdr.mastering.sei_value() == MASTER_DISPLAY  # to x265's precision
    assert hdr.mastering.max_luminance == 1000


def test_a_clip_without_hdr_metadata_has_none(clips: FidelityClips) -> None:
    assert probe(clips["p422_10"]).hdr is None and probe(clips["bt709"]).hdr is None


def test_hdr_options_go_into_the_encoders_own_parameters(clips: FidelityClips) -> None:
    hdr = probe(clips["hdr10_mkv"]).hdr
    x265 = hdr_options("libx265", {"preset": "medium", "x265-params": "log-level=warning:max-cll=1,1"}, hdr)
    assert x265 == {
        "preset": "medium",
        "x265-params": f"log-level=warning:master-display={MASTER_DISPLAY}:max-cll=1000,400",  # the input's replaces
    }
    x264 = hdr_options("libx264", {"crf": "18"}, hdr)
    assert x264 == {"crf": "18", "x264-params": f"mastering-display={MASTER_DISPLAY}:cll=1000,400"}
    assert hdr_options("ffv1", {"level": "3"}, hdr) is None  # no SEI to write it in
    assert hdr_options("ffv1", {"level": "3"}, None) == {"level": "3"}  # nothing to carry
    light_only = HdrMetadata(light=ContentLight(400, 100))
    assert hdr_options("libx265", {}, light_only) == {"x265-params": "max-cll=400,100"}


def test_hdr_metadata_needs_a_part() -> None:
    with pytest.raises(ValueError, match="mastering display or a content light level"):
        HdrMetadata()
