"""``panini-video bench gpu --out DIR``: the one prepared check of a GPU machine, in one go.

Device time is short (15 minutes a session, one run and maybe a rerun), so everything issue 14
asks of the GPU runs from this one command within ``--budget-s`` (480 s by default): the ``cuda``
tests (pytest ``-m cuda``, JUnit XML), ``bench model`` (each variant, batches 1/8/32/64, fp32 and
bf16, eager; then compiled with ``torch.compile``), ``bench pipeline`` on the 1080p crowd clip and
on 1080p clips of 1, 2 and 4 faces (``bench.clips``), ``bench io`` on the crowd and 2-face clips,
and decoding on NVDEC against the CPU (``bench.hwdecode``). DIR receives ``gpu.json`` (every
figure), ``gpu.md`` (the summary: device, driver, torch; ratios against the chip's measured bf16
peak and against the same file's decode+encode rate), ``cuda-tests.xml`` and ``log.txt``: four
files, within what the device tool brings back.

Each section runs in a child process under its own time limit: a hang or a CUDA fault costs that
section, not the run, and every finished item is kept (one JSON line each, written as it ends).
Sections run in order of what matters most, so a short budget drops the compiled rows first.
``--quick`` (implied on the CPU) shrinks every size so the whole check runs on a small CPU in
well under a minute; CI runs it that way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from panini_video.errors import UsageError

log = logging.getLogger(__name__)

PEAK_TFLOPS = 790.0  # bf16 matrix product measured on this workplace's H200 (8192^3, random data)
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the checkout, when the package runs from one
CROWD = "videos/crowd_multiface_1080p.mp4"
FACE_COUNTS = (1, 2, 4)
SECTIONS = ("tests", "model", "pipeline", "io", "compiled")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for gpu.json, gpu.md and the test report")
    parser.add_argument("--device", default=None, help="cuda[:N] or cpu (default: cuda when available)")
    parser.add_argument("--model", default="mfr,sr", help="comma-separated variants: mfr, sr, tiny (default mfr,sr)")
    parser.add_argument("--quick", action="store_true", help="small sizes and batches (implied with --device cpu)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="the whole check's time limit (default 480)")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    parser.add_argument("--testdata", default=None, help="the shared test data (default: $PANINI_TESTDATA, ../shared)")


def run(args: argparse.Namespace) -> int:
    import torch

    from panini_video.models import VARIANTS
    from panini_video.restore.executor import resolve_device

    device = resolve_device(args.device)
    variants = [v.strip() for v in args.model.split(",") if v.strip()]
    if not variants or any(v not in VARIANTS for v in variants):
        raise UsageError(f"--model takes a comma-separated list of {', '.join(VARIANTS)}, got {args.model!r}")
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if not sections or any(s not in SECTIONS for s in sections):
        raise UsageError(f"--sections takes a comma-separated list of {', '.join(SECTIONS)}, got {args.sections!r}")
    if args.budget_s <= 0:
        raise UsageError("--budget-s must be positive")
    testdata = Path(args.testdata or os.environ.get("PANINI_TESTDATA") or checkout().parent / "shared" / "testdata")
    if not (testdata / CROWD).is_file():
        raise UsageError(f"the shared test data is not at {testdata}; give --testdata DIR or set PANINI_TESTDATA")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    quick = args.quick or device.type == "cpu"
    plan = Plan(str(device), variants, quick, testdata)
    start = time.monotonic()
    deadline = start + args.budget_s
    report: dict[str, Any] = {
        "bench": "gpu",
        "settings": {"device": str(device), "models": variants, "quick": quick, "budget_s": args.budget_s},
        "machine": machine(device, torch),
        "sections": {},
    }
    log_path = out / "log.txt"
    log_path.write_text("")
    with tempfile.TemporaryDirectory(prefix="panini-bench-gpu-") as tmp:
        for name in SECTIONS:
            if name not in sections:
                continue
            left = deadline - time.monotonic()
            if name == "compiled" and quick:
                report["sections"][name] = {
                    "skipped": "quick mode: torch.compile takes minutes per shape; "
                    "tests/cuda/test_speed_paths.py checks the compiled path"
                }
                continue
            if left < 10:
                report["sections"][name] = {"skipped": f"time budget spent ({args.budget_s:.0f} s)"}
                continue
            limit = min(left, plan.cap(name, args.budget_s))
            t = time.monotonic()
            if name == "tests":
                result = run_tests(out, testdata, quick, limit, log_path)
            else:
                result = run_child(name, plan.items(name), Path(tmp), limit, log_path)
            result["wall_s"] = time.monotonic() - t
            report["sections"][name] = result
            print(f"bench gpu: {name} done in {result['wall_s']:.1f} s", file=sys.stderr, flush=True)
    report["wall_s"] = time.monotonic() - start
    report["summary"] = summarise(report)
    (out / "gpu.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    text = markdown(report)
    (out / "gpu.md").write_text(text)
    if args.json:
        from panini_video.bench.report import write_json

        write_json(args.json, report)
    if not args.quiet:
        print(text)
    tests = report["sections"].get("tests", {})
    return 1 if tests.get("failures") or tests.get("errors") or tests.get("error") else 0


class Plan:
    """What each section measures, sized for the GPU or (quick) for a small CPU."""

    def __init__(self, device: str, variants: list[str], quick: bool, testdata: Path) -> None:
        from panini_video.bench.clips import clip_name, clips_dir

        self.device, self.variants, self.quick, self.testdata = device, variants, quick, testdata
        self.clip_frames = 4 if quick else 240
        folder = clips_dir()
        self.clips_folder = str(folder)
        self.face_clip = {n: str(folder / clip_name(n, self.clip_frames)) for n in FACE_COUNTS}

    def cap(self, section: str, budget: float) -> float:
        """The most a section may take (its share of a 480 s budget, scaled)."""
        share = {"tests": 0.4, "model": 0.2, "pipeline": 0.25, "io": 0.15, "compiled": 1.0}[section]
        return max(30.0, share * budget)

    def items(self, section: str) -> list[dict[str, Any]]:
        q = self.quick
        batches = [1, 2] if q else [1, 8, 32, 64]
        iters, warmup = (1, 0) if q else (5, 1)
        if section == "model":
            return [
                {
                    "kind": "model",
                    "id": f"model-{v}-eager",
                    "variant": v,
                    "dtypes": ["fp32", "bf16"],
                    "modes": ["eager"],
                    "batches": batches,
                    "iters": iters,
                    "warmup": warmup,
                    "device": self.device,
                }
                for v in self.variants
            ]
        if section == "compiled":  # bf16 first: the precision the targets are set in
            return [
                {
                    "kind": "model",
                    "id": f"model-{v}-{d}-compiled",
                    "variant": v,
                    "dtypes": [d],
                    "modes": ["compiled"],
                    "batches": batches,
                    "iters": iters,
                    "warmup": 1,
                    "device": self.device,
                }
                for d in ("bf16", "fp32")
                for v in self.variants
            ]
        model = self.variants[0]
        crowd = str(self.testdata / CROWD)
        if section == "pipeline":
            frames, warm = (2, 0) if q else (100, 5)
            items: list[dict[str, Any]] = [
                {
                    "kind": "clips",
                    "id": "clips",
                    "testdata": str(self.testdata),
                    "frames": self.clip_frames,
                    "folder": self.clips_folder,
                }
            ]
            clips = [("crowd", crowd, frames)] + [
                (f"{n} face" + "s" * (n > 1), self.face_clip[n], self.clip_frames if q else 240) for n in FACE_COUNTS
            ]
            for label, path, n in clips:
                items.append(
                    {
                        "kind": "pipeline",
                        "id": f"pipeline-{label}",
                        "label": label,
                        "clip": path,
                        "frames": n,
                        "warmup": warm,
                        "model": model,
                        "device": self.device,
                    }
                )
            return items
        if section == "io":
            chosen = [("2 faces", self.face_clip[2])] if q else [("crowd", crowd), ("2 faces", self.face_clip[2])]
            out: list[dict[str, Any]] = []
            for label, path in chosen:
                out.append({"kind": "io", "id": f"io-{label}", "label": label, "clip": path, "repeat": 1 if q else 2})
                out.append(
                    {
                        "kind": "nvdec",
                        "id": f"nvdec-{label}",
                        "label": label,
                        "clip": path,
                        "nvdec": self.device.startswith("cuda") or not q,
                    }
                )
            return out
        raise ValueError(section)


# The sections ------------------------------------------------------------------------------------


def checkout() -> Path:
    """The repository the tests come from: the working folder when it holds them (an installed
    copy of the package run from the checkout, as on the GPU machine), else the package's parent."""
    cwd = Path.cwd()
    return cwd if (cwd / "tests" / "cuda").is_dir() else PACKAGE_ROOT


