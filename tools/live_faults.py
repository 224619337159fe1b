"""Measure how a live run rides out faults, against Debian's GStreamer RTSP server on 127.0.0.1.

    .venv/bin/python tools/live_faults.py [--clip PATH] [--rounds N]

Three figures, each over ``--rounds`` runs of the real pipeline (LiveSource -> detect, track,
restore with seeded random ``tiny`` weights -> LiveSink recording), printed as a table:

- return to first restored frame out: the server is killed for a second and started again on
  its port; from the moment it listens again to the moment the first frame of the new
  connection has been restored and encoded (the reconnection backoff included);
- stall detection: the server is frozen (SIGSTOP: the connection stays open, nothing is sent);
  from the freeze to the source declaring the stall (``--stall-timeout`` 2 s);
- drops under an overloaded restorer: the restorer made to take 150 ms a face at 20 fps with a
  500 ms budget: frames in, out, late (passed unrestored), dropped, latency p95.

It needs the servers of ``tools/test-servers.sh`` and runs from the repository root.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from panini_video.config import RunConfig  # noqa: E402
from panini_video.models import VARIANTS, PaniniNet  # noqa: E402
from panini_video.records import Frame  # noqa: E402
from panini_video.run.live_sink import LiveSink  # noqa: E402
from panini_video.run.live_source import LiveSource  # noqa: E402
from panini_video.run.pipeline import build_stages, run  # noqa: E402
from tests.run.test_live_run import Slow  # noqa: E402
from tests.servers.rtsp import rtsp_server, rtsp_unavailable  # noqa: E402

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared/testdata/videos/lowq_real_388x512_noaudio.mp4"


class Stamped(LiveSink):
    """A recording that notes when the first frame of each connection (epoch) was written."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.first_out: dict[int, float] = {}

    def write(self, frame: Frame) -> None:
        super().write(frame)
        self.first_out.setdefault(frame.epoch, time.monotonic())


def config(**live: Any) -> RunConfig:
    return RunConfig().with_overrides(
        {
            "runtime": {"queue_size": 2, "backpressure": "drop-oldest"},
            "detect": {"batch_frames": 1, "det_size": 480, "detect_every": 3},
            "restore": {"batch_size": 1, "max_wait_ms": 0.0, "device": "cpu"},
            "io": {"preset": "veryfast"},
            "live": {"backoff_initial": 0.25, "backoff_max": 2.0, "stall_timeout": 2.0, **live},
        }
    )


def in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def body() -> None:
        try:
            out["report"] = fn()
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            out["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, out


def return_to_first_out(clip: Path, model: PaniniNet, tmp: Path) -> float:
    cfg = config()
    with rtsp_server(clip) as server:
        source = LiveSource(server.url, cfg.live)
        sink = Stamped(str(tmp / "rec.mkv"), cfg.io, cfg.live)
        stages = build_stages(cfg, source.info, model=model)
        t, out = in_thread(lambda: run(source, sink, cfg, stages=stages))
        time.sleep(3.0)
        server.kill()
        time.sleep(1.0)
        server.start()
        back = time.monotonic()
        deadline = back + 20
        while 1 not in sink.first_out and time.monotonic() < deadline:
            time.sleep(0.01)
        source.stop()
        t.join(15)
    if "error" in out:
        raise out["error"]
    if 1 not in sink.first_out:
        raise RuntimeError("no frame of the new connection within 20 s")
    return sink.first_out[1] - back


def stall_detection(clip: Path) -> float:
    cfg = config(reconnect=0)
    with rtsp_server(clip) as server:
        source = LiveSource(server.url, cfg.live)
        frames = source.frames(4)
        for _ in range(20):
            next(frames)
        server.freeze()
        frozen = time.monotonic()
        try:
            for _ in frames:
                pass
        except Exception:  # noqa: BLE001 - the StallError is the point
            pass
        detected = time.monotonic()
        source.close()
        server.thaw()
    return detected - frozen


def overloaded(clip: Path, model: PaniniNet, tmp: Path) -> dict[str, Any]:
    cfg = config(max_latency_ms=500.0, late="pass")
    with rtsp_server(clip) as server:
        source = LiveSource(server.url, cfg.live)
        stages = build_stages(cfg, source.info, model=model)
        stages[-1] = Slow(stages[-1], 0.15)
        threading.Timer(8.0, source.stop).start()
        report = run(source, LiveSink(str(tmp / "slow.mkv"), cfg.io, cfg.live), cfg, stages=stages)
    live = report.live or {}
    return {
        "frames_in": live["frames_in"],
        "frames_out": report.frames_out,
        "late": live["late"]["late_passed"] + live["late"]["late_dropped"],
        "dropped": live["dropped"]["total"],
        "p95_ms": live["latency"]["p95_ms"],
        "restored": report.stage_stats.get("restore", {}).get("faces", 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    why = rtsp_unavailable()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    model = PaniniNet(VARIANTS["tiny"]).eval()
    with tempfile.TemporaryDirectory() as tmp:
        back = [return_to_first_out(args.clip, model, Path(tmp)) for _ in range(args.rounds)]
        stalls = [stall_detection(args.clip) for _ in range(args.rounds)]
        loads = [overloaded(args.clip, model, Path(tmp)) for _ in range(args.rounds)]
    print(f"clip {args.clip.name}, {args.rounds} rounds, tiny on the CPU ({torch.get_num_threads()} threads)")
    print(
        "return to first restored frame out: "
        + ", ".join(f"{x:.2f}" for x in back)
        + f" s (median {statistics.median(back):.2f})"
    )
    print(
        "stall detection (stall timeout 2 s): "
        + ", ".join(f"{x:.2f}" for x in stalls)
        + f" s (median {statistics.median(stalls):.2f})"
    )
    print("overloaded restorer (150 ms a face, 20 fps in, 500 ms budget, 8 s):")
    for r in loads:
        print(
            f"  in {r['frames_in']}, out {r['frames_out']}, restored {r['restored']}, late {r['late']}, "
            f"dropped {r['dropped']}, p95 {r['p95_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
