"""Compare our RetinaFace with facexlib's on the same weights and images (a manual check, not a test).

facexlib cannot live in the project's environment (it imports torchvision), so this runs in two
steps, each in its own environment:

    # 0. (project venv, optional) clip frames as PNG files, every 60th frame:
    .venv/bin/python tools/compare_facexlib.py frames VIDEO... --every 60 --out DIR
    # 1. in a scratch venv with facexlib (``python -m venv fx && fx/bin/pip install facexlib``):
    fx/bin/python tools/compare_facexlib.py dump WEIGHTS.pth IMAGE... --out facexlib.json
    # 2. in the project's venv:
    .venv/bin/python tools/compare_facexlib.py compare facexlib.json WEIGHTS.pth

``dump`` runs facexlib at each image's own size (``use_origin_size=True``) and, with
``--det-size N`` (default 640), also on a copy shrunk like ours (longest side N, cv2.INTER_AREA),
its results scaled back to the image's pixels. ``compare`` runs ours with the same settings,
matches faces one to one (greedy by IoU, at least 0.5) and prints, per run, the largest and mean
absolute differences (``panini-video bench faces --facexlib JSON`` prints the same table; here
condensed, box means below 2.1e-05 px, score means 0):

    dump (threshold 0.8)      run     images  faces  unmatched  box max px  lmk max px  lmk mean px  score max
    facexlib_photos_0.8.json  origin       7     12          0    1.22e-04    0.00e+00     0.00e+00   0.00e+00
    facexlib_photos_0.8.json  det640       7     11          0    1.22e-04    1.22e-04     1.01e-05   0.00e+00
    facexlib_frames_0.8.json  origin      33     57          0    1.22e-04    0.00e+00     0.00e+00   0.00e+00
    facexlib_frames_0.8.json  det640      33     50          0    1.22e-04    1.22e-04     3.27e-06   0.00e+00

(the 7 shared photos and 33 clip frames, every 50th of each shared clip; threshold 0.8;
MobileNet-0.25 weights; facexlib 0.3 with torch 2.15 on the CPU, ours with torch 2.13 on the CPU:
the differences are float32 rounding of pixel coordinates, 1.22e-4 being one ulp at 1024-2048.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np


def shrunk_size(height: int, width: int, det_size: int) -> tuple[int, int]:
    scale = min(1.0, det_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def dump(args: argparse.Namespace) -> int:
    import torch
    from facexlib.detection.retinaface import RetinaFace

    network = "resnet50" if "resnet" in Path(args.weights).name.lower() else "mobile0.25"
    model = RetinaFace(network_name=network, half=False)
    state = torch.load(args.weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    model.eval()
    results: dict[str, dict] = {}
    for photo in args.photos:
        bgr = cv2.imread(photo)
        if bgr is None:
            raise SystemExit(f"cannot read image {photo}")
        h, w = bgr.shape[:2]
        runs = {"origin": (bgr, 1.0, 1.0)}
        if args.det_size:
            sh, sw = shrunk_size(h, w, args.det_size)
            small = cv2.resize(bgr, (sw, sh), interpolation=cv2.INTER_AREA) if (sh, sw) != (h, w) else bgr
            runs[f"det{args.det_size}"] = (small, w / sw, h / sh)
        for run, (image, fx, fy) in runs.items():
            with torch.no_grad():
                r = model.detect_faces(image, conf_threshold=args.threshold, nms_threshold=0.4, use_origin_size=True)
            scale = np.array([fx, fy], np.float32)
            results.setdefault(run, {})[Path(photo).name] = {
                "path": str(Path(photo).resolve()),
                "boxes": (r[:, :4].reshape(-1, 2, 2) * scale).reshape(-1, 4).tolist(),
                "scores": r[:, 4].tolist(),
                "landmarks": (r[:, 5:15].reshape(-1, 5, 2) * scale).tolist(),
            }
    meta = {"threshold": args.threshold, "det_size": args.det_size, "network": network, "torch": torch.__version__}
    Path(args.out).write_text(json.dumps({"meta": meta, "runs": results}))
    return 0


def compare(args: argparse.Namespace) -> int:
    from panini_video.bench.face_metrics import agreement_section
    from panini_video.bench.faces import format_section
    from panini_video.config import DetectConfig
    from panini_video.faces.retinaface import load_detector

    meta = json.loads(Path(args.reference).read_text())["meta"]
    config = DetectConfig(detector="resnet50" if meta["network"] == "resnet50" else "mobilenet", weights=args.weights)
    detector = load_detector(config)
    start = time.perf_counter()
    data = agreement_section(detector, [Path(args.reference)], Path(args.testdata))
    data["seconds"] = time.perf_counter() - start
    print(format_section("agreement", data, {"detect": {}, "machine": {}}))
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    worst = max(max(r["box_max_px"], r["landmark_max_px"]) for r in data["rows"])
    return 0 if worst < args.tolerance and not any(r["unmatched"] for r in data["rows"]) else 1


def frames(args: argparse.Namespace) -> int:
    from panini_video.io import VideoReader

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for video in args.videos:
        with VideoReader(video) as reader:
            for frame in reader:
                if frame.index % args.every == 0:
                    name = out / f"{Path(video).stem}_{frame.index:03d}.png"
                    cv2.imwrite(str(name), cv2.cvtColor(frame.rgb(), cv2.COLOR_RGB2BGR))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("dump", help="run facexlib (in an environment that has it) and write JSON")
    p.add_argument("weights")
    p.add_argument("photos", nargs="+", metavar="IMAGE")
    p.add_argument("--out", required=True)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--det-size", type=int, default=640, help="also run on copies shrunk to this; 0: only origin")
    p = sub.add_parser("compare", help="run ours on the same images and print the differences")
    p.add_argument("reference")
    p.add_argument("weights")
    p.add_argument("--tolerance", type=float, default=0.5, help="px; exit 1 when a difference is larger")
    p.add_argument("--testdata", default="../shared/testdata", help="where photos are looked up when moved")
    p.add_argument("--json", help="also write the figures as JSON")
    p = sub.add_parser("frames", help="write every N-th frame of videos as PNG (project venv)")
    p.add_argument("videos", nargs="+")
    p.add_argument("--every", type=int, default=60)
    p.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return {"dump": dump, "compare": compare, "frames": frames}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
