"""``panini-video weights``: import, list and fetch through the command line, with exit codes."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from panini_video import cache
from panini_video.cli import main
from panini_video.cli.progress import download_progress
from panini_video.download import DRIVE_URL_ENV
from panini_video.faces.retinaface_net import RetinaFaceNet
from panini_video.models import fetch
from panini_video.models.serialize import read_metadata, read_state_dict
from tests.fakehttp import FakeServer, Route, serve
from tests.official_checkpoint import generator_tensors, mmcv_checkpoint


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    with serve() as s:
        monkeypatch.setenv(fetch.FACEXLIB_URL_ENV, s.url)
        yield s


def test_import_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = tmp_path / "panini_mfr_latest.pth"
    torch.save(mmcv_checkpoint(generator_tensors("mfr", real=False)), checkpoint)
    assert main(["weights", "import", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert str(cache.model_path("mfr")) in out
    assert read_state_dict(cache.model_path("mfr"))[1].in_size == 512

    detector = cache.detector_path("mobilenet")
    detector.parent.mkdir(parents=True)
    detector.write_bytes(b"\0" * 2048)
    (cache.cache_dir() / "models" / "junk.safetensors").write_bytes(b"not safetensors")
    assert main(["weights", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"cache: {cache.cache_dir()}"
    model = next(line for line in lines if line.endswith(str(cache.model_path("mfr"))))
    size_mib = cache.model_path("mfr").stat().st_size / 2**20
    # 94,339,836 parameters + 2,798,233 buffer elements (spec section 6.3)
    assert model.split()[:4] == ["model", "mfr", f"{size_mib:.1f}", "MiB"] and "97.1 M values" in model
    det = next(line for line in lines if line.endswith(str(detector)))
    assert det.split()[:2] == ["detector", "retinaface-mobilenet"] and "size differs" in det
    junk = next(line for line in lines if line.endswith("junk.safetensors"))
    assert "unreadable" in junk


def test_list_of_an_empty_cache(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "-q", "list"]) == 0
    assert "(empty)" in capsys.readouterr().out


def test_import_with_a_variant_that_does_not_fit_exits_6(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = tmp_path / "sr.pth"
    torch.save(mmcv_checkpoint(generator_tensors("sr", real=False)), checkpoint)
    assert main(["weights", "import", str(checkpoint), "--variant", "mfr"]) == 6
    err = capsys.readouterr().err
    assert "does not match" in err and "deg_encoder" in err
    assert not cache.model_path("mfr").exists()


def test_import_of_a_malicious_pickle_exits_6_without_running_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    torch.save({"state_dict": Exploit()}, tmp_path / "evil.pth")
    assert main(["weights", "import", str(tmp_path / "evil.pth")]) == 6
    assert "refused" in capsys.readouterr().err and not marker.exists()


def test_import_of_a_missing_file_exits_6(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "import", str(tmp_path / "nope.pth")]) == 6
    assert "does not exist" in capsys.readouterr().err


def test_fetch_detector(server: FakeServer, testdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = (testdata / "weights" / "retinaface_mobilenet0.25_Final.pth").read_bytes()
    server.routes["/detection_mobilenet0.25_Final.pth"] = Route(real)
    assert main(["weights", "fetch", "retinaface-mobilenet"]) == 0
    assert cache.detector_path("mobilenet").read_bytes() == real
    assert str(cache.detector_path("mobilenet")) in capsys.readouterr().out


def test_fetch_of_a_missing_file_exits_6(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "fetch", "retinaface-resnet50"]) == 6  # the server has no such file: 404
    err = capsys.readouterr().err
    assert "HTTP 404" in err and str(cache.detector_path("resnet50")) in err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["weights", "fetch", "gfpgan"], ["weights"], ["weights", "import", "x.pth", "--variant", "tiny"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with download_progress("x", enabled=True) as progress:
        assert progress is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with download_progress("x", enabled=False) as progress:
        assert progress is None
    with download_progress("x", enabled=True) as progress:
        assert progress is not None
        progress(0, 100)
        progress(100, 100)


MOBILENET = "weights/retinaface_mobilenet0.25_Final.pth"


def test_init_tiny_then_list_says_random(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "init", "tiny", "--seed", "4"]) == 0
    assert str(cache.model_path("tiny")) in capsys.readouterr().out
    assert read_metadata(cache.model_path("tiny"))["seed"] == "4"
    first = read_state_dict(cache.model_path("tiny"))[0]
    assert main(["weights", "init", "tiny"]) == 4  # never replaced by surprise
    assert "give -y" in capsys.readouterr().err
    assert main(["weights", "init", "tiny", "-n"]) == 0  # -n: kept, and no error
    assert read_metadata(cache.model_path("tiny"))["seed"] == "4"
    assert main(["weights", "init", "tiny", "--seed", "4", "--output", str(tmp_path / "t.safetensors")]) == 0
    again = read_state_dict(tmp_path / "t.safetensors")[0]
    assert all(torch.equal(first[k], again[k]) for k in first)  # same seed, same weights
    assert main(["weights", "init", "tiny", "--force", "--seed", "5"]) == 0
    assert read_metadata(cache.model_path("tiny"))["seed"] == "5"
    capsys.readouterr()
    assert main(["weights", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.endswith(str(cache.model_path("tiny"))))
    assert line.split()[:2] == ["model", "tiny"] and "random weights, seed 5" in line


def test_init_is_for_tiny_only() -> None:
    with pytest.raises(SystemExit) as info:
        main(["weights", "init", "mfr"])
    assert info.value.code == 2


def test_import_of_the_mobilenet_detector_file(testdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "import", str(testdata / MOBILENET)]) == 0
    assert cache.detector_path("mobilenet").read_bytes() == (testdata / MOBILENET).read_bytes()
    assert "RetinaFace mobilenet" in capsys.readouterr().out
    assert [p.name for p in cache.detector_path("mobilenet").parent.iterdir()] == [cache.DETECTOR_FILES["mobilenet"]]


def test_import_of_a_resnet50_detector_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = RetinaFaceNet("resnet50").state_dict()
    source = tmp_path / "Resnet50_Final.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, source)  # as biubug6 saved it
    assert main(["weights", "import", str(source), "-q"]) == 0
    assert cache.detector_path("resnet50").read_bytes() == source.read_bytes()


def test_import_of_a_detector_file_that_does_not_fit_exits_6(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = torch.load(testdata / MOBILENET, map_location="cpu", weights_only=True)
    state["ClassHead.0.conv1x1.weight"] = torch.zeros(3, 64, 1, 1)
    source = tmp_path / "bad.pth"
    torch.save(state, source)
    assert main(["weights", "import", str(source)]) == 6
    assert "ClassHead.0.conv1x1.weight" in capsys.readouterr().err
    assert not cache.detector_path("mobilenet").parent.exists()


def test_import_of_a_detector_file_to_an_output_path(testdata: Path, tmp_path: Path) -> None:
    copy = tmp_path / "in"
    copy.mkdir()
    shutil.copyfile(testdata / MOBILENET, copy / "x.pth")
    assert main(["weights", "import", str(copy / "x.pth"), "--output", str(tmp_path / "out" / "d.pth")]) == 4
    (tmp_path / "out").mkdir()  # the output rule: the folder of an output must exist
    assert main(["weights", "import", str(copy / "x.pth"), "--output", str(tmp_path / "out" / "d.pth")]) == 0
    assert (tmp_path / "out" / "d.pth").read_bytes() == (copy / "x.pth").read_bytes()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["d.pth"]  # no temporary file left


def test_offline_fetch_exits_6_and_leaves_no_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    monkeypatch.setenv(DRIVE_URL_ENV, f"http://127.0.0.1:{sock.getsockname()[1]}")
    sock.close()
    home = tmp_path / "new_home"
    monkeypatch.setenv("PANINI_VIDEO_HOME", str(home))
    assert main(["weights", "fetch", "mfr"]) == 6
    assert "cannot reach" in capsys.readouterr().err
    assert not home.exists()
