"""``panini-video IN OUT`` with the real face stages: RetinaFace, tracker, tiny Panini-Net, paste-back.

The tiny variant with seeded random weights stands in for MFR (same code paths, 64 in, 128 out):
its faces are not pretty, which makes the restored regions easy to tell from the rest.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from panini_video.cli import main
from panini_video.config import DetectConfig
from panini_video.download import DRIVE_URL_ENV
from panini_video.errors import UsageError, WeightsNotFoundError
from panini_video.faces.blend import paste_region
from panini_video.faces.retinaface import load_detector
from panini_video.faces.stages import points_to_stored, upright
from panini_video.models import VARIANTS, PaniniNet, save_model
from tests.cli.test_run import decode, leftovers
from tests.restore.helpers import detect_and_track

CLIP = "videos/talking_vfr_700.mp4"  # 135 frames, variable frame timing, AAC audio, one face
DETECTOR = "weights/retinaface_mobilenet0.25_Final.pth"
CHECKED_FRAMES = 20  # frames whose pixels are compared region by region
MARGIN = 16  # px around a paste region the encoder may still touch (its blocks straddle the edge)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    return save_model(PaniniNet(VARIANTS["tiny"]).eval(), path, random_seed=7)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def face_masks(clip: Path, frames: int, size: tuple[int, int]) -> list[np.ndarray]:
    """Per frame, True where pasting a face may change pixels (the paste regions plus MARGIN)."""
    masks = []
    for item in detect_and_track(clip, frames):
        mask = np.zeros((size[1], size[0]), bool)
        for face in item.faces:
            x0, y0, x1, y1 = paste_region(face, size)
            mask[max(y0 - MARGIN, 0) : y1 + MARGIN, max(x0 - MARGIN, 0) : x1 + MARGIN] = True
        masks.append(mask)
    return masks


def test_restore_keeps_every_frame_timestamp_and_the_audio(
    testdata: Path, tiny_file: Path, out_dir: Path, tmp_path: Path
) -> None:
    clip, out, stats = testdata / CLIP, out_dir / "restored.mp4", tmp_path / "stats.json"
    args = [str(clip), str(out), "-q", "--model", str(tiny_file), "--detector-weights", str(testdata / DETECTOR)]
    args += ["--device", "cpu", "--batch-size", "8", "--crf", "18", "--preset", "ultrafast"]
    assert main([*args, "--stats-json", str(stats)]) == 0
    src, dst = decode(clip), decode(out)
    assert len(dst["times"]) == len(src["times"]) == 135
    assert dst["times"] == src["times"] and dst["audio"] == src["audio"] and dst["audio"]
    report = json.loads(stats.read_text())
    assert [s["name"] for s in report["graph"]["stages"]] == [
        "source",
        *("detect", "track", "restore"),
        *("reorder", "encode"),
    ]
    assert report["stage_stats"]["track"] == {"faces": 135, "frames_with_faces": 135, "tracks": 1, "scene_cuts": []}
    restore = report["stage_stats"]["restore"]
    assert restore["frames"] == restore["faces"] == 135 and restore["faces_failed"] == 0
    assert restore["model_in"] == 64 and restore["model_out"] == 128 and restore["dre_mode"] == "track"
    assert restore["weights"] == "random weights, seed 7"  # what the file's metadata says
    (track,) = restore["tracks"]  # one person, one track, its code followed slowly
    assert track["length"] == 135 and track["warmup_frames"] == 5
    assert 0 < track["code_step_mean"] < 1e-3 and track["mask_step_mean"] >= 0
    # Faces changed, everything else kept (up to the encoder's own error).
    masks = face_masks(clip, CHECKED_FRAMES, (700, 700))
    for a, b, mask in zip(src["images"], dst["images"], masks, strict=False):
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=-1)
        assert mask.any() and diff[mask].mean() > 10.0
        assert diff[~mask].mean() < 2.0
    assert leftovers(out_dir) == ["restored.mp4"]


def test_annotate_draws_the_faces_and_keeps_the_rest(testdata: Path, out_dir: Path, tmp_path: Path) -> None:
    clip, out, stats = testdata / CLIP, out_dir / "preview.mp4", tmp_path / "stats.json"
    args = [str(clip), str(out), "-q", "--annotate"]  # an empty cache: the shipped detector, no Panini weights
    assert main([*args, "--preset", "ultrafast", "--crf", "18", "--stats-json", str(stats)]) == 0
    src, dst = decode(clip), decode(out)
    assert dst["times"] == src["times"] and dst["audio"] == src["audio"]
    names = [s["name"] for s in json.loads(stats.read_text())["graph"]["stages"]]
    assert "annotate" in names and "restore" not in names
    masks = face_masks(clip, CHECKED_FRAMES, (700, 700))
    for a, b, mask in zip(src["images"], dst["images"], masks, strict=False):
        changed = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) > 60  # drawn lines
        assert changed.sum() > 300 and not changed[~mask].any()


def test_upscale_enlarges_the_whole_frame(testdata: Path, tiny_file: Path, out_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "short.mp4"  # the first 15 frames of a real 388x512 clip
    with av.open(str(testdata / "videos/lowq_real_388x512_noaudio.mp4")) as c, av.open(str(src), "w") as o:
        s = o.add_stream("libx264", rate=20)
        s.width, s.height, s.pix_fmt = 388, 512, "yuv420p"
        for i, frame in enumerate(c.decode(video=0)):
            if i == 15:
                break
            o.mux(s.encode(frame.reformat(format="yuv420p")))
        o.mux(s.encode())
    out, stats = out_dir / "big.mp4", tmp_path / "stats.json"
    args = [str(src), str(out), "-q", "--model", str(tiny_file), "--detector-weights", str(testdata / DETECTOR)]
    args += ["--upscale", "2", "--dre-mode", "frame", "--preset", "ultrafast", "--stats-json", str(stats)]
    assert main(args) == 0
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height) == (776, 1024)
    assert decode(out)["times"] == decode(src)["times"]
    restore = json.loads(stats.read_text())["stage_stats"]["restore"]
    assert restore["faces"] == 15 and restore["dre_mode"] == "frame"


def test_a_phone_video_stored_sideways_gets_its_faces_restored(
    testdata: Path, tiny_file: Path, out_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "sideways.mp4"  # 15 frames of a real face, stored turned, shown upright
    with av.open(str(testdata / "videos/lowq_real_388x512_noaudio.mp4")) as c, av.open(str(src), "w") as o:
        s = o.add_stream("libx264", rate=20)
        s.width, s.height, s.pix_fmt = 512, 388, "yuv420p"
        s.set_display_rotation(270)  # shown turned 90 degrees clockwise, as phones store portrait video
        for i, frame in enumerate(c.decode(video=0)):
            if i == 15:
                break
            sideways = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), 1))
            o.mux(s.encode(av.VideoFrame.from_ndarray(sideways, format="rgb24").reformat(format="yuv420p")))
        o.mux(s.encode())
    out, stats = out_dir / "restored.mp4", tmp_path / "stats.json"
    args = [str(src), str(out), "-q", "--model", str(tiny_file), "--detector-weights", str(testdata / DETECTOR)]
    assert main([*args, "--preset", "ultrafast", "--stats-json", str(stats)]) == 0
    report = json.loads(stats.read_text())
    assert report["stage_stats"]["track"]["faces"] == 15 and report["stage_stats"]["restore"]["faces"] == 15
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (512, 388) and round(frame.rotation) % 360 == 270
    # The landmarks are those found on the upright frames, in the stored frame's pixels.
    faces_json = tmp_path / "faces.json"
    args = ["faces", str(src), "--json", str(faces_json), "--smooth", "0", "-q"]
    assert main([*args, "--detector-weights", str(testdata / DETECTOR)]) == 0
    found = json.loads(faces_json.read_text())[str(src)]["frames"]
    detector = load_detector(DetectConfig(weights=str(testdata / DETECTOR)))
    with av.open(str(src)) as c:
        for frame, record in zip(c.decode(video=0), found, strict=True):
            (upright_faces,) = detector.detect([upright(frame.to_ndarray(format="rgb24"), 270)])
            want = points_to_stored(upright_faces.landmarks[0], 270, (512, 388))
            assert np.abs(np.array(record["faces"][0]["landmarks"]) - want).max() < 0.02


def test_missing_weights_say_how_to_get_them(
    testdata: Path, out_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = socket.socket()  # offline: Drive's address has nothing listening
    sock.bind(("127.0.0.1", 0))
    monkeypatch.setenv(DRIVE_URL_ENV, f"http://127.0.0.1:{sock.getsockname()[1]}")
    sock.close()
    clip = testdata / CLIP
    code = main([str(clip), str(out_dir / "o.mp4"), "-q"])  # mfr, not in the empty cache
    assert code == WeightsNotFoundError.exit_code
    err = capsys.readouterr().err
    assert "panini-video weights fetch mfr" in err and "panini-video weights import FILE" in err and "--annotate" in err
    code = main([str(clip), str(out_dir / "o.mp4"), "-q", "--model", "tiny"])
    assert code == WeightsNotFoundError.exit_code
    assert "panini-video weights init tiny" in capsys.readouterr().err
    code = main([str(clip), str(out_dir / "o.mp4"), "-q", "--annotate", "--detector", "resnet50"])  # not shipped
    assert code == WeightsNotFoundError.exit_code
    assert "weights fetch retinaface-resnet50" in capsys.readouterr().err
    code = main([str(clip), str(out_dir / "o.mp4"), "-q", "--annotate", "--upscale", "2"])
    assert code == UsageError.exit_code
    assert leftovers(out_dir) == []


def test_a_first_run_after_weights_init_tiny(testdata: Path, out_dir: Path) -> None:
    """A newcomer's offline run: random tiny weights, the shipped detector, nothing else in the cache."""
    assert main(["weights", "init", "tiny", "-q"]) == 0
    clip, out = testdata / CLIP, out_dir / "tiny.mp4"
    assert main([str(clip), str(out), "-q", "--model", "tiny", "--device", "cpu", "--preset", "ultrafast"]) == 0
    src, dst = decode(clip), decode(out)
    assert dst["times"] == src["times"] and dst["audio"] == src["audio"]
    masks = face_masks(clip, CHECKED_FRAMES, (700, 700))
    for a, b, mask in zip(src["images"], dst["images"], masks, strict=False):
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=-1)
        assert diff[mask].mean() > 10.0 and diff[~mask].mean() < 2.0  # the face replaced, the rest kept
