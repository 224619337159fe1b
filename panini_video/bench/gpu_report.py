"""The markdown summary of ``bench gpu``: the device named, then one table per section.

Figures only from the report; a section or item that did not run says why, in the last part,
so a reader never mistakes a gap for a zero.
"""

from __future__ import annotations

from typing import Any

PEAK_NOTE = "790 TFLOP/s: the bf16 matrix product measured on this workplace's H200"


def render(report: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    m, s = report["machine"], report["settings"]
    where = m.get("gpu") or f"CPU {m.get('cpu')}"
    lines = [f"# bench gpu: {where}", ""]
    facts = [f"device {s['device']}"]
    if m.get("gpu"):
        facts += [
            f"driver {m.get('driver') or 'unknown'}",
            f"compute capability {m.get('compute_capability')}",
            f"{m.get('gpu_memory_gib')} GiB",
        ]
    facts += [
        f"torch {m['torch']} (CUDA {m.get('torch_cuda')}, cuDNN {m.get('cudnn')})",
        f"PyAV {m['pyav']}",
        f"Python {m['python']}",
        f"{m['cpu_count']} CPUs ({m['cpu']})",
    ]
    lines += [
        "; ".join(facts),
        "",
        f"Models {', '.join(s['models'])}; quick: {'yes' if s['quick'] else 'no'}; "
        f"wall {report['wall_s']:.0f} s of a {s['budget_s']:.0f} s budget.",
        "",
    ]
    lines += _tests(report["sections"].get("tests"))
    lines += _model(rows, report["summary"]["model_best"])
    lines += _pipeline(report)
    lines += _io(report)
    lines += _gaps(report)
    return "\n".join(lines).rstrip() + "\n"


def _table(head: list[str], body: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in body]
    return [*out, ""]


def _n(value: Any, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def _tests(t: dict[str, Any] | None) -> list[str]:
    lines = ["## CUDA tests (`pytest -m cuda tests/cuda`, cuda-tests.xml)", ""]
    if not t:
        return [*lines, "Not run.", ""]
    if "tests" not in t:
        return [*lines, f"Not run: {t.get('skipped') or t.get('error')}", ""]
    lines += [
        f"{t['passed']} passed, {t['failures']} failed, {t['errors']} errors, {t['skipped']} skipped "
        f"of {t['tests']} in {t.get('wall_s', 0):.0f} s" + (" (stopped at its time limit)" if t["timed_out"] else ""),
        "",
    ]
    bad = [c for c in t["cases"] if c["outcome"] in ("failure", "error")]
    if bad:
        lines += _table(["test", "outcome", "message"], [[c["name"], c["outcome"], c["message"]] for c in bad])
    skipped = {c["message"] for c in t["cases"] if c["outcome"] == "skipped"}
    lines += [f"Skipped: {m}" for m in sorted(skipped)]
    return [*lines, ""] if skipped else lines


def _model(rows: list[dict[str, Any]], best: dict[str, Any]) -> list[str]:
    lines = ["## Panini-Net (`bench model`, random weights)", "", f"Peak: {PEAK_NOTE}.", ""]
    if not rows:
        return [*lines, "Not measured.", ""]
    for key, b in best.items():
        lines.append(
            f"- {key}: best {b['faces_per_s']:.4g} faces/s (batch {b['batch']}, {b['mode']}) = "
            f"{100 * b['peak_share']:.1f} % of {b['peak_faces_per_s']:.0f} faces/s at the peak"
        )
    lines.append("")
    head = [
        "variant",
        "dtype",
        "mode",
        "batch",
        "faces/s",
        "ms/batch",
        "TFLOP/s",
        "of peak",
        "peak MiB",
        "first s",
        "max abs d",
        "mean abs d",
        "note",
    ]
    body = [
        [
            r["variant"],
            r["dtype"],
            r["mode"],
            str(r["batch"]),
            _n(r["faces_per_s"], ".4g"),
            _n(r["ms_per_batch"], ".1f"),
            _n(r["tflops"], ".1f"),
            "-" if r.get("peak_share") is None else f"{100 * r['peak_share']:.1f} %",
            _n(r["peak_mib"], ".0f"),
            _n(r.get("first_s"), ".1f"),
            _n(r["max_abs_diff"], ".2e"),
            _n(r["mean_abs_diff"], ".2e"),
            r["note"],
        ]
        for r in rows
    ]
    return lines + _table(head, body)


def _ok(report: dict[str, Any], section: str, kind: str) -> list[dict[str, Any]]:
    items = report["sections"].get(section, {}).get("items", [])
    return [r["result"] for r in items if r.get("ok") and r["result"].get("kind") == kind]


def _pipeline(report: dict[str, Any]) -> list[str]:
    lines = ["## Pipeline (`bench pipeline`: decode, detect, track, restore, paste, encode)", ""]
    results = _ok(report, "pipeline", "pipeline")
    if not results:
        return [*lines, "Not measured.", ""]
    summary = report["summary"]["pipeline"]
    head = [
        "clip",
        "model",
        "precision",
        "frames",
        "faces/frame",
        "fps",
        "graph fps",
        "decode+encode fps (plain/graph)",
        "of decode+encode",
        "bottleneck",
    ]
    body = []
    for r in results:
        e = summary[r["label"]]
        io = f"{e['io_plain_fps']:.4g} / {e['io_graph_fps']:.4g}" if "io_plain_fps" in e else "-"
        share = f"{100 * e['of_decode_encode']:.0f} %" if "of_decode_encode" in e else "-"
        body.append(
            [
                r["label"],
                f"{r['model']} ({r['weights']})",
                str(r["precision"]),
                str(r["frames"]),
                f"{r['faces_per_frame']:.2f}",
                f"{r['fps']:.4g}",
                f"{r['graph_fps']:.4g}",
                io,
                share,
                f"{e['bottleneck']} ({100 * e['bottleneck_share']:.0f} %)",
            ]
        )
    lines += _table(head, body)
    names = [s["name"] for s in results[0]["stages"]]
    lines += ["Busy share of each stage (its thread's busy time over the graph's wall time; shares overlap):", ""]
    shares = [[r["label"]] + [f"{100 * s['busy_share']:.0f} %" for s in r["stages"]] for r in results]
    return lines + _table(["clip", *names], shares)


def _io(report: dict[str, Any]) -> list[str]:
    lines = ["## Decode+encode (`bench io`, x264 at the default settings) and NVDEC", ""]
    io, nv = _ok(report, "io", "io"), _ok(report, "io", "nvdec")
    if not io and not nv:
        return [*lines, "Not measured.", ""]
    if io:
        lines += _table(
            ["clip", "frames", "plain PyAV fps", "stage graph fps", "graph/plain"],
            [
                [
                    r["label"],
                    str(r["frames"]),
                    f"{r['plain']['fps']:.4g}",
                    f"{r['graph']['fps']:.4g}",
                    f"{r['ratio']:.2f}",
                ]
                for r in io
            ],
        )
    if nv:

        def cell(r: dict[str, Any], key: str) -> str:
            x = r.get(key)
            return "-" if x is None else x.get("error") or f"{x['fps']:.4g}"

        lines += _table(
            ["clip", "decode CPU fps", "decode NVDEC fps", "decode+encode CPU fps", "decode+encode NVDEC fps"],
            [
                [
                    r["label"],
                    cell(r, "decode_cpu"),
                    cell(r, "decode_nvdec"),
                    cell(r, "transcode_cpu"),
                    cell(r, "transcode_nvdec"),
                ]
                for r in nv
            ],
        )
    return lines


def _gaps(report: dict[str, Any]) -> list[str]:
    gaps = []
    for name, section in report["sections"].items():
        if isinstance(section.get("skipped"), str):
            gaps.append(f"- {name}: {section['skipped']}")
        for item in section.get("items", []):
            if not item.get("ok"):
                gaps.append(f"- {item['id']}: {item['error'].splitlines()[0][:300]}")
    return ["## Not measured", "", *gaps, ""] if gaps else []