def run_tests(out: Path, testdata: Path, quick: bool, limit: float, log_path: Path) -> dict[str, Any]:
    """``pytest -m cuda tests/cuda`` in a child, its JUnit XML summarised."""
    root = checkout()
    tests = root / "tests" / "cuda"
    if not tests.is_dir():
        return {"skipped": f"{tests} not found: run bench gpu from a checkout of the repository"}
    xml = out / "cuda-tests.xml"
    xml.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-m",
        "cuda",
        str(tests),
        "--junitxml",
        str(xml),
        "-p",
        "no:cacheprovider",
    ]
    env = {**os.environ, "PANINI_TESTDATA": str(testdata), "PYTHONUNBUFFERED": "1"}
    rc, timed_out = _child_process(cmd, limit, log_path, env=env, cwd=root)
    result: dict[str, Any] = {"returncode": rc, "timed_out": timed_out}
    if not xml.is_file():
        result["error"] = f"pytest wrote no report (exit {rc}{', killed at the time limit' if timed_out else ''})"
        return result
    result.update(junit_summary(xml))
    return result


def junit_summary(path: Path) -> dict[str, Any]:
    """Counts and each test's outcome from a JUnit XML report."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    cases = []
    for case in suite.iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome, message = tag, (node.get("message") or "").splitlines()[0][:300] if node.get("message") else ""
                break
        cases.append(
            {
                "name": f"{case.get('classname')}::{case.get('name')}",
                "outcome": outcome,
                "time_s": float(case.get("time") or 0.0),
                "message": message,
            }
        )
    count = {k: int(suite.get(k) or 0) for k in ("tests", "failures", "errors", "skipped")}
    count["passed"] = count["tests"] - count["failures"] - count["errors"] - count["skipped"]
    return {**count, "cases": cases}


def run_child(section: str, items: list[dict[str, Any]], tmp: Path, limit: float, log_path: Path) -> dict[str, Any]:
    """The section's items in one child process; items it did not reach are marked as such."""
    spec, results = tmp / f"{section}.spec.json", tmp / f"{section}.jsonl"
    spec.write_text(json.dumps({"items": items}))
    cmd = [sys.executable, "-m", "panini_video.bench.gpu", str(spec), str(results)]
    rc, timed_out = _child_process(cmd, limit, log_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    done = {}
    if results.is_file():
        for line in results.read_text().splitlines():
            record = json.loads(line)
            done[record["id"]] = record
    why = (
        f"not reached: the section was stopped at its {limit:.0f} s limit" if timed_out else f"not reached (exit {rc})"
    )
    records = [done.get(item["id"], {"id": item["id"], "ok": False, "error": why}) for item in items]
    return {"returncode": rc, "timed_out": timed_out, "items": records}


def _child_process(
    cmd: list[str], limit: float, log_path: Path, env: dict[str, str], cwd: Path | None = None
) -> tuple[int | None, bool]:
    """Run ``cmd`` with its output appended to the log; (exit code, whether the limit killed it)."""
    with open(log_path, "a") as logf:
        logf.write(f"\n$ {' '.join(cmd)}  (limit {limit:.0f} s)\n")
        logf.flush()
        # Its own process group, so the child and whatever it starts (pytest's, bench io's) go together.
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=cwd, process_group=0)
        try:
            return proc.wait(timeout=limit), False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            logf.write(f"\n[killed at the {limit:.0f} s limit]\n")
            return None, True
        except BaseException:  # a signal or Ctrl-C stopping bench gpu stops the section too
            _kill_group(proc)
            raise


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


