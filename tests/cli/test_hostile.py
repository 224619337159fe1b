"""Careless and hostile uses of the CLI: each asserts the exit code, the message, and that no file
was created or changed beyond what the case allows (every file of the folder hashed before and
after; links by their target, so a followed link shows).

The face stages are replaced by a pass-through (as in test_run.py): these cases are about files,
options and inputs, and the real stages are tested end to end in test_restore.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from panini_video.cli import main
from panini_video.records import FrameItem
from panini_video.run import pipeline
from panini_video.runtime.stage import Stage

CLIP = "videos/talking_vfr_700.mp4"  # 135 frames, AAC audio
PHOTO = "photos/single_portrait.jpg"
DETECTOR = "weights/retinaface_mobilenet0.25_Final.pth"
FAST = ["--preset", "ultrafast", "-q"]


@pytest.fixture(autouse=True)
def pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "build_stages", lambda config, info, **kw: [])


@pytest.fixture
def work(tmp_path: Path, testdata: Path) -> Path:
    """A folder with ``in.mp4`` (a real clip), ``photo.jpg`` and ``det.pth`` (RetinaFace weights)."""
    d = tmp_path / "work"
    d.mkdir()
    (d / "in.mp4").write_bytes((testdata / CLIP).read_bytes())
    (d / "photo.jpg").write_bytes((testdata / PHOTO).read_bytes())
    (d / "det.pth").write_bytes((testdata / DETECTOR).read_bytes())
    return d


def snapshot(folder: Path) -> dict[str, tuple[str, str]]:
    """Every entry of ``folder``: (kind, sha256 of a file | target of a link | "" for the rest)."""
    result: dict[str, tuple[str, str]] = {}
    for entry in sorted(folder.rglob("*")):
        rel = str(entry.relative_to(folder))
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            result[rel] = ("link", os.readlink(entry))
        elif stat.S_ISREG(mode):
            result[rel] = ("file", hashlib.sha256(entry.read_bytes()).hexdigest())
        else:
            result[rel] = ("other", "")
    return result


@dataclass(frozen=True)
class Case:
    """One use: ``argv`` with ``{w}`` for the work folder; what it must exit with and say.

    changed: entries that may change (or appear); everything else must stay exactly as it was.
    """

    id: str
    argv: tuple[str, ...]
    code: int
    words: str = ""
    setup: Callable[[Path], None] | None = None
    changed: tuple[str, ...] = ()
    check: Callable[[Path], None] | None = None


def _exists(name: str, data: bytes = b"an earlier result, to keep") -> Callable[[Path], None]:
    return lambda w: (w / name).write_bytes(data)


def _link(name: str, target: str) -> Callable[[Path], None]:
    def make(w: Path) -> None:
        if not (w / target).exists() and not target.startswith("/"):
            (w / target).write_text("the link's target, never to be written through")
        (w / name).symlink_to(target if target.startswith("/") else w / target)

    return make


def _hardlink(name: str, target: str) -> Callable[[Path], None]:
    return lambda w: os.link(w / target, w / name)


def _fifo(name: str) -> Callable[[Path], None]:
    return lambda w: os.mkfifo(w / name)


def _folder(name: str) -> Callable[[Path], None]:
    return lambda w: (w / name).mkdir()


def _copy(name: str, source: str) -> Callable[[Path], None]:
    return lambda w: (w / name).write_bytes((w / source).read_bytes())


def _is_regular_json(name: str) -> Callable[[Path], None]:
    def check(w: Path) -> None:
        assert not (w / name).is_symlink() and json.loads((w / name).read_text())

    return check


def _frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _whole_video(name: str) -> Callable[[Path], None]:
    return lambda w: (_frames(w / name) == 135) or pytest.fail(f"{name} does not have the 135 frames")


IN, OUT = "{w}/in.mp4", "{w}/out.mp4"
# Files: the one rule for every file the tool writes (issue 10, item 1).
FILE_CASES = [
    Case("stats-is-the-input", (IN, OUT, "--stats-json", IN), 2, "is the input"),
    Case("stats-is-the-output", (IN, OUT, "--stats-json", OUT), 2, "is the output"),
    Case("stats-is-a-finished-output", (IN, OUT, "-y", "--stats-json", OUT), 2, "is the output", _exists("out.mp4")),
    Case(
        "stats-through-a-hardlink-to-the-input",
        (IN, OUT, "--stats-json", "{w}/h"),
        2,
        "is the input",
        _hardlink("h", "in.mp4"),
    ),
    Case("stats-symlink-without-y", (IN, OUT, "--stats-json", "{w}/s.json"), 4, "give -y", _link("s.json", "t.txt")),
    Case(
        "stats-symlink-is-replaced-not-followed",
        (IN, OUT, "-y", "--stats-json", "{w}/s.json"),
        0,
        "",
        _link("s.json", "t.txt"),
        changed=("s.json", "out.mp4"),
        check=_is_regular_json("s.json"),
    ),
    Case("stats-in-a-missing-folder", (IN, OUT, "--stats-json", "{w}/no/s.json"), 4, "does not exist"),
    Case("stats-in-an-unwritable-folder", (IN, OUT, "--stats-json", "/proc/panini-s.json"), 4, "not writable"),
    Case("stats-is-a-folder", (IN, OUT, "--stats-json", "{w}/sub"), 4, "is a folder", _folder("sub")),
    Case("stats-is-a-device", (IN, OUT, "--stats-json", "/dev/null"), 4, "is a device"),
    Case("stats-is-a-fifo", (IN, OUT, "--stats-json", "{w}/p"), 4, "is a FIFO", _fifo("p")),
    Case("stats-empty-path", (IN, OUT, "--stats-json="), 2, "an empty path"),
    Case("out-with-a-trailing-slash", (IN, "{w}/out.mp4/"), 4, "names a folder"),
    Case("stats-to-stdout", (IN, OUT, "--stats-json", "-"), 0, "", changed=("out.mp4",)),
    Case("out-exists", (IN, OUT), 4, "give -y (--overwrite)", _exists("out.mp4")),
    Case("out-exists-n-skips", (IN, OUT, "-n"), 0, "", _exists("out.mp4")),
    Case("out-exists-y", (IN, OUT, "-y"), 0, "", _exists("out.mp4"), ("out.mp4",), _whole_video("out.mp4")),
    Case("out-is-the-input", (IN, IN, "-y"), 2, "is the input"),
    Case("out-is-a-symlink-to-the-input", (IN, "{w}/l.mp4", "-y"), 2, "is the input", _link("l.mp4", "in.mp4")),
    Case("out-is-a-hardlink-of-the-input", (IN, "{w}/h.mp4", "-y"), 2, "is the input", _hardlink("h.mp4", "in.mp4")),
    Case(
        "out-is-a-symlink-to-a-device", (IN, "{w}/d.mp4", "-y"), 4, "symlink to a device", _link("d.mp4", "/dev/null")
    ),
    Case("out-is-a-device", (IN, "/dev/null"), 4, "is a device"),
    Case("out-is-a-fifo", (IN, "{w}/p.mp4", "-y"), 4, "is a FIFO", _fifo("p.mp4")),
    Case("out-is-a-folder", (IN, "{w}/d.mp4", "-y"), 4, "is a folder", _folder("d.mp4")),
    Case("out-in-a-missing-folder", (IN, "{w}/no/o.mp4"), 4, "does not exist"),
    Case(
        "in-name-with-a-colon",
        ("{w}/a:b.mp4", OUT),
        0,
        "",
        _copy("a:b.mp4", "in.mp4"),
        ("out.mp4",),
        _whole_video("out.mp4"),
    ),
    Case("in-is-a-device", ("/dev/zero", OUT), 3, "is a device"),
    Case("in-is-a-fifo", ("{w}/p.mp4", OUT), 3, "is a FIFO", _fifo("p.mp4")),
    Case("in-missing", ("{w}/nope.mp4", OUT), 3, "no such file"),
    Case("in-live-url-refused", ("rtsp://127.0.0.1:1/cam", OUT, "--reconnect", "0"), 3, "connection refused"),
    Case("in-unknown-scheme", ("ftp://127.0.0.1/x.mp4", OUT), 2, "not an input this tool reads"),
    Case("out-unknown-scheme", (IN, "ftp://127.0.0.1/x.mp4"), 2, "not an output this tool writes"),
    Case("out-stdout", (IN, "-"), 2, "standard output"),
    Case("faces-json-is-the-input", ("faces", "{w}/photo.jpg", "--json", "{w}/photo.jpg"), 2, "is the input"),
    Case("faces-json-is-a-device", ("faces", "{w}/photo.jpg", "--json", "/dev/null"), 4, "is a device"),
    Case("faces-json-exists", ("faces", "{w}/photo.jpg", "--json", "{w}/f.json"), 4, "give -y", _exists("f.json")),
    Case(
        "faces-json-symlink-replaced",
        ("faces", "{w}/photo.jpg", "-y", "--json", "{w}/f.json"),
        0,
        "",
        _link("f.json", "t.txt"),
        ("f.json",),
        _is_regular_json("f.json"),
    ),
    Case("import-output-is-a-device", ("weights", "import", "{w}/det.pth", "--output", "/dev/null"), 4, "is a device"),
    Case(
        "import-output-is-the-input",
        ("weights", "import", "{w}/det.pth", "--output", "{w}/det.pth", "-y"),
        2,
        "is the input",
    ),
    Case(
        "import-output-exists",
        ("weights", "import", "{w}/det.pth", "--output", "{w}/o.pth"),
        4,
        "give -y",
        _exists("o.pth"),
    ),
    Case(
        "import-output-symlink-replaced",
        ("weights", "import", "{w}/det.pth", "--output", "{w}/o.pth", "-y"),
        0,
        "",
        _link("o.pth", "t.txt"),
        ("o.pth",),
        lambda w: (
            (not (w / "o.pth").is_symlink() and (w / "o.pth").read_bytes() == (w / "det.pth").read_bytes())
            or pytest.fail("o.pth is not a copy of det.pth")
        ),
    ),
    Case("bench-json-is-the-input", ("bench", "io", IN, "--json", IN), 2, "is the input"),
    Case("bench-json-is-a-device", ("bench", "model", "--json", "/dev/null"), 4, "is a device"),
    Case("bench-json-exists", ("bench", "model", "--json", "{w}/b.json"), 4, "give -y", _exists("b.json")),
    Case("init-output-is-a-device", ("weights", "init", "tiny", "--output", "/dev/null", "-y"), 4, "is a device"),
]

# Options and preset values (items 2 and 3): exit 2 naming the option and the range, before any work.
BAD_FLAGS: list[tuple[str, str, str]] = [
    ("--det-size", "1", "--det-size"),
    ("--det-size", "100000", "--det-size"),
    ("--det-size", "-5", "--det-size"),
    ("--det-size", "x", "--det-size"),
    ("--det-threshold", "0", "--det-threshold"),
    ("--det-threshold", "1.5", "--det-threshold"),
    ("--det-threshold", "nan", "--det-threshold"),
    ("--detect-every", "0", "--detect-every"),
    ("--dre-ema", "nan", "--dre-ema"),
    ("--dre-ema", "2", "--dre-ema"),
    ("--dre-ema", "-inf", "--dre-ema"),
    ("--smooth", "nan", "--smooth"),
    ("--smooth", "inf", "--smooth"),
    ("--smooth", "-1", "--smooth"),
    ("--smooth", "1e308", "--smooth"),
    ("--queue-size", "0", "--queue-size"),
    ("--queue-size", "10000000", "--queue-size"),
    ("--batch-size", "0", "--batch-size"),
    ("--batch-size", "2.5", "--batch-size"),
    ("--upscale", "0", "--upscale"),
    ("--upscale", "1000", "--upscale"),
    ("--max-faces", "0", "--max-faces"),
    ("--min-face-size", "-1", "--min-face-size"),
    ("--min-face-size", "inf", "--min-face-size"),
    ("--max-memory", "1K", "--max-memory"),
    ("--max-memory", "banana", "--max-memory"),
    ("--max-memory", "nanG", "--max-memory"),
    ("--crf", "-5", "--crf"),
    ("--crf", "99", "--crf"),
    ("--crf", "1e999", "--crf"),
    ("--preset", "banana", "--preset"),
    ("--pix-fmt", "rgb24", "--pix-fmt"),
    ("--pix-fmt", "pal8", "--pix-fmt"),
    ("--pix-fmt", "nosuch", "--pix-fmt"),
    ("--codec", "aac", "--codec"),
    ("--codec", "nosuch", "--codec"),
    ("--precision", "fp8", "--precision"),
    ("--detector", "yolo", "--detector"),
    ("--dre-mode", "scene", "--dre-mode"),
    ("--device", "banana", "banana"),
    ("--backpressure", "drop-oldest", "drop-oldest"),
    ("--pipeline", "live", "drop-oldest"),
    ("--pipeline", "nosuch", "unknown pipeline preset"),
    ("--rtsp-transport", "http", "--rtsp-transport"),
    ("--input-fps", "0", "--input-fps"),
    ("--input-size", "12", "--input-size"),
    ("--open-timeout", "0", "--open-timeout"),
    ("--stall-timeout", "0", "--stall-timeout"),
    ("--stall-timeout", "nan", "--stall-timeout"),
    ("--reconnect", "often", "--reconnect"),
    ("--reconnect", "-2", "--reconnect"),
    ("--max-latency", "0", "--max-latency"),
    ("--late", "sometimes", "--late"),
    ("--bitrate", "fast", "--bitrate"),
    ("--bitrate", "10", "--bitrate"),
    ("--keyint", "0", "--keyint"),
    ("--stats-every", "0", "--stats-every"),
    ("--input-option", "noequals", "--input-option"),
    ("--deinterlace", "yadif", "--deinterlace"),
    ("--field-order", "top", "--field-order"),
    ("--assume-colorspace", "srgb", "--assume-colorspace"),
    ("--assume-range", "studio", "--assume-range"),
]

BAD_PRESET_KEYS: list[tuple[str, str]] = [
    ("[runtime]\nqueue_size = 0", "runtime.queue_size"),
    ("[detect]\ndet_size = -5", "detect.det_size"),
    ("[detect]\nnms_threshold = 5", "detect.nms_threshold"),
    ("[restore]\ndre_warmup = 0", "restore.dre_warmup"),
    ("[restore]\nmax_wait_ms = -1", "restore.max_wait_ms"),
    ("[restore]\nbatch_size = '8'", "restore.batch_size"),
    ("[smooth]\nstrength = nan", "smooth.strength"),
    ("[detect]\nthreshold = inf", "detect.threshold"),
    ("[runtime]\nbackpressure = 'sometimes'", "runtime.backpressure"),
    ("[runtime]\nmax_memory = '12 parsecs'", "max_memory"),
    ("annotate = 1", "annotate"),
    ("[track]\nmax_misses = 1e12", "track.max_misses"),
    ("[detect]\ntreshold = 0.5", "detect.treshold"),
    ("[io]\ncrf = -5", "--crf"),
    ("[io]\npreset = 'banana'", "--preset"),
]


def _argv(case_argv: Iterable[str], w: Path) -> list[str]:
    return [a.replace("{w}", str(w)) for a in case_argv]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.err


def _assert_only_changed(
    before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]], allowed: Iterable[str]
) -> None:
    allowed = set(allowed)
    for name in set(before) | set(after):
        if name in allowed:
            continue
        assert before.get(name) == after.get(name), f"{name}: {before.get(name)} -> {after.get(name)}"


@pytest.mark.parametrize("case", FILE_CASES, ids=[c.id for c in FILE_CASES])
def test_files(case: Case, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if case.setup is not None:
        case.setup(work)
    before = snapshot(work)
    code, err = _run(_argv(case.argv, work), capsys)
    assert code == case.code, err
    assert case.words in err
    if code != 0:
        assert "Traceback" not in err and err.startswith("panini-video")
    _assert_only_changed(before, snapshot(work), case.changed)
    if case.check is not None:
        case.check(work)


@pytest.mark.parametrize(("flag", "value", "words"), BAD_FLAGS, ids=[f"{f}={v}" for f, v, _ in BAD_FLAGS])
def test_bad_flags(flag: str, value: str, words: str, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(work)
    code, err = _run([str(work / "in.mp4"), str(work / "out.mp4"), flag, value], capsys)
    assert code == 2, err
    assert words in err and "Traceback" not in err
    assert snapshot(work) == before


@pytest.mark.parametrize(("toml", "words"), BAD_PRESET_KEYS, ids=[t.replace("\n", " ") for t, _ in BAD_PRESET_KEYS])
def test_bad_preset_values(
    toml: str, words: str, work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preset = tmp_path / "bad.toml"
    preset.write_text(toml + "\n")
    before = snapshot(work)
    code, err = _run([str(work / "in.mp4"), str(work / "out.mp4"), "--pipeline", str(preset)], capsys)
    assert code == 2, err
    assert words in err and "Traceback" not in err
    assert snapshot(work) == before


# Inputs that change during the run (item 4) -------------------------------------------------------


class ChangeInput(Stage):
    """At frame ``at``, cuts the input to half its size or appends to it."""

    name = "change-input"

    def __init__(self, path: Path, at: int, how: str) -> None:
        self.path, self.at, self.how = path, at, how

    def process(self, item: FrameItem) -> Iterable[FrameItem]:
        if item.index == self.at:
            if self.how == "shrink":
                os.truncate(self.path, self.path.stat().st_size // 2)
            else:
                with open(self.path, "ab") as f:
                    f.write(b"\0" * 4096)
        return [item]


@pytest.mark.parametrize("how", ["shrink", "grow"])
def test_an_input_that_changes_during_the_run_is_an_input_error(
    how: str, work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = work / "in.mp4"
    monkeypatch.setattr(pipeline, "build_stages", lambda config, info, **kw: [ChangeInput(src, 3, how)])
    code, err = _run([str(src), str(work / "out.mp4"), *FAST, "--queue-size", "1"], capsys)
    assert code == 3, err
    assert "changed while it was read" in err
    assert sorted(p.name for p in work.iterdir()) == ["det.pth", "in.mp4", "photo.jpg"]


# Audio the output container cannot take as it is (item 5) -----------------------------------------


def _pcm_mkv(path: Path, frames: int = 25) -> Path:
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        a = out.add_stream("pcm_s16le", rate=48000)
        a.layout = "stereo"
        t = np.arange(48000 * frames // 25) / 48000
        tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 8, np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                out.mux(p)
        for start in range(0, len(tone), 1920):
            chunk = np.repeat(tone[start : start + 1920][None, :], 2, axis=0).T.reshape(1, -1)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="s16", layout="stereo")
            af.sample_rate, af.pts = 48000, start
            for p in a.encode(af):
                out.mux(p)
        for s in (v, a):
            for p in s.encode(None):
                out.mux(p)
    return path


@pytest.mark.parametrize(("ext", "codec"), [(".mp4", "aac"), (".webm", "opus"), (".mkv", "pcm_s16le")])
def test_pcm_audio_is_transcoded_when_the_container_cannot_take_it(
    ext: str, codec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _pcm_mkv(tmp_path / "pcm.mkv")
    dst = tmp_path / f"out{ext}"
    code, err = _run([str(src), str(dst), "-q"], capsys)
    assert code == 0, err
    with av.open(str(dst)) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == codec
        samples = sum(f.samples for f in c.decode(audio))
    assert abs(samples / 48000 - 1.0) < 0.05  # the whole second of audio is there
    assert _frames(dst) == 25


# Memory counted in bytes (item 7) ------------------------------------------------------------------


def _clip(
    path: Path,
    size: tuple[int, int],
    frames: int,
    rate: Fraction = Fraction(25),
    fmt: str | None = None,
    codec: str = "libx264",
) -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        options = {"preset": "ultrafast"} if codec == "libx264" else {"x265-params": "log-level=error"}
        v = out.add_stream(codec, rate=rate, options=options)
        v.width, v.height, v.pix_fmt = *size, "yuv420p"
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), i * 10 % 256, np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    return path


def test_big_frames_get_shallow_queues_within_the_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _clip(tmp_path / "uhd.mp4", (3840, 2160), 6)
    stats = tmp_path / "s.json"
    code, err = _run(
        [str(src), str(tmp_path / "o.mp4"), *FAST, "--max-memory", "512M", "--stats-json", str(stats)], capsys
    )
    assert code == 0, err
    memory = json.loads(stats.read_text())["memory"]
    # frames in flight are yuv420p pictures: 1.5 bytes a pixel
    assert memory["frame_bytes"] == 3840 * 2160 * 3 // 2 and memory["budget_bytes"] == 2**29
    assert memory["queue_size"] < memory["configured_queue_size"] == 8
    assert memory["bytes_in_flight"] <= 2**29 and memory["within_budget"]
    assert _frames(tmp_path / "o.mp4") == 6
    small = _clip(tmp_path / "small.mp4", (320, 240), 6)
    code, err = _run(
        [str(small), str(tmp_path / "o2.mp4"), *FAST, "--max-memory", "1G", "--stats-json", str(stats), "-y"], capsys
    )
    assert code == 0, err
    assert json.loads(stats.read_text())["memory"]["queue_size"] == 8  # small frames: the configured depth


# Raw streams keep their header's rate (item 8) -----------------------------------------------------


@pytest.mark.parametrize(("codec_fmt", "codec"), [("h264", "libx264"), ("hevc", "libx265")])
def test_a_raw_stream_keeps_its_header_rate(
    codec_fmt: str, codec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _clip(tmp_path / f"raw.{codec_fmt}", (64, 64), 30, Fraction(30000, 1001), fmt=codec_fmt, codec=codec)
    dst = tmp_path / "o.mp4"
    code, err = _run([str(src), str(dst), *FAST], capsys)
    assert code == 0, err
    with av.open(str(dst)) as c:
        vs = c.streams.video[0]
        times = [float(f.pts * vs.time_base) for f in c.decode(vs)]
    assert len(times) == 30
    assert vs.average_rate == Fraction(30000, 1001)
    assert np.allclose(np.diff(times), 1001 / 30000, atol=1e-4)


def test_the_table_has_every_option_of_the_main_command() -> None:
    """Every numeric or choice option of the main command is walked with bad values above."""
    from panini_video.cli.run import build_parser

    parser = build_parser("panini-video")
    valued = {
        s
        for a in parser._actions
        if a.option_strings and a.nargs is None and a.type is not None or a.choices
        for s in a.option_strings
        if s.startswith("--")
    }
    walked = {flag for flag, _, _ in BAD_FLAGS}
    assert valued - walked == set(), f"options without a bad-value case: {sorted(valued - walked)}"


if sys.platform != "linux":  # /proc, /dev/null and FIFOs as used above are Linux facts
    pytestmark = pytest.mark.skip(reason="the hostile cases use Linux paths (/proc, /dev/null)")
