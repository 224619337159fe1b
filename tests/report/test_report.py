"""``--report PATH``: the provenance report of a real run (RetinaFace, tracker, tiny Panini-Net, FFV1).

The clip is the first 0.8 s of the talking-head clip, scaled to 256x256 by Debian's ffmpeg (an
untagged input, so the colour is assumed and the report must say so). Values in the report are
checked against independent readings: hashlib over the files' bytes, PyAV's decode of the output.
The HTML is opened in headless Chromium: the DOM must hold the sections and values, and the
screenshot must show the thumbnails the page carries (found in it by template matching).
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import torch

from panini_video.cli import main
from panini_video.models import VARIANTS, PaniniNet, save_model
from panini_video.report.html import render_html
from panini_video.report.identity import MIB
from panini_video.report.images import decode_data_uri

CLIP = "videos/talking_vfr_700.mp4"
DETECTOR = "weights/retinaface_mobilenet0.25_Final.pth"
FRAMES = 24  # what ffmpeg's -t 0.8 keeps of the clip (its frames are 1/30 or 2/30 s apart)
TIMEOUT = 60


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def files(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("Debian's ffmpeg command line is not installed (apt-get install ffmpeg; tools/test-servers.sh)")
    d = tmp_path_factory.mktemp("report")
    clip = d / "short.mp4"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(testdata / CLIP), "-t", "0.8"]
    cmd += ["-vf", "scale=256:256", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", str(clip)]
    subprocess.run(cmd, check=True, timeout=TIMEOUT)
    torch.manual_seed(7)
    tiny = save_model(PaniniNet(VARIANTS["tiny"]).eval(), d / "tiny.safetensors", random_seed=7)
    return {"dir": d, "clip": clip, "tiny": tiny, "detector": testdata / DETECTOR}


def run_args(files: dict[str, Path], out: Path, *extra: str) -> list[str]:
    args = [str(files["clip"]), str(out), "-q", "--model", str(files["tiny"])]
    return [*args, "--detector-weights", str(files["detector"]), "--device", "cpu", *extra]


@pytest.fixture(scope="module")
def json_run(files: dict[str, Path]) -> dict[str, Any]:
    out, report = files["dir"] / "restored.mkv", files["dir"] / "report.json"
    # --verify: the verification the command makes is the one the report carries (the HTML run makes its own)
    assert main(run_args(files, out, "--codec", "ffv1", "--verify", "--report", str(report))) == 0
    return {"out": out, "report": json.loads(report.read_text()), "path": report}


@pytest.fixture(scope="module")
def html_run(files: dict[str, Path]) -> dict[str, Any]:
    out, report = files["dir"] / "restored.mp4", files["dir"] / "report.html"
    args = run_args(files, out, "--crf", "0", "--preset", "ultrafast", "--report", str(report))
    assert main(args) == 0
    return {"out": out, "path": report, "text": report.read_text()}


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_json_report_names_input_settings_weights_and_conversion(
    files: dict[str, Path], json_run: dict[str, Any]
) -> None:
    rep, clip = json_run["report"], files["clip"]
    data = clip.read_bytes()
    ident = rep["input"]["identity"]
    assert ident["size"] == len(data) and len(data) < MIB  # a small file: each hash covers all of it
    assert ident["sha256_first_mib"] == ident["sha256_last_mib"] == sha256(data)
    facts = rep["input"]["probe"]
    assert (facts["codec"], facts["pix_fmt"], facts["width"], facts["height"]) == ("h264", "yuv420p", 256, 256)
    assert facts["frame_count"] == decoded_frames(clip) == FRAMES
    assert [s["kind"] for s in facts["streams"]] == ["video", "audio"]
    assert rep["run"]["frames_in"] == rep["run"]["frames_out"] == FRAMES and rep["run"]["dropped"] == 0
    # every setting, as the run resolved it
    assert rep["settings"]["io"]["codec"] == "ffv1"
    assert rep["settings"]["restore"]["model"] == str(files["tiny"])
    assert rep["settings"]["detect"]["weights"] == str(files["detector"])
    assert set(rep["settings"]) >= {"io", "detect", "track", "restore", "blend", "runtime"}
    # the weights actually loaded, hashed whole
    weights = rep["weights"]
    assert weights["restore"]["sha256"] == sha256(files["tiny"].read_bytes())
    assert weights["detector"]["sha256"] == sha256(files["detector"].read_bytes())
    assert weights["detector"]["path"] == str(files["detector"])
    # the input is untagged: its colour was assumed, and the output says how it was tagged
    conv = rep["conversion"]
    assert "matrix" in conv["colour"]["assumed"] and conv["colour"]["pix_fmt"] == "yuv420p"
    assert conv["deinterlace"]["mode"] == "off"
    out = conv["output"]
    assert (out["codec"], out["pix_fmt"], out["container"]) == ("ffv1", "yuv420p", "matroska,webm")
    assert out["colour"]["matrix"] == conv["colour"]["matrix"] and out["colour"]["range"] == conv["colour"]["range"]
    o = rep["outputs"][0]
    assert o["identity"]["size"] == json_run["out"].stat().st_size
    assert o["identity"]["sha256_first_mib"] == sha256(json_run["out"].read_bytes()[:MIB])


def test_json_report_tracks_and_thumbnails(json_run: dict[str, Any]) -> None:
    tracks = json_run["report"]["tracks"]
    assert tracks["count"] == 1 and tracks["source"] == "restore"
    (t,) = tracks["rows"]
    assert (t["first_frame"], t["last_frame"], t["faces"]) == (0, FRAMES - 1, FRAMES)
    w, h = t["median_size"]
    assert 40 <= w <= 160 and 50 <= h <= 200  # the face is ~100 px tall at this scale (MANIFEST: 274 of 700)
    best = t["best"]
    assert 0 <= best["frame"] < FRAMES and best["sharpness"] > 0
    before, after = decode_data_uri(best["before"]), decode_data_uri(best["after"])
    assert before.shape == after.shape and before.shape[2] == 3 and max(before.shape[:2]) <= 160
    assert before.std() > 10  # a face, not a flat patch
    # random tiny weights change the face: the after picture is not the before one
    assert np.abs(before.astype(int) - after.astype(int)).mean() > 5


def test_json_report_carries_the_verification(json_run: dict[str, Any]) -> None:
    ver = json_run["report"]["verification"]
    try:
        import panini_video.verify  # noqa: F401
    except ImportError:
        assert ver["status"] == "not run" and "verif" in ver["reason"]
        return
    assert ver["status"] == "ok" and ver["ok"] is True and ver["stats_given"] is True
    assert ver["frames"]["input"] == ver["frames"]["output"] == FRAMES
    assert ver["timestamps"]["compared"] == FRAMES and ver["timestamps"]["differ"] == 0
    (audio,) = ver["audio"]
    assert audio["packets_in"] == audio["packets_out"] > 0 and audio["same_bytes"] is True
    # FFV1 in the input's pix_fmt: nothing changed outside the paste regions, which the stats gave
    assert ver["samples"]["lossless"] is True and ver["samples"]["changed"] == 0
    assert ver["samples"]["regions"] == FRAMES  # one face in each frame


def test_report_follows_the_output_rules(files: dict[str, Path], tmp_path: Path) -> None:
    existing = tmp_path / "report.json"
    existing.write_text("keep me")
    out = tmp_path / "out.mkv"
    assert main(run_args(files, out, "--codec", "ffv1", "--report", str(existing))) == 4  # exists, no -y
    assert existing.read_text() == "keep me" and not out.exists()
    assert main(run_args(files, out, "--report", str(files["clip"]))) == 2  # the input itself
    assert main(run_args(files, out, "--report", str(tmp_path / "missing" / "r.json"))) == 4
    assert main(run_args(files, out, "--realtime", "--report", str(tmp_path / "r.json"))) == 2  # a live run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # nothing written, no temporary left


def test_annotate_report_names_no_restore_model(files: dict[str, Path], tmp_path: Path) -> None:
    out, report = tmp_path / "annotated.mp4", tmp_path / "report.json"
    assert main(run_args(files, out, "--annotate", "--preset", "ultrafast", "--report", str(report))) == 0
    rep = json.loads(report.read_text())
    assert rep["weights"]["restore"] is None and rep["settings"]["annotate"] is True
    assert rep["weights"]["detector"]["sha256"] == sha256(files["detector"].read_bytes())
    assert rep["tracks"] == {"count": 1, "source": "stats", "rows": []}  # tracked, but no face restored
    assert "kept no record of each track" in render_html(rep)


def test_html_escapes_every_value(json_run: dict[str, Any]) -> None:
    rep = copy.deepcopy(json_run["report"])
    hostile = '<img src=x onerror="alert(1)">.mp4'
    rep["input"]["identity"]["path"] = hostile
    rep["settings"]["io"]["codec"] = "</td><script>alert(2)</script>"
    page = render_html(rep)
    assert "<img src=x" not in page and "<script>" not in page
    assert html.escape(hostile) in page and "&lt;/td&gt;&lt;script&gt;" in page


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; tools/test-servers.sh)")


def headless(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [chromium(), "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={profile}"]
    cmd += ["--force-device-scale-factor=1", "--hide-scrollbars", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=True)


def test_html_report_renders_in_chromium(files: dict[str, Path], html_run: dict[str, Any], tmp_path: Path) -> None:
    text, page = html_run["text"], html_run["path"]
    assert "<script" not in text.lower() and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    dom = headless(page, tmp_path / "profile", "--dump-dom").stdout
    for section in ("identity", "output-0", "run", "conversion", "tracks", "verification", "weights", "settings"):
        assert f'<section id="{section}">' in dom
    assert sha256(files["clip"].read_bytes()) in dom
    assert f'<td data-key="frames in">{FRAMES}</td>' in dom and f'<td data-key="frames out">{FRAMES}</td>' in dom
    assert '<b data-key="tracks">1</b>' in dom
    assert sha256(files["tiny"].read_bytes()) in dom
    assert '<td data-key="codec">h264</td>' in dom  # the x264 --crf 0 output, probed
    assert '<b data-key="verification-status"><span class="ok">ok</span></b>' in dom
    # the screenshot: a page drawn, and the thumbnails drawn in it
    shot = tmp_path / "page.png"
    headless(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2600")
    img = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (2600, 1200)
    colours = np.unique(img.reshape(-1, 3) // 8, axis=0)
    assert len(colours) > 200, f"{len(colours)} distinct colours: the page looks blank"
    uris = re.findall(r'src="(data:image/png;base64,[^"]+)"', text)
    assert len(uris) == 2  # one track: before and after
    for uri in uris:
        thumb = cv2.cvtColor(decode_data_uri(uri), cv2.COLOR_RGB2BGR)
        assert thumb.std() > 10
        score = cv2.matchTemplate(img, thumb, cv2.TM_CCOEFF_NORMED).max()
        assert score > 0.95, f"a thumbnail is not on the rendered page (best match {score:.2f})"
