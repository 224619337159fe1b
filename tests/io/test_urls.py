"""Live names recognised by scheme or device, and credentials masked in text and in log records."""

from __future__ import annotations

import logging

import pytest

from panini_video.io.urls import (
    MaskingFilter,
    install_masking,
    live_input_kind,
    live_output_kind,
    mask,
    secrets_in,
)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("rtsp://cam/stream", "rtsp"),
        ("RTSPS://cam:322/stream", "rtsp"),
        ("rtmp://127.0.0.1/live/x", "rtmp"),
        ("srt://127.0.0.1:9000?mode=caller", "srt"),
        ("udp://127.0.0.1:1234", "udp"),
        ("https://example.test/live.m3u8", "hls"),
        ("/dev/video0", "v4l2"),
        ("-", "stdin"),
        ("clip.mp4", None),
        ("/dev/videox", None),
        ("ftp://host/x.mp4", None),
        ("a:b.mp4", None),  # a file with a colon, not a scheme
    ],
)
def test_input_kinds(name: str, kind: str | None) -> None:
    assert live_input_kind(name) == kind


def test_output_kinds_are_the_publishable_ones() -> None:
    assert [live_output_kind(n) for n in ("rtsp://s/x", "rtmps://s/x", "srt://s:1", "udp://s:1")] == [
        "rtsp",
        "rtmp",
        "srt",
        "udp",
    ]
    assert live_output_kind("http://s/x") is None and live_output_kind("out.mp4") is None


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("rtsp://admin:hunter2@10.0.0.5/ch1", "rtsp://admin:***@10.0.0.5/ch1"),
        ("rtmp://u:p%40ss@host/app", "rtmp://u:***@host/app"),
        ("rtsp://admin@cam/x", "rtsp://admin@cam/x"),  # a user without a password: nothing secret
        (
            "srt://h:1?mode=caller&passphrase=longsecret1&latency=200",
            "srt://h:1?mode=caller&passphrase=***&latency=200",
        ),
        ("https://h/live.m3u8?token=abc123", "https://h/live.m3u8?token=***"),
        ("error at rtsp://a:b@h/x and rtsp://c:d@h/y", "error at rtsp://a:***@h/x and rtsp://c:***@h/y"),
        ("clip.mp4", "clip.mp4"),
    ],
)
def test_mask(text: str, shown: str) -> None:
    assert mask(text) == shown
    assert mask(mask(text)) == shown  # masking twice changes nothing


def test_secrets_are_found_for_the_log_filter() -> None:
    assert secrets_in("rtsp://admin:hunter2@h/x?token=t0k") == ["hunter2", "t0k"]
    assert secrets_in("rtsp://h/x") == []


def test_every_log_record_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    """A message that quotes the password on its own (FFmpeg does) is masked too, not only URLs."""
    log = logging.getLogger("tests.urls")
    filt = MaskingFilter(secrets_in("rtsp://admin:hunter2@h/x"))
    caplog.handler.addFilter(filt)
    try:
        with caplog.at_level(logging.INFO, logger="tests.urls"):
            log.info("opening %s", "rtsp://admin:hunter2@h/x")
            log.info("server said: bad password hunter2")
    finally:
        caplog.handler.removeFilter(filt)
    assert "hunter2" not in caplog.text
    assert "rtsp://admin:***@h/x" in caplog.text and "bad password ***" in caplog.text


def test_install_masking_reaches_the_root_handlers() -> None:
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        filt = install_masking(["srt://h:1?passphrase=abcdefghij"])
        assert filt in handler.filters and filt.secrets == ["abcdefghij"]
    finally:
        root.removeHandler(handler)
