"""Fetching weights from local stand-ins for Google Drive and facexlib's release server."""

from __future__ import annotations

import functools
import hashlib
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from panini_video import cache
from panini_video.download import DRIVE_URL_ENV
from panini_video.errors import DownloadError, UsageError, WeightsNotFoundError
from panini_video.models import fetch
from panini_video.models.config import VARIANTS
from panini_video.models.serialize import read_metadata, read_state_dict
from tests.fakehttp import FakeServer, Route, serve
from tests.official_checkpoint import generator_tensors, mmcv_checkpoint


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    with serve() as s:
        monkeypatch.setenv(DRIVE_URL_ENV, s.url)
        monkeypatch.setenv(fetch.FACEXLIB_URL_ENV, s.url)
        yield s


def serve_on_drive(server: FakeServer, drive_id: str, body: bytes) -> None:
    """Drive's flow for a large file: a virus-scan page whose form leads to the bytes."""
    form = (
        f'<form id="download-form" action="{server.url}/download" method="get">'
        f'<input type="hidden" name="id" value="{drive_id}"><input type="hidden" name="confirm" value="t"></form>'
    )
    server.routes["/uc"] = Route(f"<html>{form}</html>".encode(), content_type="text/html")
    server.routes["/download"] = Route(
        handler=lambda r: Route(body) if r.query.get("id") == [drive_id] else Route(status=404)
    )


def test_mobilenet_detector_is_fetched_and_checked(server: FakeServer, testdata: Path) -> None:
    real = (testdata / "weights" / "retinaface_mobilenet0.25_Final.pth").read_bytes()
    server.routes["/detection_mobilenet0.25_Final.pth"] = Route(real)
    out = fetch.fetch_detector("retinaface-mobilenet")
    assert out == cache.detector_path("mobilenet") and out.read_bytes() == real
    assert fetch.fetch_detector("retinaface-mobilenet") == out  # cached: no second request
    assert len(server.requests) == 1


def test_a_detector_file_of_the_wrong_size_is_refused(server: FakeServer) -> None:
    server.routes["/detection_Resnet50_Final.pth"] = Route(b"\0" * 1000)
    with pytest.raises(DownloadError, match="expected 109497761") as info:
        fetch.fetch_detector("retinaface-resnet50")
    assert str(cache.detector_path("resnet50")) in str(info.value)  # says where to put it instead
    assert not cache.detector_path("resnet50").parent.exists() or not any(
        cache.detector_path("resnet50").parent.iterdir()
    )


