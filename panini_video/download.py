"""Resumable, size-checked HTTP(S) downloads with urllib, and Google Drive's confirm-page flow.

A download writes ``DEST.part`` and renames it to ``DEST`` only once its size (and sha256, when
known) check out, so an interrupted run leaves a ``.part`` that the next run resumes with an HTTP
``Range`` request. An unreachable host fails at once (no retries); a transfer cut off after it
started is resumed a few times before giving up.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path

from panini_video.errors import DownloadError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]
"""Called as ``progress(bytes_done, bytes_total_or_None)`` while a file downloads."""

USER_AGENT = "panini-video (+https://github.com/panini-video)"
DEFAULT_HINT = "Download the file by other means and import it with 'panini-video weights import FILE'."
DRIVE_URL_ENV = "PANINI_VIDEO_DRIVE_URL"
DRIVE_URL = "https://drive.google.com"
CHUNK = 1 << 20
MAX_PAGE = 1 << 20  # a Drive confirm page is a few kB; never read a whole file as a page


class _Retry(Exception):
    """A transfer failed after it started: worth resuming (internal)."""


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    retry_wait: float = 1.0,
    hint: str = DEFAULT_HINT,
    opener: urllib.request.OpenerDirector | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` if present; returns ``dest``.

    Args:
        size: expected size in bytes; a server offering another size is refused.
        sha256: expected hex digest of the whole file; a mismatch deletes the file and raises.
        timeout: seconds a connect or a read may block.
        retries: how many times a transfer that broke off is resumed before giving up.
        hint: appended to every error message: how to get the file some other way.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    opener = opener or urllib.request.build_opener()
    attempt = 0
    while True:
        try:
            _transfer(url, part, size=size, progress=progress, timeout=timeout, hint=hint, opener=opener)
            break
        except _Retry as exc:
            attempt += 1
            if attempt > retries:
                raise DownloadError(f"download of {url} failed after {retries} retries: {exc}. {hint}") from exc
            wait = retry_wait * 2 ** (attempt - 1)
            log.warning("download of %s broke off (%s); resuming in %.1f s (%d/%d)", url, exc, wait, attempt, retries)
            time.sleep(wait)
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} has {got} bytes, expected {size}. {hint}")
    if sha256 is not None:
        digest = file_sha256(part)
        if digest != sha256.lower():
            part.unlink(missing_ok=True)
            raise DownloadError(f"download of {url} has sha256 {digest}, expected {sha256.lower()}. {hint}")
    os.replace(part, dest)
    log.info("downloaded %s to %s (%d bytes)", url, dest, got)
    return dest


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open(
    url: str, opener: urllib.request.OpenerDirector, timeout: float, hint: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """Open ``url``; unreachable hosts and HTTP client errors raise DownloadError, server errors _Retry."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        return opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}. {hint}") from exc
    except urllib.error.URLError as exc:
        # Refused, no route, no DNS, TLS failure, connect timeout: retrying would only make the
        # user wait (the usual cause is being offline or behind a firewall).
        raise DownloadError(f"cannot reach {_host(url)} for {url}: {exc.reason}. {hint}") from exc
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise DownloadError(f"cannot reach {_host(url)} for {url}: {exc}. {hint}") from exc


def _transfer(
    url: str,
    part: Path,
    *,
    size: int | None,
    progress: ProgressCallback | None,
    timeout: float,
    hint: str,
    opener: urllib.request.OpenerDirector,
) -> None:
    """One request: append to (or restart) ``part`` until the server's byte count is reached."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is not None and have == size:
        return  # a previous run finished the bytes but not the checks
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = _open(url, opener, timeout, hint, headers)
    except DownloadError as exc:
        if have and isinstance(exc.__cause__, urllib.error.HTTPError) and exc.__cause__.code == 416:
            # Range not satisfiable: the part is complete if the server's total equals it.
            total = _content_range_total(exc.__cause__.headers.get("Content-Range", ""))
            if total == have:
                return
            part.unlink()
            raise _Retry("the partial file does not match the server's; starting again") from exc
        raise
    with response:
        length = response.headers.get("Content-Length")
        length_n = int(length) if length and length.isdigit() else None
        if response.status == 206 and have:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink()
                raise _Retry(f"server resumed at byte {start}, not {have}")
            mode = "ab"
        else:
            if have:
                log.info("%s does not support resuming; starting again", _host(url))
            have, mode = 0, "wb"
        total = have + length_n if length_n is not None else None
        if size is not None and total is not None and total != size:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url} offers {total} bytes, expected {size}. {hint}")
        done = have
        if progress:
            progress(done, total)
        try:
            with open(part, mode) as f:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            raise _Retry(f"transfer broke off at byte {done}: {exc}") from exc
    if total is not None and done < total:
        raise _Retry(f"connection closed at byte {done} of {total}")
    if total is not None and done > total:
        part.unlink()
        raise DownloadError(f"{url} sent {done} bytes but announced {total}. {hint}")


def _content_range_start(value: str) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)", value)
    return int(m.group(1)) if m else None


def _content_range_total(value: str) -> int | None:
    m = re.search(r"/(\d+)\s*$", value)
    return int(m.group(1)) if m else None


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


# Google Drive ---------------------------------------------------------------------------------


def drive_url() -> str:
    """Base URL of Google Drive (``$PANINI_VIDEO_DRIVE_URL`` overrides it, for tests and mirrors)."""
    return os.environ.get(DRIVE_URL_ENV, DRIVE_URL).rstrip("/")


def download_drive(
    file_id: str,
    dest: str | os.PathLike[str],
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    retry_wait: float = 1.0,
    hint: str = DEFAULT_HINT,
) -> Path:
    """Download a public Google Drive file by id, through the virus-scan confirm page if one comes."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    url = resolve_drive_url(file_id, opener=opener, timeout=timeout, hint=hint)
    return download(
        url,
        dest,
        size=size,
        sha256=sha256,
        progress=progress,
        timeout=timeout,
        retries=retries,
        retry_wait=retry_wait,
        hint=hint,
        opener=opener,
    )


