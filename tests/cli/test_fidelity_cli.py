"""Archival fidelity through the main command (issue 13): samples, depth, colour tags and HDR kept.

Each run is the real pipeline (RetinaFace MobileNet, tracker, the tiny Panini-Net with seeded
random weights, paste into the planes) on 12 frames of a real face clip that ffmpeg made in the
pixel format under test (``tests.io.fidelity_media``). Decoding is done by the ffmpeg CLI, an
oracle independent of our reader: its raw planes, input against output, must be equal outside
the paste regions that ``--stats-json`` lists, and differ inside them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from panini_video.cli import main
from panini_video.io.colour import Colour, ycc_to_rgb
from panini_video.io.picture import PlaneFormat, plane_format
from panini_video.io.probe import probe
from panini_video.models import VARIANTS, PaniniNet, save_model
from panini_video.restore.planes import chroma_mask, region_mask
from tests.io.fidelity_media import (
    FRAMES,
    MAX_CLL,
    PATCH,
    SKIN,
    FidelityClips,
    ffmpeg_rgb,
    patch_box,
    patch_samples,
    probe_video,
    raw_planes,
    session_clips,
    with_container_hdr,
)

COLOUR_KEYS = ("pix_fmt", "color_space", "color_transfer", "color_primaries", "color_range")
LOSSLESS = {"ffv1": ["--codec", "ffv1"], "x264-crf0": ["--codec", "x264", "--crf", "0", "--preset", "ultrafast"]}


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    return save_model(PaniniNet(VARIANTS["tiny"]).eval(), path, random_seed=7)


class Runs:
    """Pipeline runs made once per module, by (clip, output extension, extra flags)."""

    def __init__(self, clips: FidelityClips, tiny: Path, folder: Path) -> None:
        self.clips, self.tiny, self.folder = clips, tiny, folder
        self._done: dict[tuple[str, str, tuple[str, ...]], tuple[Path, dict[str, Any], str]] = {}

    def __call__(self, clip: str, ext: str, *flags: str) -> tuple[Path, dict[str, Any], str]:
        """(output, the stats JSON, the log) of restoring ``clip`` into a file of ``ext``."""
        key = (clip, ext, flags)
        if key not in self._done:
            n = len(self._done)
            out, stats = self.folder / f"{clip}_{n}{ext}", self.folder / f"{clip}_{n}.json"
            args = [str(self.clips[clip]), str(out), "-q", "--model", str(self.tiny), "--device", "cpu"]
            args += ["--detector-weights", str(self.clips.detector), "--batch-size", "4", "--stats-json", str(stats)]
            handler = _Collect()
            root = logging.getLogger("panini_video")
            root.addHandler(handler)
            level = root.level
            root.setLevel(logging.INFO)
            try:
                assert main([*args, *flags]) == 0
            finally:
                root.removeHandler(handler)
                root.setLevel(level)
            self._done[key] = (out, json.loads(stats.read_text()), "\n".join(handler.lines))
        return self._done[key]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


@pytest.fixture(scope="module")
def clips(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> FidelityClips:
    return session_clips(testdata, tmp_path_factory)


@pytest.fixture(scope="module")
def runs(clips: FidelityClips, tiny_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(clips, tiny_file, tmp_path_factory.mktemp("fidelity_runs"))


def regions_by_frame(stats: dict[str, Any]) -> dict[int, list[tuple[int, int, int, int]]]:
    table = stats["stage_stats"]["restore"]["paste_regions"]
    assert table["columns"] == ["frame", "x0", "y0", "x1", "y1"]
    out: dict[int, list[tuple[int, int, int, int]]] = {}
    for frame, x0, y0, x1, y1 in table["rows"]:
        out.setdefault(frame, []).append((x0, y0, x1, y1))
    return out


# x264's crf 0 is qp 0 (lossless) only at 8 bits: its crf is offset by 6 per extra bit, so a 10-bit
# crf 0 would be qp 12; io.encoder asks x264 for qp 0 instead, which these cases hold it to.
CASES = [
    ("p422_10", "ffv1"),
    ("p444_10", "ffv1"),
    ("bt709", "ffv1"),
    ("p422_10", "x264-crf0"),
    ("p444_10", "x264-crf0"),
    ("bt709", "x264-crf0"),
]


@pytest.mark.parametrize(("clip", "codec"), CASES)
def test_lossless_output_equals_the_input_outside_the_faces(
    runs: Runs, clips: FidelityClips, clip: str, codec: str
) -> None:
    src = clips[clip]
    out, stats, _ = runs(clip, ".mkv", *LOSSLESS[codec])
    pix_fmt = probe_video(src)["pix_fmt"]
    assert probe_video(out)["pix_fmt"] == pix_fmt  # kept without --pix-fmt
    a, b = raw_planes(src, pix_fmt), raw_planes(out, pix_fmt)
    assert len(a) == len(b) == FRAMES
    regions = regions_by_frame(stats)
    assert sorted(regions) == list(range(FRAMES))  # the face was pasted on every frame
    fmt = _plane_format(pix_fmt)
    size = (a[0][0].shape[1], a[0][0].shape[0])
    for index, (pa, pb) in enumerate(zip(a, b, strict=True)):
        mask = region_mask(size, regions[index])
        masks = [mask, chroma_mask(mask, fmt), chroma_mask(mask, fmt)]
        outside = sum(int(np.count_nonzero(x[~m] != y[~m])) for x, y, m in zip(pa, pb, masks, strict=True))
        inside = int(np.count_nonzero(pa[0][mask] != pb[0][mask]))
        assert outside == 0, f"frame {index}: {outside} samples changed outside the paste regions"
        assert inside > 0.5 * mask.sum(), f"frame {index}: only {inside} of {mask.sum()} face pixels changed"


def _plane_format(pix_fmt: str) -> PlaneFormat:
    fmt = plane_format(pix_fmt)
    assert fmt is not None
    return fmt


@pytest.mark.parametrize("clip", ["p422_10", "p444_10", "bt709", "bt601"])
def test_bit_depth_and_the_four_colour_tags_are_kept(runs: Runs, clips: FidelityClips, clip: str) -> None:
    want = probe_video(clips[clip])
    for ext, flags in ((".mkv", ("--codec", "ffv1")), (".mp4", ("--preset", "ultrafast"))):
        got = probe_video(runs(clip, ext, *flags)[0])
        assert {k: got.get(k) for k in COLOUR_KEYS} == {k: want.get(k) for k in COLOUR_KEYS}, ext


@pytest.mark.parametrize(
    ("clip", "flags", "matrix", "said"),
    [
        ("untagged", (), "smpte170m", "taken as smpte170m limited range"),  # 180 lines: BT.601
        ("untagged_hd", (), "bt709", "taken as bt709 limited range"),  # 720 lines: BT.709
        ("untagged_hd", ("--assume-colorspace", "bt601"), "smpte170m", None),
    ],
)
def test_an_untagged_input_gives_an_explicitly_tagged_output(
    runs: Runs, clip: str, flags: tuple[str, ...], matrix: str, said: str | None
) -> None:
    out, stats, log = runs(clip, ".mkv", "--codec", "ffv1", *flags)
    got = probe_video(out)
    assert got["color_space"] == matrix and got["color_range"] == "tv"
    assert got.get("color_primaries") not in (None, "unknown") and got.get("color_transfer") not in (None, "unknown")
    if said is not None:
        assert "not tagged" in log and said in log, log
    else:  # told, not guessed: nothing to say
        assert "not tagged" not in log, log
    colour = stats["stage_stats"]["source"]["colour"]
    assert "matrix" in colour["assumed"] and colour["pix_fmt"] == "yuv420p"


def test_a_skin_tone_patch_survives_a_bt709_source_within_one_code_value(runs: Runs, clips: FidelityClips) -> None:
    out, stats, _ = runs("bt709", ".mkv", "--codec", "ffv1")
    px, py, pw, ph = PATCH
    for regions in regions_by_frame(stats).values():  # the patch is away from every paste region
        assert not region_mask((320, 180), regions)[py : py + ph, px : px + pw].any()
    src, dst = raw_planes(clips["bt709"], "yuv420p")[0], raw_planes(out, "yuv420p")[0]
    for a, b in zip(patch_samples(src, (1, 1)), patch_samples(dst, (1, 1)), strict=True):
        assert np.array_equal(a, b)  # the patch's Y'CbCr as it was
    skin = np.array(SKIN, np.float32)
    ours = to_rgb(patch_samples(dst, (1, 1)), Colour(1, 1, 1, 1))
    theirs = ffmpeg_rgb(out, "bt709")[0][patch_box()].astype(np.float32)
    assert np.abs(ours - skin).max() <= 1.0  # the patch is still the skin tone
    assert np.abs(ours - theirs).max() <= 1.0  # and our BT.709 maths is ffmpeg's
    # The same patch in the BT.601 clip, read with BT.709's matrix (what a wrong guess does): off by more.
    other = patch_samples(raw_planes(clips["bt601"], "yuv420p")[0], (1, 1))
    assert np.abs(to_rgb(other, Colour(6, 1, 6, 6)) - skin).max() <= 1.0
    misread = to_rgb(other, Colour(1, 1, 1, 1))
    assert np.abs(misread - skin).max() > 3.0
    assert np.abs(misread - ffmpeg_rgb(clips["bt601"], "bt601")[0][patch_box()]).max() > 3.0


def to_rgb(samples: list[np.ndarray], colour: Colour, bits: int = 8) -> np.ndarray:
    """(h, w, 3) RGB, rounded, of Y', Cb, Cr at one size, by ``io.colour.ycc_to_rgb``."""
    y, cb, cr = (torch.from_numpy(p.astype(np.float32)) for p in samples)
    return ycc_to_rgb(y, cb, cr, colour, bits).clamp(0, 255).round().permute(1, 2, 0).numpy()


