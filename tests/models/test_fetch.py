"""Fetching weights from local stand-ins for Google Drive and facexlib's release server."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from panini_video import cache
from panini_video.download import DRIVE_URL_ENV
from panini_video.errors import DownloadError, UsageError
from panini_video.models import fetch
from panini_video.models.config import VARIANTS
from panini_video.models.serialize import read_state_dict
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
