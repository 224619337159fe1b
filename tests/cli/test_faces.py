"""``panini-video faces``: photos and a short real clip through the detect and track stages."""

from __future__ import annotations

import io
import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from panini_video.cli import main
from panini_video.cli.faces import build_parser

CLIP = "videos/talking_vfr_700.mp4"  # one face; variable frame timing
PHOTO = "photos/two_people.jpg"  # two faces
CLIP_FRAMES = 20
WEIGHTS = "weights/retinaface_mobilenet0.25_Final.pth"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def weights(testdata: Path) -> str:
    path = testdata / WEIGHTS
    if not path.is_file():
        pytest.skip(f"detector weights not found at {path}")
    return str(path)


def faces(testdata: Path, *args: str) -> int:
    """``panini-video faces ARGS`` in this process, with the shared detector weights on the CPU."""
    return main(["faces", *args, "--detector-weights", weights(testdata), "--device", "cpu", "-q"])


def cut_clip(src: Path, dst: Path, packets: int) -> Path:
    """The first ``packets`` packets of ``src`` remuxed, not re-encoded (the clip has no B-frames)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        n = 0
        for packet in inp.demux(stream):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = copy
            out.mux(packet)
            n += 1
            if n == packets:
                break
    return dst


def frame_times(path: Path) -> list[float]:
    """Each frame's presentation time as PyAV decodes it (an oracle independent of our reader)."""
    times = []
    with av.open(str(path)) as c:
        for frame in c.decode(c.streams.video[0]):
            assert frame.time is not None
            times.append(frame.time)
    return times


