"""Downloads against a local HTTP server: resume, size and checksum checks, errors, Drive pages."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from panini_video import download as dl
from panini_video.errors import DownloadError, WeightsError
from tests.fakehttp import FakeServer, Request, Route, serve

BODY = os.urandom(300_000)
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with serve() as s:
        yield s


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Records retry waits instead of sleeping."""
    waits: list[float] = []
    monkeypatch.setattr(dl.time, "sleep", waits.append)
    return waits


def test_full_download_checks_size_and_sha(server: FakeServer, tmp_path: Path) -> None:
    server.routes["/f.bin"] = Route(BODY)
    seen: list[tuple[int, int | None]] = []
    out = dl.download(
        f"{server.url}/f.bin", tmp_path / "f.bin", size=len(BODY), sha256=SHA, progress=lambda d, t: seen.append((d, t))
    )
    assert out.read_bytes() == BODY
    assert not (tmp_path / "f.bin.part").exists()
    assert seen[0] == (0, len(BODY)) and seen[-1] == (len(BODY), len(BODY))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_interrupted_transfer_is_resumed_with_range(server: FakeServer, tmp_path: Path, no_sleep: list[float]) -> None:
    server.routes["/f.bin"] = Route(BODY, cut_at=100_000)
    out = dl.download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=SHA, retries=2)
    assert out.read_bytes() == BODY
    assert len(server.requests) == 2 and len(no_sleep) == 1
    assert "range" not in server.requests[0].headers
    assert server.requests[1].headers["range"] == "bytes=100000-"


def test_part_file_from_an_earlier_run_is_resumed(server: FakeServer, tmp_path: Path) -> None:
    server.routes["/f.bin"] = Route(BODY)
    (tmp_path / "f.bin.part").write_bytes(BODY[:123_456])
    out = dl.download(f"{server.url}/f.bin", tmp_path / "f.bin", size=len(BODY), sha256=SHA)
    assert out.read_bytes() == BODY
    assert server.requests[0].headers["range"] == "bytes=123456-"


def test_server_without_range_restarts_from_zero(server: FakeServer, tmp_path: Path) -> None:
    server.routes["/f.bin"] = Route(BODY, ranges=False)
    (tmp_path / "f.bin.part").write_bytes(b"garbage" * 100)
    out = dl.download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=SHA)
    assert out.read_bytes() == BODY


def test_complete_part_answered_416_is_kept(server: FakeServer, tmp_path: Path) -> None:
    server.routes["/f.bin"] = Route(BODY)
    (tmp_path / "f.bin.part").write_bytes(BODY)
    out = dl.download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=SHA)
    assert out.read_bytes() == BODY


def test_size_mismatch_is_refused(server: FakeServer, tmp_path: Path) -> None:
    server.routes["/f.bin"] = Route(BODY)
    with pytest.raises(DownloadError, match=f"offers {len(BODY)} bytes, expected {len(BODY) + 1}"):
        dl.download(f"{server.url}/f.bin", tmp_path / "f.bin", size=len(BODY) + 1)
    assert not list(tmp_path.iterdir())


def test_checksum_mismatch_is_refused_and_removed(server: FakeServer, tmp_path: Path) -> None:
    server.routes["/f.bin"] = Route(BODY)
    with pytest.raises(DownloadError, match="sha256"):
        dl.download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256="0" * 64)
    assert not list(tmp_path.iterdir())


def test_404_fails_at_once_with_a_hint(server: FakeServer, tmp_path: Path, no_sleep: list[float]) -> None:
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        dl.download(f"{server.url}/missing", tmp_path / "f.bin", hint="Import it by hand.")
    assert "Import it by hand." in str(info.value)
    assert isinstance(info.value, WeightsError) and isinstance(info.value, ConnectionError)
    assert len(server.requests) == 1 and no_sleep == []


def test_connection_refused_fails_at_once(tmp_path: Path, no_sleep: list[float]) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(DownloadError, match="cannot reach 127.0.0.1") as info:
        dl.download(f"http://127.0.0.1:{port}/f.bin", tmp_path / "f.bin")
    assert "weights import" in str(info.value)
    assert no_sleep == []


