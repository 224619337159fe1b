"""The provenance report as one HTML page: inline CSS, thumbnails as data URIs, no script, no network.

An archive's reader may open it years later on a machine offline, so the page needs nothing but
itself. Every value is escaped; sections carry ids (``identity``, ``weights``, ``conversion``,
``tracks``, ``verification``, ``settings``) and key cells a ``data-key`` so tools can find them.
"""

from __future__ import annotations

import html
import json
from typing import Any

# FFmpeg's AVCOL_* codes, named as ffprobe names them
MATRIX_NAMES = {0: "rgb", 1: "bt709", 2: "unspecified", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m"}
MATRIX_NAMES |= {9: "bt2020nc", 10: "bt2020c"}
RANGE_NAMES = {0: "unspecified", 1: "limited (tv)", 2: "full (pc)"}
PRIMARY_NAMES = {1: "bt709", 2: "unspecified", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020"}
PRIMARY_NAMES |= {11: "smpte431", 12: "smpte432"}
TRANSFER_NAMES = {1: "bt709", 2: "unspecified", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 8: "linear"}
TRANSFER_NAMES |= {13: "iec61966-2-1 (sRGB)", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084 (PQ)"}
TRANSFER_NAMES |= {18: "arib-std-b67 (HLG)"}
COLOUR_NAMES = {"matrix": MATRIX_NAMES, "range": RANGE_NAMES, "primaries": PRIMARY_NAMES, "transfer": TRANSFER_NAMES}

WIDE_COLUMNS = 6  # a list of records with more fields than this is shown one table per record
# nothing is fetched: pictures only from data: URIs, the one inline style sheet, no script at all
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f1ea;color:#222}
header{background:#23395b;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;opacity:.85}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #ddd5c4;border-radius:6px;margin:16px 0;padding:12px 18px;overflow-x:auto}
h2{font-size:17px;margin:4px 0 10px;color:#23395b}
h3{font-size:14px;margin:12px 0 6px}
table{border-collapse:collapse;margin:4px 0 8px}
th,td{border:1px solid #e3ddd0;padding:3px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f0ebe0;font-weight:600;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.ok{color:#1d6b2f;font-weight:600}.bad{color:#a31d1d;font-weight:600}.muted{color:#777}
.assumed{background:#fff2c4}
figure{display:inline-block;margin:0 6px 0 0;text-align:center}
figure img{display:block;border:1px solid #ccc;background:#eee;image-rendering:auto}
figcaption{font-size:11px;color:#555}
details summary{cursor:pointer;font-weight:600}
"""


def esc(value: Any) -> str:
    """``value`` as HTML text (None as an em dash)."""
    if value is None:
        return "&mdash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return esc(f"{value:.6g}")
    if isinstance(value, list | dict):
        return f"<code>{html.escape(json.dumps(value))}</code>"
    return html.escape(str(value))


def kv_table(rows: list[tuple[str, Any]], raw: frozenset[str] = frozenset()) -> str:
    """A two-column table; keys in ``raw`` hold HTML already made (escaped by the caller)."""
    body = "".join(
        f'<tr><th>{esc(k)}</th><td data-key="{esc(k)}">{v if k in raw else esc(v)}</td></tr>' for k, v in rows
    )
    return f"<table>{body}</table>"


def grid(columns: list[str], rows: list[list[Any]], raw_columns: frozenset[int] = frozenset()) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(v)}</td>'
            if isinstance(v, int | float) and not isinstance(v, bool)
            else f"<td>{v if i in raw_columns else esc(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def colour_text(colour: dict[str, Any] | None) -> str:
    """``matrix bt709 (1), range limited (tv) (1), ...``; assumed properties marked."""
    if not colour:
        return esc(None)
    assumed = set(colour.get("assumed") or ())
    parts = []
    for key, names in COLOUR_NAMES.items():
        code = colour.get(key)
        if code is None:
            continue
        text = f"{key} {esc(names.get(code, 'code'))} ({esc(code)})"
        parts.append(f'<span class="assumed">{text}, assumed</span>' if key in assumed else text)
    return ", ".join(parts)


def file_section(title: str, sid: str, entry: dict[str, Any]) -> str:
    ident, facts = entry.get("identity") or {}, entry.get("probe")
    rows: list[tuple[str, Any]] = [
        ("path", ident.get("path")),
        ("size (bytes)", ident.get("size")),
        ("SHA-256 of the first MiB", f'<span class="hash">{esc(ident.get("sha256_first_mib"))}</span>'),
        ("SHA-256 of the last MiB", f'<span class="hash">{esc(ident.get("sha256_last_mib"))}</span>'),
    ]
    raw = frozenset({"SHA-256 of the first MiB", "SHA-256 of the last MiB", "colour", "HDR metadata"})
    out = [f'<section id="{sid}"><h2>{esc(title)}</h2>']
    if facts is None:
        out.append(kv_table(rows, raw) + f'<p class="bad">{esc(entry.get("error", "not probed"))}</p></section>')
        return "".join(out)
    rows += [
        ("container", facts.get("container")),
        ("codec", facts.get("codec")),
        ("profile", facts.get("profile")),
        ("pix_fmt", facts.get("pix_fmt")),
        ("size", f"{facts.get('width')}x{facts.get('height')}"),
        ("frame rate", facts.get("frame_rate")),
        ("frame count (header)", facts.get("frame_count")),
        ("duration (s)", facts.get("duration_s")),
        ("rotation", facts.get("rotation")),
        ("sample aspect ratio", facts.get("sample_aspect_ratio")),
        ("colour", colour_text(facts.get("colour"))),
        ("HDR metadata", nested(facts["hdr"]) if facts.get("hdr") else "none"),
    ]
    out.append(kv_table(rows, raw))
    streams = facts.get("streams") or []
    if streams:
        cols = ["index", "kind", "codec", "time_base", "details"]
        grid_rows = [
            [s.get("index"), s.get("kind"), s.get("codec"), s.get("time_base"), _stream_details(s)] for s in streams
        ]
        out.append("<h3>Streams</h3>" + grid(cols, grid_rows, raw_columns=frozenset({4})))
    out.append("</section>")
    return "".join(out)


def _stream_details(stream: dict[str, Any]) -> str:
    skip = {"index", "kind", "codec", "time_base"}
    return ", ".join(f"{esc(k)} {esc(v)}" for k, v in stream.items() if k not in skip)


def run_section(report: dict[str, Any]) -> str:
    run = report.get("run", {})
    rows = [(k.replace("_", " "), v) for k, v in run.items()]
    return f'<section id="run"><h2>Run</h2>{kv_table(rows)}</section>'


def weights_section(weights: dict[str, Any]) -> str:
    rows = []
    for role in ("restore", "detector"):
        w = weights.get(role)
        if w is None:
            rows.append([role, "none (not loaded)", None, None, ""])
            continue
        sha = f'<span class="hash" data-key="sha256-{role}">{esc(w.get("sha256"))}</span>'
        rows.append([role, w.get("name"), w.get("path"), w.get("size"), sha])
    table = grid(["role", "name", "path", "size (bytes)", "SHA-256"], rows, raw_columns=frozenset({4}))
    return f'<section id="weights"><h2>Weights</h2>{table}</section>'


def conversion_section(conv: dict[str, Any]) -> str:
    out = ['<section id="conversion"><h2>What was converted</h2>']
    de = conv.get("deinterlace") or {}
    rows: list[tuple[str, Any]] = [
        ("deinterlace", de.get("mode")),
        ("filter", de.get("filter")),
        ("field order", de.get("field_order")),
        ("why", de.get("reason")),
        ("frame rate in / out", f"{de.get('frame_rate_in')} / {de.get('frame_rate_out')}"),
    ]
    out.append("<h3>Fields</h3>" + kv_table(rows))
    colour = conv.get("colour") or {}
    assumed = colour.get("assumed") or []
    rows = [
        ("input pix_fmt", colour.get("pix_fmt")),
        ("input colour (as read)", colour_text(colour)),
        ("assumed", ", ".join(assumed) if assumed else "nothing: the input said every property"),
    ]
    out.append("<h3>Colour</h3>" + kv_table(rows, frozenset({"input colour (as read)"})))
    o = conv.get("output")
    if o:
        rows = [
            ("container", o.get("container")),
            ("codec", o.get("codec")),
            ("profile", o.get("profile")),
            ("pix_fmt", o.get("pix_fmt")),
            ("colour (tagged)", colour_text(o.get("colour"))),
        ]
        out.append("<h3>Output encoding</h3>" + kv_table(rows, frozenset({"colour (tagged)"})))
    out.append("</section>")
    return "".join(out)


def _figure(uri: str | None, caption: str, frame: int) -> str:
    if not uri or not uri.startswith("data:image/png;base64,"):
        return f'<span class="muted">{esc(caption)}: no picture</span>'
    alt = f"{caption}, frame {frame}"
    return f'<figure><img src="{esc(uri)}" alt="{esc(alt)}"><figcaption>{esc(caption)}</figcaption></figure>'


def tracks_section(tracks: dict[str, Any]) -> str:
    rows = []
    for t in tracks.get("rows", []):
        size = t.get("median_size")
        best = t.get("best")
        if best:
            frame = best["frame"]
            faces = _figure(best.get("before"), "before", frame) + _figure(best.get("after"), "after", frame)
            sharp = f"frame {esc(best['frame'])}, sharpness {esc(best['sharpness'])}<br>{faces}"
        else:
            sharp = '<span class="muted">no pictures kept</span>'
        rows.append(
            [
                t.get("track"),
                t.get("first_frame"),
                t.get("last_frame"),
                t.get("faces"),
                None if size is None else f"{size[0]}x{size[1]}",
                sharp,
            ]
        )
    cols = ["track", "first frame", "last frame", "faces", "median face size", "sharpest face, before / after"]
    count = f'<p>Tracks: <b data-key="tracks">{esc(tracks.get("count"))}</b></p>'
    if rows:
        body = grid(cols, rows, raw_columns=frozenset({5}))
    elif tracks.get("count"):
        body = '<p class="muted">This run restored no faces (annotate): it kept no record of each track.</p>'
    else:
        body = '<p class="muted">No faces were tracked.</p>'
    return f'<section id="tracks"><h2>Tracks</h2>{count}{body}</section>'


def nested(value: Any, depth: int = 0) -> str:
    """A JSON value as HTML: dicts as key/value tables, lists of dicts as one table, the rest as text."""
    if depth > 4:
        return esc(value)
    if isinstance(value, dict):
        if not value:
            return esc(None)
        body = "".join(
            f'<tr><th>{esc(k)}</th><td data-key="{esc(k)}">{_status(k, v) or nested(v, depth + 1)}</td></tr>'
            for k, v in value.items()
        )
        return f"<table>{body}</table>"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for v in value for k in v))
        if len(columns) > WIDE_COLUMNS:  # too wide for one row each: one table per item
            return "".join(nested(v, depth + 1) for v in value)
        rows = [[_status(c, v.get(c)) or nested(v.get(c), depth + 1) for c in columns] for v in value]
        return grid(columns, rows, raw_columns=frozenset(range(len(columns))))
    return esc(value)


def _status(key: str, value: Any) -> str:
    """A ``status`` cell coloured by its verdict; empty for any other key."""
    if key != "status" or not isinstance(value, str):
        return ""
    cls = {"ok": "ok", "failed": "bad", "error": "bad"}.get(value, "muted")
    return f'<span class="{cls}">{esc(value)}</span>'


def verification_section(ver: dict[str, Any]) -> str:
    status = ver.get("status", "not run")
    out = ['<section id="verification"><h2>Verification</h2><p>Status: ']
    out.append(f'<b data-key="verification-status">{_status("status", status)}</b></p>')
    rest = {k: v for k, v in ver.items() if k != "status"}
    if rest:
        out.append(nested(rest))
    out.append("</section>")
    return "".join(out)


def settings_section(settings: dict[str, Any]) -> str:
    parts = ['<section id="settings"><h2>Settings</h2>']
    for name, section in settings.items():
        if isinstance(section, dict):
            parts.append(f"<details open><summary>{esc(name)}</summary>{kv_table(list(section.items()))}</details>")
        else:
            parts.append(kv_table([(name, section)]))
    parts.append("</section>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """The whole page for ``report`` (``build.build_report``'s dict)."""
    name = (report.get("input", {}).get("identity") or {}).get("path", "")
    outs = report.get("outputs") or []
    body = [
        f"<header><h1>panini-video provenance report</h1><p>{esc(name)} &rarr; "
        f"{esc(', '.join(str((o.get('identity') or {}).get('path')) for o in outs))}"
        f" &middot; panini-video {esc(report.get('panini_video'))} &middot; {esc(report.get('created'))}</p></header>",
        "<main>",
        file_section("Input", "identity", report.get("input", {})),
        *(file_section(f"Output {i + 1}" if len(outs) > 1 else "Output", f"output-{i}", o) for i, o in enumerate(outs)),
        run_section(report),
        conversion_section(report.get("conversion", {})),
        tracks_section(report.get("tracks", {})),
        verification_section(report.get("verification", {})),
        weights_section(report.get("weights", {})),
        settings_section(report.get("settings", {})),
        "</main>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>Report: {esc(name)}</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