def resolve_drive_url(
    file_id: str, *, opener: urllib.request.OpenerDirector, timeout: float = 30.0, hint: str = DEFAULT_HINT
) -> str:
    """The URL that serves the file's bytes: ``uc?export=download``, past the confirm page if any.

    Drive answers small files directly. For large ones it serves a "can't scan this file for
    viruses" page, either (since 2024) with a GET form to drive.usercontent.google.com whose hidden
    inputs (id, export, confirm, uuid) make the download URL, or (older) with a link carrying a
    ``confirm=TOKEN`` parameter and a ``download_warning*`` cookie holding the same token.
    """
    url = f"{drive_url()}/uc?" + urllib.parse.urlencode({"export": "download", "id": file_id})
    for _ in range(3):
        try:
            response = _open(url, opener, timeout, hint)
        except _Retry as exc:
            raise DownloadError(f"Google Drive failed for file {file_id}: {exc}. {hint}") from exc
        with response:
            if response.headers.get_content_type() != "text/html" or response.headers.get("Content-Disposition"):
                return response.geturl()  # the bytes themselves; download() asks again, with Range
            page = response.read(MAX_PAGE).decode("utf-8", "replace")
            base = response.geturl()
        next_url = _confirm_url(page, base, opener)
        if next_url is None:
            raise DownloadError(f"Google Drive did not serve file {file_id}: {_drive_problem(page)}. {hint}")
        log.debug("Drive confirm page for %s; following %s", file_id, next_url)
        url = next_url
    raise DownloadError(f"Google Drive kept answering file {file_id} with a page instead of the file. {hint}")


class _FormParser(HTMLParser):
    """Collects the action and hidden inputs of the form with id ``download-form``."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "download-form":
            self._inside, self.action = True, a.get("action", "")
        elif tag == "input" and self._inside and a.get("name") and a.get("type", "hidden") == "hidden":
            self.fields.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def _confirm_url(page: str, base: str, opener: urllib.request.OpenerDirector) -> str | None:
    """The URL the confirm page leads to, or None when the page is not a confirm page."""
    form = _FormParser()
    form.feed(page)
    if form.action is not None:
        action = urllib.parse.urljoin(base, html.unescape(form.action))
        return action + ("&" if "?" in action else "?") + urllib.parse.urlencode(form.fields)
    link = re.search(r'href="([^"]*[?&;]confirm=[^"]+)"', page)
    if link:
        return urllib.parse.urljoin(base, html.unescape(link.group(1)))
    for handler in getattr(opener, "handlers", ()):  # not in typeshed's OpenerDirector
        if isinstance(handler, urllib.request.HTTPCookieProcessor):
            for cookie in handler.cookiejar:
                if cookie.name.startswith("download_warning") and cookie.value:
                    return _with_query(base, confirm=cookie.value)
    return None


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(params)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _drive_problem(page: str) -> str:
    """Drive's own explanation on an error page, in one line."""
    for pattern in (r'class="uc-error-subcaption"[^>]*>(.*?)</', r'class="uc-error-caption"[^>]*>(.*?)</'):
        m = re.search(pattern, page, re.S)
        if m:
            return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", m.group(1))).split())
    if "ServiceLogin" in page or "accounts.google.com" in page:
        return "the file is not public (Drive asked to sign in)"
    title = re.search(r"<title>(.*?)</title>", page, re.S | re.I)
    return f"it answered with a page titled {html.unescape(title.group(1)).strip()!r}" if title else "no file"