@pytest.fixture(scope="module")
def inputs(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The photo and a 20-frame cut of the clip, spelled as a user might: relative, and via ``..``."""
    folder = tmp_path_factory.mktemp("faces_inputs")
    (folder / "sub").mkdir()
    cut_clip(testdata / CLIP, folder / "short.mp4", CLIP_FRAMES)
    return os.path.relpath(testdata / PHOTO), f"{folder}/sub/../short.mp4"


def run_json(testdata: Path, folder: Path, *args: str) -> dict[str, Any]:
    out = folder / "faces.json"
    assert faces(testdata, *args, "--json", str(out), "-y") == 0  # a helper's JSON: replaced each call
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def default_run(testdata: Path, inputs: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_json(testdata, tmp_path_factory.mktemp("default_run"), *inputs)


@pytest.fixture(scope="module")
def unsmoothed_run(testdata: Path, inputs: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_json(testdata, tmp_path_factory.mktemp("unsmoothed_run"), *inputs, "--smooth", "0")


def check_face(face: dict[str, Any]) -> None:
    assert set(face) == {"track", "box", "score", "landmarks"}
    x0, y0, x1, y1 = face["box"]
    assert x1 > x0 and y1 > y0
    assert 0.8 <= face["score"] <= 1.0  # the default threshold
    points = np.array(face["landmarks"])
    assert points.shape == (5, 2)
    w, h = x1 - x0, y1 - y0
    assert np.all(points[:, 0] >= x0 - 0.1 * w) and np.all(points[:, 0] <= x1 + 0.1 * w), (face["box"], points)
    assert np.all(points[:, 1] >= y0 - 0.1 * h) and np.all(points[:, 1] <= y1 + 0.1 * h), (face["box"], points)
    # eyes above the nose above the mouth corners: an upright face's points in the detector's order
    assert max(points[0, 1], points[1, 1]) < points[2, 1] < min(points[3, 1], points[4, 1])
    for value in [*face["box"], *points.ravel()]:
        assert round(value, 2) == value


def test_json_has_every_frame_of_each_input_keyed_as_given(
    default_run: dict[str, Any], inputs: tuple[str, str], testdata: Path
) -> None:
    photo, clip = inputs
    assert list(default_run) == [photo, clip]
    assert default_run[photo]["kind"] == "photo" and default_run[clip]["kind"] == "video"
    assert (default_run[photo]["width"], default_run[photo]["height"]) == (1126, 661)
    assert (default_run[clip]["width"], default_run[clip]["height"]) == (700, 700)

    (frame,) = default_run[photo]["frames"]
    assert set(frame) == {"index", "time", "faces"}
    assert frame["index"] == 0 and frame["time"] == 0.0
    assert len(frame["faces"]) == 2
    assert sorted(f["track"] for f in frame["faces"]) == [1, 2]

    frames = default_run[clip]["frames"]
    assert [f["index"] for f in frames] == list(range(CLIP_FRAMES))
    expected = frame_times(Path(clip))
    assert [f["time"] for f in frames] == pytest.approx(expected, abs=1e-4)
    assert len(set(round(b - a, 3) for a, b in zip(expected, expected[1:], strict=False))) > 1  # variable timing
    for f in [frame, *frames]:
        for face in f["faces"]:
            check_face(face)


def test_one_face_clip_keeps_one_track_id(default_run: dict[str, Any], inputs: tuple[str, str]) -> None:
    frames = default_run[inputs[1]]["frames"]
    assert all(len(f["faces"]) == 1 for f in frames)
    assert {f["faces"][0]["track"] for f in frames} == {1}


def test_smoothing_changes_a_video_but_not_a_photo(
    default_run: dict[str, Any], unsmoothed_run: dict[str, Any], inputs: tuple[str, str]
) -> None:
    photo, clip = inputs
    assert unsmoothed_run[photo] == default_run[photo]  # one frame: nothing to smooth against

    def landmarks(run: dict[str, Any]) -> np.ndarray:
        return np.array([f["faces"][0]["landmarks"] for f in run[clip]["frames"]])

    smoothed, raw = landmarks(default_run), landmarks(unsmoothed_run)
    assert np.array_equal(smoothed[0], raw[0])  # the filter starts at the first detection
    moved = np.abs(smoothed - raw).max(axis=(1, 2))
    assert (moved[1:] > 0.05).sum() >= CLIP_FRAMES // 2, moved
    # smoothing takes out frame-to-frame jitter: the second difference (acceleration) shrinks
    jitter = [float(np.abs(np.diff(p, n=2, axis=0)).mean()) for p in (smoothed, raw)]
    assert jitter[0] < jitter[1], jitter


def test_detect_every_3_still_has_the_face_on_every_frame(
    testdata: Path, inputs: tuple[str, str], default_run: dict[str, Any], tmp_path: Path
) -> None:
    clip = inputs[1]
    run = run_json(testdata, tmp_path, clip, "--detect-every", "3")
    frames = run[clip]["frames"]
    assert len(frames) == CLIP_FRAMES
    assert all(len(f["faces"]) == 1 for f in frames)
    assert {f["faces"][0]["track"] for f in frames} == {1}
    # the carried boxes stay on the face the detector finds when it runs on every frame
    for f, g in zip(frames, default_run[clip]["frames"], strict=True):
        a, b = np.array(f["faces"][0]["box"]), np.array(g["faces"][0]["box"])
        assert np.abs(a - b).max() < 0.1 * (b[3] - b[1]), (f["index"], a, b)


def test_summary_names_each_input_and_its_tracks(
    testdata: Path, inputs: tuple[str, str], default_run: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    photo, clip = inputs
    capsys.readouterr()
    assert faces(testdata, photo, clip) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{photo}: photo, 1126x661, 2 faces"
    assert [line.split(":")[0].strip() for line in lines[1:3]] == ["track 1", "track 2"]
    header = next(i for i, line in enumerate(lines) if line.startswith(f"{clip}:"))
    times = [f["time"] for f in default_run[clip]["frames"]]
    assert lines[header] == f"{clip}: video, 700x700, {CLIP_FRAMES} frames, {times[0]:.3f}-{times[-1]:.3f} s, 1 track"
    heights = [f["faces"][0]["box"][3] - f["faces"][0]["box"][1] for f in default_run[clip]["frames"]]
    assert lines[header + 1] == (
        f"  track 1: {times[0]:.3f}-{times[-1]:.3f} s, {CLIP_FRAMES} frames,"
        f" median height {float(np.median(heights)):.0f} px"
    )
    assert len(lines) == header + 2


class Terminal(io.StringIO):
    """A stderr that says it is a terminal (of no known size)."""

    def isatty(self) -> bool:
        return True


def test_a_video_draws_a_progress_bar_on_a_terminal_only(
    testdata: Path, inputs: tuple[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    photo, clip = inputs
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    args = ["faces", photo, clip, "--detector-weights", weights(testdata), "--device", "cpu", "--detect-every", "5"]
    assert main(args) == 0
    drawn = terminal.getvalue()
    assert "short.mp4: 100%" in drawn and f"{CLIP_FRAMES}/{CLIP_FRAMES}" in drawn
    assert "two_people" not in drawn  # a photo is one frame: no bar
    assert main([*args, "-q"]) == 0
    assert terminal.getvalue() == drawn  # -q: no bar
    capsys.readouterr()


def test_photo_face_counts_match_the_manifest(testdata: Path, tmp_path: Path) -> None:
    manifest = json.loads((testdata / "manifest.json").read_text(encoding="utf-8"))
    photos = {e["path"]: e["faces"]["detector"] for e in manifest["files"] if e["path"].startswith("photos/")}
    assert len(photos) >= 5
    # the manifest's counts were taken at each photo's own resolution: no downscaling here either
    run = run_json(testdata, tmp_path, *(str(testdata / p) for p in photos), "--det-size", "2000")
    for path, expected in photos.items():
        found = run[str(testdata / path)]["frames"][0]["faces"]
        assert len(found) == expected["count_conf_0_8"], path
        heights = sorted(f["box"][3] - f["box"][1] for f in found)
        assert heights == pytest.approx(sorted(expected["face_heights_px_conf_0_8"]), abs=3), path


def exif_orientation_segment(orientation: int) -> bytes:
    """A JPEG APP1 segment holding only an EXIF orientation tag (big-endian TIFF, one IFD entry)."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8)
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff + ifd
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def test_a_photo_is_turned_upright_by_its_exif_orientation(testdata: Path, tmp_path: Path) -> None:
    upright = testdata / "photos/single_portrait.jpg"
    image = cv2.imread(str(upright), cv2.IMREAD_COLOR)
    assert image is not None
    ok, jpeg = cv2.imencode(".jpg", cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    data = jpeg.tobytes()
    rotated = tmp_path / "rotated.jpg"  # stored lying on its side; orientation 6 says: turn clockwise
    rotated.write_bytes(data[:2] + exif_orientation_segment(6) + data[2:])
    run = run_json(testdata, tmp_path, str(upright), str(rotated))
    a, b = run[str(upright)], run[str(rotated)]
    assert (b["width"], b["height"]) == (a["width"], a["height"]) == (411, 512)
    (fa,) = a["frames"][0]["faces"]
    (fb,) = b["frames"][0]["faces"]
    assert np.abs(np.array(fa["box"]) - np.array(fb["box"])).max() < 8


def test_json_to_stdout_is_only_json(testdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = str(testdata / "photos/single_lowres_240p.jpg")
    capsys.readouterr()
    assert faces(testdata, photo, "--json", "-") == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == [photo]
    assert len(data[photo]["frames"][0]["faces"]) == 1


def test_a_missing_input_is_an_input_error_and_writes_nothing(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "faces.json"
    missing = tmp_path / "nowhere.mp4"
    assert faces(testdata, str(testdata / PHOTO), str(missing), "--json", str(out)) == 3
    assert str(missing) in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "data"),
    [
        # not .txt: FFmpeg's tty demuxer renders any .txt file as a video of the text
        ("notes.pdf", b"not a picture, not a video\n" * 20),
        ("fake.mp4", b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8),
        ("cut.jpg", b""),  # filled below: a real JPEG's first 300 bytes
    ],
)
def test_a_bad_input_after_a_good_one_fails_the_command_and_writes_nothing(
    testdata: Path, tmp_path: Path, name: str, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    if not data:
        data = (testdata / PHOTO).read_bytes()[:300]
    bad = tmp_path / "in" / name
    bad.parent.mkdir()
    bad.write_bytes(data)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = faces(testdata, str(testdata / "photos/no_face_beach.jpg"), str(bad), "--json", str(out_dir / "f.json"))
    assert code == 3
    assert str(bad) in capsys.readouterr().err
    assert list(out_dir.iterdir()) == []  # no JSON, no temporary file left behind


def test_an_existing_json_is_kept_when_the_command_fails(testdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces.json"
    out.write_text('{"before": true}\n', encoding="utf-8")
    bad = tmp_path / "empty.mp4"
    bad.write_bytes(b"")
    assert faces(testdata, str(bad), "--json", str(out)) == 4  # exists, and no -y: refused first
    assert faces(testdata, str(bad), "--json", str(out), "-y") == 3  # with -y: the input is the problem
    assert json.loads(out.read_text(encoding="utf-8")) == {"before": True}


def test_an_empty_cache_uses_the_shipped_detector(testdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces.json"
    assert main(["faces", str(testdata / PHOTO), "--json", str(out), "--device", "cpu", "-q"]) == 0
    shipped = json.loads(out.read_text(encoding="utf-8"))[str(testdata / PHOTO)]["frames"][0]["faces"]
    given = run_json(testdata, tmp_path, str(testdata / PHOTO))[str(testdata / PHOTO)]["frames"][0]["faces"]
    assert len(shipped) == 2 and shipped == given  # the same file as the shared test data's


def test_missing_detector_weights_are_a_weights_error(testdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces.json"
    code = main(["faces", str(testdata / PHOTO), "--json", str(out), "--detector", "resnet50", "-q"])
    assert code == 6  # the cache directory of the tests is empty, and only MobileNet ships
    assert not out.exists()


def test_help_names_the_json_schema_and_shares_the_face_flags() -> None:
    parser = build_parser("panini-video faces")
    text = parser.format_help()
    for flag in ["--json", "--pipeline", "--detect-every", "--smooth", "--max-faces", "--detector-weights"]:
        assert flag in text
    assert '"landmarks"' in text
    args = parser.parse_args(["a.jpg", "b.mp4", "--det-size", "320"])
    assert args.inputs == ["a.jpg", "b.mp4"] and args.det_size == 320 and args.json is None