@pytest.mark.parametrize(
    ("clip", "ext", "flags"),
    [
        ("hdr10_mkv", ".mkv", ("--codec", "x265", "--preset", "ultrafast")),
        ("hdr10_mp4", ".mp4", ("--codec", "x265", "--preset", "ultrafast")),
        ("hdr10_mkv", ".mkv", ("--preset", "ultrafast")),  # x264 High 10 writes the SEI too
    ],
)
def test_hdr10_metadata_is_kept(
    runs: Runs,
    clips: FidelityClips,
    clip: str,
    ext: str,
    flags: tuple[str, ...],
) -> None:
    src = clips[clip]
    want = probe(src).hdr
    assert want is not None and want.light is not None and (want.light.max_cll, want.light.max_fall) == MAX_CLL
    out, _, log = runs(clip, ext, *flags)
    assert probe(out).hdr == want
    got, tags = probe_video(out), probe_video(src)
    assert {k: got.get(k) for k in COLOUR_KEYS} == {k: tags.get(k) for k in COLOUR_KEYS}
    assert got["pix_fmt"] == "yuv420p10le" and got["color_transfer"] == "smpte2084"
    assert "HDR metadata carried" in log


def test_hdr10_metadata_from_the_container_goes_into_the_x265_stream(runs: Runs, clips: FidelityClips) -> None:
    """An FFV1 master with Matroska's MasteringMetadata, restored to x265: the SEI carries it now."""
    mastered = with_container_hdr(clips["p444_10"], runs.folder / "mastered.mkv")
    want = probe(mastered).hdr
    assert want is not None
    out = runs.folder / "mastered_x265.mkv"
    args = [str(mastered), str(out), "-q", "--model", str(runs.tiny), "--device", "cpu", "--codec", "x265"]
    assert main([*args, "--preset", "ultrafast", "--detector-weights", str(clips.detector)]) == 0
    got = probe(out).hdr
    assert got is not None and got.light == want.light
    assert got.mastering is not None and want.mastering is not None
    assert got.mastering.sei_value() == want.mastering.sei_value()  # SEI units: 1/50000, 1/10000 cd/m2
    assert probe_video(out)["pix_fmt"] == "yuv444p10le"