def test_server_errors_are_retried_then_given_up(server: FakeServer, tmp_path: Path, no_sleep: list[float]) -> None:
    server.routes["/f.bin"] = Route(status=503)
    with pytest.raises(DownloadError, match="after 2 retries"):
        dl.download(f"{server.url}/f.bin", tmp_path / "f.bin", retries=2)
    assert len(server.requests) == 3 and len(no_sleep) == 2


def test_transfer_cut_every_time_gives_up_but_keeps_the_part(
    server: FakeServer, tmp_path: Path, no_sleep: list[float]
) -> None:
    server.routes["/f.bin"] = Route(handler=lambda r: Route(BODY, cut_at=1000))
    with pytest.raises(DownloadError, match="after 1 retries"):
        dl.download(f"{server.url}/f.bin", tmp_path / "f.bin", retries=1)
    assert (tmp_path / "f.bin.part").read_bytes() == BODY[:2000]


# Google Drive ------------------------------------------------------------------------------------

FILE_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz012345"


@pytest.fixture
def drive(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setenv(dl.DRIVE_URL_ENV, server.url)
    return server


def _page(body: str) -> Route:
    return Route(
        f"<html><head><title>Google Drive</title></head><body>{body}</body></html>".encode(),
        content_type="text/html; charset=utf-8",
    )


def test_drive_small_file_is_served_directly(drive: FakeServer, tmp_path: Path) -> None:
    drive.routes["/uc"] = Route(BODY, headers={"Content-Disposition": 'attachment; filename="x.pth"'})
    out = dl.download_drive(FILE_ID, tmp_path / "x.pth", sha256=SHA)
    assert out.read_bytes() == BODY
    assert drive.requests[0].query == {"export": ["download"], "id": [FILE_ID]}


def test_drive_virus_scan_form_is_followed(drive: FakeServer, tmp_path: Path) -> None:
    form = (
        f'<form id="download-form" action="{drive.url}/download" method="get">'
        '<input type="submit" id="uc-download-link" value="Download anyway"/>'
        f'<input type="hidden" name="id" value="{FILE_ID}"><input type="hidden" name="export" value="download">'
        '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-123"></form>'
    )
    drive.routes["/uc"] = _page("Google Drive can't scan this file for viruses." + form)

    def usercontent(r: Request) -> Route:
        ok = r.query.get("confirm") == ["t"] and r.query.get("uuid") == ["u-123"] and r.query.get("id") == [FILE_ID]
        return Route(BODY) if ok else _page("wrong form")

    drive.routes["/download"] = Route(handler=usercontent)
    out = dl.download_drive(FILE_ID, tmp_path / "x.pth", size=len(BODY), sha256=SHA)
    assert out.read_bytes() == BODY


def test_drive_confirm_link_is_followed(drive: FakeServer, tmp_path: Path) -> None:
    def uc(r: Request) -> Route:
        if r.query.get("confirm") == ["Xy_9"]:
            return Route(BODY)
        return _page(
            f'<a id="uc-download-link" href="/uc?export=download&amp;confirm=Xy_9&amp;id={FILE_ID}">Download anyway</a>'
        )

    drive.routes["/uc"] = Route(handler=uc)
    out = dl.download_drive(FILE_ID, tmp_path / "x.pth", sha256=SHA)
    assert out.read_bytes() == BODY


def test_drive_warning_cookie_is_used(drive: FakeServer, tmp_path: Path) -> None:
    def uc(r: Request) -> Route:
        if r.query.get("confirm") == ["tok42"] and "download_warning_1=tok42" in r.headers.get("cookie", ""):
            return Route(BODY)
        page = _page("Virus scan warning")
        page.headers["Set-Cookie"] = "download_warning_1=tok42; Path=/"
        return page

    drive.routes["/uc"] = Route(handler=uc)
    out = dl.download_drive(FILE_ID, tmp_path / "x.pth", sha256=SHA)
    assert out.read_bytes() == BODY


def test_drive_quota_page_is_a_download_error(drive: FakeServer, tmp_path: Path) -> None:
    drive.routes["/uc"] = _page(
        '<p class="uc-error-caption">Sorry, you can&#39;t view or download this file at this time.</p>'
        '<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently.</p>'
    )
    with pytest.raises(DownloadError, match="Too many users have viewed"):
        dl.download_drive(FILE_ID, tmp_path / "x.pth")
    assert not list(tmp_path.iterdir())
