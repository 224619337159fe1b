"""``panini-video IN OUT --device cuda`` on a real clip, against the same command on the CPU."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from panini_video.cli import main

CLIP = "videos/talking_vfr_700.mp4"  # 135 frames, variable frame timing, AAC audio, one face


def decoded(path: Path) -> tuple[list[Fraction], list[np.ndarray]]:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        times, images = [], []
        for f in c.decode(vs):
            times.append(Fraction(f.pts) * vs.time_base)
            images.append(f.to_ndarray(format="rgb24"))
    return times, images


@pytest.mark.cuda
def test_the_main_command_on_cuda_matches_the_cpu(testdata: Path, tmp_path: Path, tiny_file: Path) -> None:
    clip = testdata / CLIP
    runs = {}
    for device, precision in (("cuda", "auto"), ("cpu", "fp32")):
        out, stats = tmp_path / f"{device}.mp4", tmp_path / f"{device}.json"
        argv = [str(clip), str(out), "-q", "--model", str(tiny_file), "--device", device, "--precision", precision]
        assert main([*argv, "--preset", "ultrafast", "--stats-json", str(stats)]) == 0
        runs[device] = (decoded(out), json.loads(stats.read_text())["stage_stats"]["restore"])
    (gpu_times, gpu_images), gpu = runs["cuda"]
    (cpu_times, cpu_images), cpu = runs["cpu"]
    assert gpu["device"].startswith("cuda") and gpu["precision"] == "bf16"  # auto on a GPU
    assert gpu["frames"] == cpu["frames"] == 135 and gpu["faces"] == cpu["faces"] >= 130
    assert gpu["faces_failed"] == 0
    src_times, src_images = decoded(clip)
    assert gpu_times == cpu_times == src_times  # every frame, every timestamp
    for i, (g, c, s) in enumerate(zip(gpu_images, cpu_images, src_images, strict=True)):
        assert np.abs(c.astype(int) - s).mean() > 0.5, f"frame {i}: the CPU run changed nothing"
        # bf16 against fp32: about a grey level on average inside the face, nothing outside it.
        assert np.abs(g.astype(int) - c).mean() < 1.0, f"frame {i}: GPU and CPU outputs differ"