# The machine -------------------------------------------------------------------------------------


def machine(device: Any, torch: Any) -> dict[str, Any]:
    """Device name, driver, torch and CUDA versions, and the host around it."""
    import av

    from panini_video.bench.model import machine as host

    info: dict[str, Any] = {**host(device), "pyav": av.__version__, "torch_cuda": torch.version.cuda}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["compute_capability"] = f"{props.major}.{props.minor}"
        info["cudnn"] = torch.backends.cudnn.version()
        info["driver"] = _driver_version()
    return info


def _driver_version() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


# Figures -----------------------------------------------------------------------------------------


def _items(report: dict[str, Any], section: str) -> list[dict[str, Any]]:
    return [r for r in report["sections"].get(section, {}).get("items", []) if r.get("ok")]


def model_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measured bench model row, with its share of the chip's bf16 peak."""
    rows = []
    for section in ("model", "compiled"):
        for record in _items(report, section):
            result = record["result"]
            for row in result["rows"]:
                row = {**row, "gflop_per_face": result["gflop_per_face"]}
                if row.get("tflops") is not None:
                    row["peak_share"] = row["tflops"] / PEAK_TFLOPS
                rows.append(row)
    return rows


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the targets are set on: best faces/s per variant and dtype, fps against decode+encode."""
    best: dict[str, Any] = {}
    for row in model_rows(report):
        if row.get("faces_per_s") is None:
            continue
        key = f"{row['variant']} {row['dtype']}"
        if key not in best or row["faces_per_s"] > best[key]["faces_per_s"]:
            peak_faces = PEAK_TFLOPS * 1000 / row["gflop_per_face"]
            best[key] = {
                "faces_per_s": row["faces_per_s"],
                "batch": row["batch"],
                "mode": row["mode"],
                "peak_faces_per_s": peak_faces,
                "peak_share": row["faces_per_s"] / peak_faces,
            }
    io = {r["result"]["label"]: r["result"] for r in _items(report, "io") if r["result"].get("kind") == "io"}
    pipeline = {}
    for record in _items(report, "pipeline"):
        res = record["result"]
        if res.get("kind") != "pipeline":
            continue
        stages = sorted(res["stages"], key=lambda s: -s["busy_share"])
        entry = {
            "fps": res["fps"],
            "faces_per_frame": res["faces_per_frame"],
            "bottleneck": stages[0]["name"],
            "bottleneck_share": stages[0]["busy_share"],
        }
        if res["label"] in io:
            base = io[res["label"]]
            entry["io_plain_fps"], entry["io_graph_fps"] = base["plain"]["fps"], base["graph"]["fps"]
            entry["of_decode_encode"] = res["fps"] / max(base["plain"]["fps"], base["graph"]["fps"])
        pipeline[res["label"]] = entry
    return {"model_best": best, "pipeline": pipeline}


def markdown(report: dict[str, Any]) -> str:
    from panini_video.bench.gpu_report import render

    return render(report, model_rows(report))


# The child side ----------------------------------------------------------------------------------


def _run_item(item: dict[str, Any]) -> dict[str, Any]:
    kind = item["kind"]
    if kind == "model":
        import torch

        from panini_video.bench import model

        return model.bench(
            item["variant"],
            item["batches"],
            item["dtypes"],
            torch.device(item["device"]),
            iters=item["iters"],
            warmup=item["warmup"],
            modes=item["modes"],
        )
    if kind == "clips":
        from panini_video.bench.clips import face_clips

        made = face_clips(Path(item["testdata"]), FACE_COUNTS, item["frames"], Path(item["folder"]))
        return {"kind": "clips", "clips": {str(n): str(p) for n, p in made.items()}}
    if kind == "pipeline":
        from panini_video.bench import pipeline
        from panini_video.cli.run import DEFAULT_PIPELINE
        from panini_video.config import load_config

        config = load_config(DEFAULT_PIPELINE, {"restore": {"model": item["model"], "device": item["device"]}})
        result = pipeline.bench(item["clip"], config, frames=item["frames"], warmup=item["warmup"])
        return {"kind": "pipeline", "label": item["label"], **result}
    if kind == "io":
        from panini_video.bench import io

        with tempfile.TemporaryDirectory(prefix="panini-io-") as tmp:
            path = Path(tmp) / "io.json"
            ns = argparse.Namespace(
                input=item["clip"],
                repeat=item["repeat"],
                ext=".mp4",
                preset=None,
                crf=None,
                queue_size=8,
                quiet=True,
                json=str(path),
            )
            io.run(ns)
            return {"kind": "io", "label": item["label"], **json.loads(path.read_text())}
    if kind == "nvdec":
        from panini_video.bench import hwdecode

        result: dict[str, Any] = {"kind": "nvdec", "label": item["label"], "hwaccels": hwdecode.hwaccel_available()}
        with tempfile.TemporaryDirectory(prefix="panini-nvdec-") as tmp:
            for decoder in ("cpu", "nvdec") if item["nvdec"] else ("cpu",):
                nv = decoder == "nvdec"
                result[f"decode_{decoder}"] = hwdecode.measure(Path(item["clip"]), nvdec=nv)
                result[f"transcode_{decoder}"] = hwdecode.measure(Path(item["clip"]), nvdec=nv, out=Path(tmp) / "t.mp4")
        return result
    raise ValueError(f"unknown item kind {kind!r}")


def _child_main(argv: list[str]) -> int:
    import traceback

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    spec, results = Path(argv[0]), Path(argv[1])
    for item in json.loads(spec.read_text())["items"]:
        t = time.perf_counter()
        print(f"--- {item['id']}", flush=True)
        try:
            record: dict[str, Any] = {"id": item["id"], "ok": True, "result": _run_item(item)}
        except Exception as exc:  # one item's failure is a figure of the report, not the end of the section
            traceback.print_exc()
            record = {"id": item["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        record["wall_s"] = time.perf_counter() - t
        with open(results, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