def test_a_detector_file_with_the_wrong_digest_is_refused(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    body = b"x" * 5000
    monkeypatch.setitem(fetch.DETECTORS, "retinaface-mobilenet", fetch.DetectorFile("mobilenet", len(body), "ab" * 32))
    server.routes["/detection_mobilenet0.25_Final.pth"] = Route(body)
    with pytest.raises(DownloadError, match="sha256"):
        fetch.fetch_detector("retinaface-mobilenet")
    assert not cache.detector_path("mobilenet").exists()


def test_official_checkpoint_is_fetched_from_drive_and_imported(server: FakeServer) -> None:
    generator = generator_tensors("mfr", real=False)
    buffer = io.BytesIO()
    torch.save(mmcv_checkpoint(generator), buffer)
    serve_on_drive(server, fetch.MODELS["mfr"].drive_id, buffer.getvalue())
    out = fetch.fetch_model("mfr")
    assert out == cache.model_path("mfr")
    state, config = read_state_dict(out)
    assert config == VARIANTS["mfr"] and set(state) == set(generator)
    assert not (cache.cache_dir() / "downloads" / "panini_mfr_latest.pth").exists()  # only the slim file stays
    requests = len(server.requests)
    assert fetch.fetch("mfr") == out and len(server.requests) == requests


def test_drive_refusing_the_file_is_a_download_error_with_the_manual_route(server: FakeServer) -> None:
    server.routes["/uc"] = Route(status=403)
    drive_id = fetch.MODELS["sr"].drive_id
    with pytest.raises(DownloadError, match="HTTP 403") as info:
        fetch.fetch_model("sr")
    assert drive_id in str(info.value) and "weights import FILE --variant sr" in str(info.value)
    assert not cache.model_path("sr").exists()


def test_offline_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    monkeypatch.setenv(DRIVE_URL_ENV, f"http://127.0.0.1:{sock.getsockname()[1]}")
    sock.close()
    with pytest.raises(DownloadError, match="cannot reach"):
        fetch.fetch_model("mfr")


def test_unknown_names_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        fetch.fetch_model("tiny")
    with pytest.raises(UsageError):
        fetch.fetch_detector("retinaface-vgg")


def closed_port_url() -> str:
    """A local URL nothing listens on: what an offline machine sees."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    return url


def test_a_failed_fetch_leaves_no_folder_it_created(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DRIVE_URL_ENV, closed_port_url())
    monkeypatch.setenv(fetch.FACEXLIB_URL_ENV, closed_port_url())
    with pytest.raises(DownloadError):
        fetch.fetch_model("mfr")
    with pytest.raises(DownloadError):
        fetch.fetch_detector("retinaface-resnet50")
    assert list(cache.cache_dir().iterdir()) == []


def test_a_fetch_that_broke_off_keeps_its_part_file(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    body = b"x" * 5000
    spec = fetch.DetectorFile("mobilenet", len(body), hashlib.sha256(body).hexdigest())
    monkeypatch.setitem(fetch.DETECTORS, "retinaface-mobilenet", spec)
    server.routes["/detection_mobilenet0.25_Final.pth"] = Route(body, cut_at=1000)
    monkeypatch.setattr(fetch, "download", functools.partial(fetch.download, retries=0))
    with pytest.raises(DownloadError):
        fetch.fetch_detector("retinaface-mobilenet")
    part = cache.detector_path("mobilenet").with_name(cache.DETECTOR_FILES["mobilenet"] + ".part")
    assert part.stat().st_size == 1000  # resumable next time: its folder stays


def test_first_use_downloads_the_official_weights(server: FakeServer) -> None:
    buffer = io.BytesIO()
    torch.save(mmcv_checkpoint(generator_tensors("mfr", real=False)), buffer)
    serve_on_drive(server, fetch.MODELS["mfr"].drive_id, buffer.getvalue())
    seen: list[tuple[int, int | None]] = []
    out = fetch.ensure_model("mfr", download=True, progress=lambda done, total: seen.append((done, total)))
    assert out == cache.model_path("mfr") and read_state_dict(out)[1] == VARIANTS["mfr"]
    assert seen[-1] == (len(buffer.getvalue()), len(buffer.getvalue()))
    requests = len(server.requests)
    assert fetch.ensure_model("mfr", download=True) == out and len(server.requests) == requests


def test_offline_first_use_fails_at_once_saying_every_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DRIVE_URL_ENV, closed_port_url())
    start = time.monotonic()
    with pytest.raises(WeightsNotFoundError) as info:
        fetch.ensure_model("sr", download=True)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "cannot reach" in message and "download failed" in message
    assert "`panini-video weights fetch sr`" in message and "`panini-video weights import FILE`" in message
    assert fetch.MODELS["sr"].drive_id in message and "--annotate" in message
    assert info.value.exit_code == 6 and isinstance(info.value.__cause__, DownloadError)
    assert list(cache.cache_dir().iterdir()) == []


def test_no_download_never_touches_the_network(server: FakeServer) -> None:
    serve_on_drive(server, fetch.MODELS["mfr"].drive_id, b"never asked for")
    with pytest.raises(WeightsNotFoundError, match="downloads are off") as info:
        fetch.ensure_model("mfr", download=False)
    assert "`panini-video weights fetch mfr`" in str(info.value) and "weights import FILE" in str(info.value)
    assert "--annotate" in str(info.value)
    with pytest.raises(WeightsNotFoundError, match="weights init tiny"):
        fetch.ensure_model("tiny", download=True)  # tiny has nothing to download
    assert server.requests == []


def test_a_path_is_returned_as_it_is_or_refused(tmp_path: Path) -> None:
    path = fetch.init_model("tiny", dest=tmp_path / "t.safetensors")
    assert fetch.ensure_model(str(path), download=True) == path
    with pytest.raises(WeightsNotFoundError, match="nothing.safetensors"):
        fetch.ensure_model(tmp_path / "nothing.safetensors", download=True)


def test_init_writes_seeded_random_tiny_weights_labelled_random(tmp_path: Path) -> None:
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    out = fetch.init_model("tiny", seed=3)
    assert out == cache.model_path("tiny")
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's random state is untouched
    again = fetch.init_model("tiny", seed=3, dest=tmp_path / "a.safetensors")
    other = fetch.init_model("tiny", seed=4, dest=tmp_path / "b.safetensors")
    (s3, config), (s3b, _), (s4, _) = (read_state_dict(p) for p in (out, again, other))
    assert config == VARIANTS["tiny"]
    assert all(torch.equal(s3[k], s3b[k]) for k in s3)
    assert any(not torch.equal(s3[k], s4[k]) for k in s3)
    assert read_metadata(out)["weights"] == "random" and read_metadata(out)["seed"] == "3"
    with pytest.raises(UsageError, match="tiny"):
        fetch.init_model("mfr")  # random mfr weights would stand in the trained ones' place
