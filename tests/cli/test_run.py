"""``panini-video IN OUT`` end to end on real clips: frames, timestamps, audio, failures, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from panini_video.cli import main
from panini_video.cli.progress import ProgressBar
from panini_video.cli.run import build_parser, overrides_from
from panini_video.config import load_config
from panini_video.errors import CorruptInputError, InputError, ProcessingError, UsageError
from panini_video.io import probe
from panini_video.records import Frame, FrameItem
from panini_video.run import pipeline
from panini_video.run.pipeline import run_pipeline
from panini_video.runtime.stage import Stage

CLIP = "videos/talking_vfr_700.mp4"  # 135 frames, variable frame timing, AAC audio
DETECTOR = "weights/retinaface_mobilenet0.25_Final.pth"


@pytest.fixture(autouse=True)
def file_pipeline_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests hold the file pipeline to its guarantees with no face stages (pass-through).

    The real face stages run end to end in test_restore.py; the subprocess cases below that run
    ``python -m panini_video`` get them (with ``--annotate``).
    """
    monkeypatch.setattr(pipeline, "build_stages", lambda config, info, **kw: [])


class RaiseAt(Stage):
    name = "failing-test-stage"

    def __init__(self, at: int) -> None:
        self.at = at

    def process(self, item: FrameItem) -> Iterable[FrameItem]:
        if item.index == self.at:
            raise RuntimeError(f"test stage fails at frame {self.at}")
        return [item]


class Invert(Stage):
    name = "invert"

    def process(self, item: FrameItem) -> Iterable[FrameItem]:
        f = item.frame
        return [FrameItem(Frame(f.index, f.pts, f.time_base, 255 - f.rgb()))]


