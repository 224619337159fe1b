"""``report.identity``: a file's size and end hashes against hashlib, the probe facts of an HDR10 clip."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from panini_video.errors import InputError
from panini_video.report.html import render_html
from panini_video.report.identity import MIB, file_identity, media_facts, sha256_file

HDR10 = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"  # BT.2020, 0.0001-1000 cd/m2


def test_identity_hashes_the_first_and_last_mib(testdata: Path) -> None:
    big = testdata / "videos" / "crowd_multiface_1080p.mp4"  # 2.4 MB: the two ends do not overlap
    data = big.read_bytes()
    ident = file_identity(big)
    assert ident.size == len(data) > 2 * MIB
    assert ident.sha256_first_mib == hashlib.sha256(data[:MIB]).hexdigest()
    assert ident.sha256_last_mib == hashlib.sha256(data[-MIB:]).hexdigest()
    assert ident.sha256_first_mib != ident.sha256_last_mib


def test_whole_file_hash_follows_the_file(tmp_path: Path) -> None:
    f = tmp_path / "weights.bin"
    f.write_bytes(b"a" * (3 * MIB + 5))
    assert sha256_file(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    f.write_bytes(b"b" * 7)  # rewritten: the remembered hash must not be given back
    assert sha256_file(f) == hashlib.sha256(b"b" * 7).hexdigest()
    with pytest.raises(InputError, match="cannot be read"):
        file_identity(tmp_path / "missing.mp4")


def test_media_facts_of_an_hdr10_clip(tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("Debian's ffmpeg command line is not installed (apt-get install ffmpeg; tools/test-servers.sh)")
    clip = tmp_path / "hdr10.mp4"
    params = f"log-level=error:hdr10=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:master-display={HDR10}"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=128x72:rate=25"]
    cmd += ["-t", "0.2", "-pix_fmt", "yuv420p10le", "-c:v", "libx265", "-x265-params", f"{params}:max-cll=1000,400"]
    cmd += ["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc", str(clip)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "libx265" in done.stderr:
        pytest.skip(f"this ffmpeg cannot encode HEVC: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    facts = media_facts(clip)
    assert (facts["codec"], facts["profile"], facts["pix_fmt"]) == ("hevc", "Main 10", "yuv420p10le")
    assert facts["colour"] == {"matrix": 9, "range": 1, "primaries": 9, "transfer": 16}
    assert facts["frame_count"] == 5 and (facts["width"], facts["height"]) == (128, 72)
    hdr = facts["hdr"]
    assert hdr["content_light"] == {"max_cll": 1000, "max_fall": 400}
    assert hdr["mastering_display"]["max_luminance"] == 1000 and hdr["mastering_display"]["min_luminance"] == 0.0001
    assert hdr["mastering_display"]["white_point"] == pytest.approx([0.3127, 0.329])
    page = render_html({"input": {"identity": file_identity(clip).to_dict(), "probe": facts}})
    assert "transfer smpte2084 (PQ) (16)" in page and '<td data-key="max_cll">1000</td>' in page
