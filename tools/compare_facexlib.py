"""Compare our RetinaFace with facexlib's on the same weights and photos (a manual check, not a test).

facexlib cannot live in the project's environment (it imports torchvision), so this runs in two
steps, each in its own environment:

    # 1. in a scratch venv with facexlib (``python -m venv fx && fx/bin/pip install facexlib``):
    fx/bin/python tools/compare_facexlib.py dump WEIGHTS.pth PHOTO... --out facexlib.json
    # 2. in the project's venv:
    .venv/bin/python tools/compare_facexlib.py compare facexlib.json WEIGHTS.pth

``dump`` runs facexlib at each photo's own size (``use_origin_size=True``) and, with
``--det-size N``, also on a copy shrunk like ours (longest side N, cv2.INTER_AREA), its results
scaled back to the photo's pixels. ``compare`` runs ours with the same settings and prints, per
face (matched by IoU), the largest box, landmark and score differences.
"""

from __future__ import annotations

import argparse
import json
import sys
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
    import torch

    from panini_video.config import DetectConfig
    from panini_video.faces.nms import box_iou
    from panini_video.faces.retinaface import load_detector

    data = json.loads(Path(args.reference).read_text())
    meta = data["meta"]
    backbone = "resnet50" if meta["network"] == "resnet50" else "mobilenet"
    base = load_detector(DetectConfig(detector=backbone, weights=args.weights, threshold=meta["threshold"]))
    worst = 0.0
    for run, photos in data["runs"].items():
        det_size = 1_000_000 if run == "origin" else int(run.removeprefix("det"))
        detector = base.with_settings(det_size=det_size)
        box_d, lm_d, sc_d, count_ok = [], [], [], True
        for name, ref in photos.items():
            image = cv2.cvtColor(cv2.imread(ref["path"]), cv2.COLOR_BGR2RGB)
            ours = detector.detect([image])[0]
            ref_boxes = np.array(ref["boxes"], np.float32).reshape(-1, 4)
            ref_lms = np.array(ref["landmarks"], np.float32).reshape(-1, 5, 2)
            count_ok &= len(ours) == len(ref_boxes)
            print(f"[{run}] {name}: ours {len(ours)}, facexlib {len(ref_boxes)}")
            if len(ours) == 0 or len(ref_boxes) == 0:
                continue
            iou = box_iou(torch.from_numpy(ours.boxes), torch.from_numpy(ref_boxes)).numpy()
            for i, j in enumerate(iou.argmax(axis=1)):
                box_d.append(np.abs(ours.boxes[i] - ref_boxes[j]))
                lm_d.append(np.abs(ours.landmarks[i] - ref_lms[j]).ravel())
                sc_d.append(abs(float(ours.scores[i]) - ref["scores"][j]))
        if box_d:
            b, lm = np.concatenate(box_d), np.concatenate(lm_d)
            worst = max(worst, float(b.max()), float(lm.max()))
            print(
                f"[{run}] {len(sc_d)} faces, counts {'equal' if count_ok else 'DIFFER'}; |box diff| px max "
                f"{b.max():.3g} mean {b.mean():.3g}; |landmark diff| px max {lm.max():.3g} mean {lm.mean():.3g}; "
                f"|score diff| max {max(sc_d):.3g}"
            )
    return 0 if worst < args.tolerance else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("dump", help="run facexlib (in an environment that has it) and write JSON")
    p.add_argument("weights")
    p.add_argument("photos", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--det-size", type=int, default=640, help="also run on copies shrunk to this; 0: only origin")
    p = sub.add_parser("compare", help="run ours on the same photos and print the differences")
    p.add_argument("reference")
    p.add_argument("weights")
    p.add_argument("--tolerance", type=float, default=0.5, help="px; exit 1 when a difference is larger")
    args = parser.parse_args(argv)
    return dump(args) if args.command == "dump" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