def decode(path: Path) -> dict[str, Any]:
    """Video pts (as times), a few frames' pixels, and the audio streams of a file."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        times, images = [], []
        for i, f in enumerate(c.decode(vs)):
            times.append(Fraction(f.pts) * vs.time_base)
            if i % 30 == 0:
                images.append(f.to_ndarray(format="rgb24"))
        audio = [(a.codec_context.name, a.rate, a.channels, _seconds(a.duration, a.time_base)) for a in c.streams.audio]
    return {"times": times, "images": images, "audio": audio}


def _seconds(duration: int | None, time_base: Fraction | None) -> float | None:
    return None if duration is None or time_base is None else round(float(duration * time_base), 2)


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def clip(testdata: Path) -> Path:
    return testdata / CLIP


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def test_a_run_keeps_every_frame_timestamp_and_the_audio(clip: Path, out_dir: Path, tmp_path: Path) -> None:
    out, stats = out_dir / "restored.mp4", tmp_path / "stats.json"
    assert main([str(clip), str(out), "-q", "--stats-json", str(stats), "--crf", "18", "--preset", "ultrafast"]) == 0
    src, dst = decode(clip), decode(out)
    assert len(dst["times"]) == len(src["times"]) == 135
    assert dst["times"] == src["times"]  # exact, variable frame timing included
    assert dst["audio"] == src["audio"] and dst["audio"]
    for a, b in zip(src["images"], dst["images"], strict=True):  # pass-through: the same pictures
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3.0
    report = json.loads(stats.read_text())
    assert report["frames_in"] == report["frames_out"] == 135 and report["dropped"] == 0
    assert report["config"]["io"]["crf"] == 18 and report["config"]["io"]["preset"] == "ultrafast"
    assert report["config"]["runtime"]["backpressure"] == "block"
    names = [s["name"] for s in report["graph"]["stages"]]
    assert names[0] == "source" and names[-2:] == ["reorder", "encode"]
    assert all(s["items_in"] == 135 for s in report["graph"]["stages"][1:])
    assert leftovers(out_dir) == ["restored.mp4"]


def test_injected_stages_change_the_frames(clip: Path, out_dir: Path) -> None:
    out = out_dir / "inverted.mkv"
    report = run_pipeline(clip, out, load_config("default", {"io": {"preset": "ultrafast"}}), stages=[Invert()])
    assert report.frames_in == report.frames_out == 135
    src, dst = decode(clip), decode(out)
    for a, b in zip(src["images"], dst["images"], strict=True):
        assert np.abs((255 - a.astype(int)) - b.astype(int)).mean() < 3.0
    assert [s.name for s in report.graph.stages] == ["source", "invert", "reorder", "encode"]


def test_a_failing_stage_gives_the_processing_exit_code_and_no_output(
    clip: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pipeline, "build_stages", lambda config, info, **kw: [RaiseAt(40)])
    t = time.monotonic()
    code = main([str(clip), str(out_dir / "out.mp4"), "-q"])
    assert code == ProcessingError.exit_code
    assert time.monotonic() - t < 30  # returned, did not hang
    assert "test stage fails at frame 40" in capsys.readouterr().err
    assert leftovers(out_dir) == []  # neither the output nor the temporary file


def test_a_failure_keeps_an_existing_output_as_it_was(clip: Path, out_dir: Path) -> None:
    out = out_dir / "out.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(ProcessingError) as info:
        run_pipeline(clip, out, stages=[RaiseAt(3)])
    assert isinstance(info.value.__cause__, RuntimeError)
    assert out.read_bytes() == b"previous result" and leftovers(out_dir) == ["out.mp4"]


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: _file(d / "empty.mp4", b""), "empty"),
        (lambda d: _file(d / "notes.mp4", b"not a video\n" * 100), "not a media file"),
    ],
    ids=["missing", "zero-byte", "not-media"],
)
def test_bad_input_gives_the_input_exit_code(
    make: Any, fragment: str, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make(tmp_path)
    assert main([str(src), str(out_dir / "out.mp4"), "-q"]) == InputError.exit_code
    err = capsys.readouterr().err
    assert fragment in err and src.name in err
    assert leftovers(out_dir) == []


def test_a_truncated_input_is_an_input_error(clip: Path, tmp_path: Path, out_dir: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    with pytest.raises(InputError):
        run_pipeline(cut, out_dir / "out.mp4")
    assert leftovers(out_dir) == []


def test_in_equal_out_is_refused(clip: Path, tmp_path: Path) -> None:
    copy = tmp_path / "same.mp4"
    copy.write_bytes(clip.read_bytes())
    before = copy.read_bytes()
    assert main([str(copy), str(tmp_path / "." / "same.mp4"), "-q"]) == UsageError.exit_code
    with pytest.raises(UsageError):
        run_pipeline(copy, copy)
    assert copy.read_bytes() == before


def test_unknown_preset_and_bad_flags_are_usage_errors(clip: Path, out_dir: Path) -> None:
    assert main([str(clip), str(out_dir / "o.mp4"), "--pipeline", "nosuch", "-q"]) == UsageError.exit_code
    assert main([str(clip), str(out_dir / "o.mp4"), "--detect-every", "0"]) == UsageError.exit_code
    with pytest.raises(SystemExit) as info:  # not a number at all: argparse's own refusal, also exit 2
        main([str(clip), str(out_dir / "o.mp4"), "--detect-every", "x"])
    assert info.value.code == 2
    assert leftovers(out_dir) == []


def test_flags_override_the_preset_and_unset_flags_leave_it() -> None:
    parser = build_parser("panini-video")
    args = parser.parse_args(["a.mp4", "b.mp4", "--pipeline", "archival", "--queue-size", "3", "--no-color-match"])
    config = load_config(args.pipeline, overrides_from(args))
    preset = load_config("archival")
    assert preset.blend.color_match and not config.blend.color_match
    assert config.runtime.queue_size == 3 and config.detect == preset.detect and config.io == preset.io
    args = parser.parse_args(["a.mp4", "b.mp4"])
    assert load_config(args.pipeline, overrides_from(args)) == load_config("default")
    args = parser.parse_args(["a", "b", "--crf", "20", "--det-threshold", "0.6", "--model", "tiny", "--annotate"])
    config = load_config(args.pipeline, overrides_from(args))
    assert (config.io.crf, config.detect.threshold, config.restore.model, config.annotate) == (20, 0.6, "tiny", True)


def test_every_preset_loads_and_the_live_one_drops() -> None:
    presets = {name: load_config(name) for name in ["default", "archival", "live", "preview", "fast"]}
    assert presets["live"].runtime.backpressure == "drop-oldest"
    assert all(p.runtime.backpressure == "block" for n, p in presets.items() if n != "live")
    assert presets["preview"].annotate and presets["archival"].detect.detector == "resnet50"


def test_drop_oldest_end_to_end_keeps_timestamps_increasing(clip: Path, out_dir: Path) -> None:
    class Slow(Stage):
        name = "slow"

        def process(self, item: FrameItem) -> Iterable[FrameItem]:
            time.sleep(0.02)
            return [item]

    out = out_dir / "live.mp4"
    config = load_config("live", {"runtime": {"queue_size": 1}})
    report = run_pipeline(clip, out, config, stages=[Slow()])
    times = decode(out)["times"]
    assert report.dropped > 0 and report.frames_in == 135
    assert len(times) == report.frames_out == 135 - report.dropped
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert set(times) <= set(decode(clip)["times"])  # the frames kept keep their own timestamps


class _FakeTerminal:
    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.text = ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


def test_progress_bar_only_on_a_terminal_and_not_with_quiet(clip: Path) -> None:
    assert not ProgressBar.wanted(False, _FakeTerminal(False))
    assert not ProgressBar.wanted(True, _FakeTerminal(True))
    term = _FakeTerminal(True)
    assert ProgressBar.wanted(False, term)
    bar = ProgressBar(term)
    bar.start(probe(clip))
    for done in (10, 10, 135):
        bar.update(done)
    bar.close()
    assert "135/135" in term.text


def _run_cli_on_a_pty(args: list[str]) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal (which reports a 0x0 size)."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "panini_video", *args], stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_the_progress_bar_is_drawn_on_a_terminal_and_nowhere_else(clip: Path, out_dir: Path, testdata: Path) -> None:
    # The real face stages in preview mode: detector and tracker, no Panini weights needed.
    real = ["--preset", "ultrafast", "--annotate", "--detector-weights", str(testdata / DETECTOR)]
    code, text = _run_cli_on_a_pty([str(clip), str(out_dir / "tty.mp4"), *real])
    assert code == 0 and "135/135" in text and "frame/s" in text
    code, text = _run_cli_on_a_pty([str(clip), str(out_dir / "quiet.mp4"), *real, "-q"])
    assert code == 0 and "135/135" not in text
    proc = subprocess.run(
        [sys.executable, "-m", "panini_video", str(clip), str(out_dir / "pipe.mp4"), *real],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # not a terminal: no bar, one line that says what was done
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "annotated 135 frames" in lines[0] and lines[0].endswith("pipe.mp4"), lines
    quiet = subprocess.run(
        [sys.executable, "-m", "panini_video", str(clip), str(out_dir / "pipe2.mp4"), *real, "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert quiet.returncode == 0 and quiet.stderr == ""


SLOW_RUN = textwrap.dedent(
    """
    import sys, time
    from panini_video.run import pipeline
    from panini_video.runtime.stage import Stage

    class Slow(Stage):
        name = "slow"
        def process(self, item):
            time.sleep(0.1)
            return [item]

    pipeline.build_stages = lambda config, info, **kw: [Slow()]
    from panini_video.cli import console_main
    console_main()
    """
)


def _start_slow_run(script: Path, clip: Path, out_dir: Path, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(script), str(clip), str(out_dir / "out.mp4"), "-q", *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not leftovers(out_dir) and time.monotonic() < deadline:  # the temporary file appears
        time.sleep(0.05)
    assert leftovers(out_dir), "the run never started writing"
    time.sleep(0.3)
    return proc


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGTERM], [signal.SIGINT], [signal.SIGHUP], [signal.SIGQUIT], [signal.SIGINT, signal.SIGINT]],
    ids=["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGINT-twice"],
)
def test_a_signal_stops_the_run_with_128_plus_its_number_and_no_output(
    signals: list[signal.Signals], clip: Path, tmp_path: Path, out_dir: Path
) -> None:
    script = tmp_path / "slow_run.py"
    script.write_text(SLOW_RUN)
    proc = _start_slow_run(script, clip, out_dir)
    try:
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.05)  # Ctrl-C twice, 50 ms apart: the second lands during the clean-up
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signals[0], err  # never 134 (a native abort)
    assert f"interrupted ({signals[0].name})" in err and "no output was written" in err
    assert "terminate called" not in err and "Traceback" not in err
    assert leftovers(out_dir) == []


def test_the_next_run_removes_what_a_killed_one_left(clip: Path, tmp_path: Path, out_dir: Path) -> None:
    script = tmp_path / "slow_run.py"
    script.write_text(SLOW_RUN)
    proc = _start_slow_run(script, clip, out_dir)
    proc.kill()  # SIGKILL: no handler runs, the temporary file stays
    proc.communicate(timeout=20)
    left = leftovers(out_dir)
    assert left and f"partial-{proc.pid}-" in left[0]
    other = out_dir / ".unrelated.partial-notours.mp4"  # not our pattern: kept
    other.write_bytes(b"x")
    assert main([str(clip), str(out_dir / "next.mp4"), "-q", "--preset", "ultrafast", "--annotate"]) == 0
    assert leftovers(out_dir) == [other.name, "next.mp4"]


@pytest.mark.slow
def test_memory_stays_flat_for_a_ten_times_longer_input(tmp_path: Path, testdata: Path) -> None:
    # The child reports its own peak (VmHWM): a child's ru_maxrss on Linux includes the pre-exec
    # copy of this (larger) test process, which would make both peaks equal.
    script = tmp_path / "run_and_report_peak.py"
    script.write_text(
        "import sys\n"
        "from panini_video.bench.io import peak_rss_mib\n"
        "from panini_video.cli import main\n"
        "code = main(sys.argv[2:])\n"
        "open(sys.argv[1], 'w').write(str(peak_rss_mib()))\n"
        "sys.exit(code)\n"
    )
    peaks = {}
    for frames in (100, 1000):  # 100: long enough for every queue and the encoder's look-ahead to fill
        src, out, peak = tmp_path / f"in{frames}.mp4", tmp_path / f"out{frames}.mp4", tmp_path / f"peak{frames}"
        _synthetic_clip(src, frames)
        # The real face stages (preview mode: detector and tracker run on every frame).
        args = [str(src), str(out), "-q", "--annotate", "--detector-weights", str(testdata / DETECTOR)]
        subprocess.run([sys.executable, str(script), str(peak), *args], check=True, timeout=300)
        peaks[frames] = float(peak.read_text())
        with av.open(str(out)) as c:
            assert c.streams.video[0].frames == frames and c.streams.audio
    assert peaks[1000] <= 1.15 * peaks[100], peaks


def _synthetic_clip(path: Path, frames: int, size: tuple[int, int] = (320, 180), fps: int = 25) -> None:
    """A scrolling noisy gradient (x264) with a 440 Hz tone (AAC), ``frames`` frames long."""
    rng = np.random.default_rng(0)
    w, h = size
    base = np.add.outer(np.arange(h), np.arange(w)).astype(np.uint8)
    with av.open(str(path), "w") as c:
        video = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        audio = c.add_stream("aac", rate=44100)
        audio.layout = "stereo"
        sample = 0
        for i in range(frames):
            k = np.uint8(i % 256)  # uint8 arithmetic wraps: the gradient scrolls
            img = np.stack([base + k, base[::-1] + k + k, base[:, ::-1] - k], axis=-1)
            img = img + rng.integers(0, 8, img.shape, dtype=np.uint8)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            vf.pts = i
            for p in video.encode(vf):
                c.mux(p)
            while sample < (i + 1) * 44100 / fps:
                tone = (0.2 * np.sin(2 * np.pi * 440 * (sample + np.arange(1024)) / 44100)).astype(np.float32)
                af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                af.sample_rate, af.pts = 44100, sample
                for p in audio.encode(af):
                    c.mux(p)
                sample += 1024
        for stream in (video, audio):
            for p in stream.encode(None):
                c.mux(p)


def test_corrupt_input_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.mkv"
    bad.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(CorruptInputError, match="garbage.mkv"):
        run_pipeline(bad, tmp_path / "o.mp4")


def test_a_signal_after_the_final_rename_says_the_output_is_complete(
    clip: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from panini_video.cli import run as run_module
    from panini_video.cli.signals import SignalInterrupted

    def signal_arrives(path: str, report: object) -> None:  # SIGTERM while the stats are written
        raise SignalInterrupted(signal.SIGTERM)

    monkeypatch.setattr(run_module, "write_stats", signal_arrives)
    out = out_dir / "out.mp4"
    code = main([str(clip), str(out), "-q", "--preset", "ultrafast", "--stats-json", str(out_dir / "s.json")])
    err = capsys.readouterr().err
    assert code == 128 + signal.SIGTERM
    assert f"after {out} was written complete" in err and "no output was written" not in err
    assert len(decode(out)["times"]) == 135