def test_hdr10_metadata_an_encoder_cannot_carry_is_named(runs: Runs) -> None:
    out, _, log = runs("hdr10_mkv", ".mkv", "--codec", "ffv1")
    warnings = [line for line in log.splitlines() if line.startswith("WARNING") and "HDR" in line]
    assert len(warnings) == 1 and "not carried" in warnings[0] and "ffv1" in warnings[0], log
    assert "MaxCLL 1000, MaxFALL 400" in warnings[0]
    assert probe(out).hdr is None  # what the warning said
    assert probe_video(out)["color_transfer"] == "smpte2084"  # the tags still are


@pytest.mark.parametrize(
    ("clip", "ext", "flags", "codec", "pix_fmt"),
    [
        ("p422_10", ".mp4", ("--preset", "ultrafast"), "h264", "yuv422p10le"),  # x264 High 4:2:2
        ("p444_10", ".mkv", ("--preset", "ultrafast"), "h264", "yuv444p10le"),  # x264 High 4:4:4 Predictive
        ("p422_10", ".mkv", ("--codec", "x265", "--preset", "ultrafast"), "hevc", "yuv422p10le"),
        ("p422_10", ".mov", ("--codec", "prores"), "prores", "yuv422p10le"),
        ("p444_10", ".mov", ("--codec", "prores"), "prores", "yuv444p12le"),  # the 4444 profile, from the input
        ("p422_10", ".mov", ("--codec", "dnxhr"), "dnxhd", "yuv422p10le"),  # dnxhr_hqx, from the input
    ],
)
def test_the_encoders_keep_a_deep_source_format_by_default(
    runs: Runs, clip: str, ext: str, flags: tuple[str, ...], codec: str, pix_fmt: str
) -> None:
    """No --pix-fmt, no --profile: the output is coded in the input's format (as its decoder gives it back:
    FFmpeg decodes ProRes 4444 as 12-bit)."""
    got = probe_video(runs(clip, ext, *flags)[0])
    assert (got["codec_name"], got["pix_fmt"]) == (codec, pix_fmt)
