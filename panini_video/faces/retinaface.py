"""RetinaFace as a ``FaceDetector``: preprocessing, network, decoding and NMS, batched over frames.

Preprocessing follows the original (biubug6/Pytorch_Retinaface ``detect.py``, facexlib): the
network was trained on BGR pixels minus the mean (104, 117, 123), not scaled to [0, 1]. Each
frame is shrunk so its longest side is ``det_size`` and never enlarged: the detector sees faces
from 16 px up, upscaling costs time without finding more, and a frame already smaller than
``det_size`` is then detected exactly as the original does at its size. Shrinking is OpenCV's
area averaging on the host, so only the small image travels to the device.
Frames of different sizes are padded (bottom and right) to a common size; the padding is the
mean colour, which is what the first convolution's own zero padding sees, so a frame's
detections change little with its batch mates (exactly none when all frames share a size).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import torch

from panini_video.config import DetectConfig
from panini_video.faces.detector import Detection, scaled_size
from panini_video.faces.nms import batched_nms
from panini_video.faces.priors import decode_boxes, decode_landmarks, prior_boxes
from panini_video.faces.retinaface_net import Backbone, RetinaFaceNet
from panini_video.faces.retinaface_weights import load_net, resolve_weights

log = logging.getLogger(__name__)

BGR_MEAN = (104.0, 117.0, 123.0)


@dataclass(frozen=True)
class DetectSettings:
    """How detections are made and filtered (the part of ``DetectConfig`` the detector uses)."""

    det_size: int = 640  # longest side seen by the network; smaller frames are not enlarged
    threshold: float = 0.8  # face probability above which a prior is a face
    nms_threshold: float = 0.4  # IoU above which the lower-scoring of two faces is dropped
    pre_nms_top_k: int = 2000  # candidates per frame entering NMS (bounds its K x K IoU matrix)

    def __post_init__(self) -> None:
        if self.det_size < 32:
            raise ValueError(f"det_size must be at least 32, got {self.det_size}")
        if not 0.0 <= self.threshold < 1.0 or not 0.0 < self.nms_threshold <= 1.0:
            raise ValueError(f"thresholds out of range: {self.threshold}, {self.nms_threshold}")

    @classmethod
    def from_config(cls, config: DetectConfig) -> DetectSettings:
        return cls(det_size=config.det_size, threshold=config.threshold, nms_threshold=config.nms_threshold)


class RetinaFace:
    """RetinaFace face detector; ``detect`` takes any number of frames, of any sizes, in one pass."""

    def __init__(
        self,
        net: RetinaFaceNet,
        settings: DetectSettings | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.settings = settings or DetectSettings()
        self._priors: dict[tuple[int, int], torch.Tensor] = {}

    @property
    def backbone(self) -> Backbone:
        return self.net.backbone  # type: ignore[return-value]

    def with_settings(self, **changes: Any) -> RetinaFace:
        """A detector sharing this one's network, with some settings changed."""
        return RetinaFace(self.net, replace(self.settings, **changes), self.device)

    def __repr__(self) -> str:
        return f"RetinaFace(backbone={self.backbone}, device={self.device}, {self.settings})"

    @torch.inference_mode()
    def detect(self, frames: Sequence[np.ndarray]) -> list[Detection]:
        """One ``Detection`` per RGB uint8 (H, W, 3) frame, in the frame's own pixels."""
        if len(frames) == 0:
            return []
        batch, sizes = self.prepare(frames)
        loc, scores, landmarks = self.net(batch)
        return self.postprocess(loc, scores, landmarks, batch.shape[-2:], sizes, [f.shape[:2] for f in frames])

    def prepare(self, frames: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """The network input (B, 3, H, W): scaled, BGR, mean-subtracted, padded; and each frame's scaled size."""
        mean = torch.tensor(BGR_MEAN, device=self.device).view(3, 1, 1)
        scaled, sizes = [], []
        for frame in frames:
            if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3):
                raise ValueError(f"frames must be RGB (H, W, 3) arrays, got {getattr(frame, 'shape', type(frame))}")
            h, w = frame.shape[:2]
            size = scaled_size(h, w, self.settings.det_size)
            if size != (h, w):  # on the host: the device then gets the small image only
                frame = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            x = torch.from_numpy(bgr).to(self.device, non_blocking=True).permute(2, 0, 1).float()
            scaled.append(x - mean)
            sizes.append(size)
        height, width = max(s[0] for s in sizes), max(s[1] for s in sizes)
        batch = torch.zeros(len(frames), 3, height, width, device=self.device)
        for i, x in enumerate(scaled):
            batch[i, :, : x.shape[1], : x.shape[2]] = x
        return batch, sizes

    def priors(self, height: int, width: int) -> torch.Tensor:
        """The priors of an input size, cached per size (video frames repeat theirs)."""
        key = (height, width)
        if key not in self._priors:
            if len(self._priors) > 16:
                self._priors.clear()
            self._priors[key] = prior_boxes(height, width, self.device)
        return self._priors[key]

    def postprocess(
        self,
        loc: torch.Tensor,
        scores: torch.Tensor,
        landmarks: torch.Tensor,
        input_size: Sequence[int],
        sizes: Sequence[tuple[int, int]],
        frame_sizes: Sequence[Sequence[int]],
    ) -> list[Detection]:
        """Threshold, decode, NMS, and map back to each frame's pixels."""
        s = self.settings
        height, width = int(input_size[0]), int(input_size[1])
        priors = self.priors(height, width)
        candidates = scores > s.threshold
        k = min(int(candidates.sum(dim=1).max()), s.pre_nms_top_k)
        if k == 0:
            return [Detection.empty() for _ in sizes]
        top_scores, idx = torch.topk(torch.where(candidates, scores, -1.0), k, dim=1)
        valid = top_scores > s.threshold
        boxes = decode_boxes(torch.gather(loc, 1, idx[..., None].expand(-1, -1, 4)), priors[idx])
        points = decode_landmarks(torch.gather(landmarks, 1, idx[..., None].expand(-1, -1, 10)), priors[idx])
        # normalised -> pixels of the padded input -> pixels of each original frame
        to_frame = torch.tensor(
            [[fw / sw, fh / sh] for (sh, sw), (fh, fw) in zip(sizes, frame_sizes, strict=True)],
            device=self.device,
        )
        xy_scale = torch.tensor([width, height], device=self.device) * to_frame  # (B, 2)
        boxes = boxes * xy_scale.repeat(1, 2)[:, None, :]
        points = points * xy_scale[:, None, None, :]
        keep = batched_nms(boxes, top_scores, valid, s.nms_threshold)
        # one transfer to the host; topk already sorted by score, so kept rows stay sorted
        keep_h, boxes_h, points_h, scores_h = (t.cpu().numpy() for t in (keep, boxes, points, top_scores))
        return [
            Detection(
                boxes=boxes_h[i][keep_h[i]].astype(np.float32),
                landmarks=points_h[i][keep_h[i]].astype(np.float32),
                scores=scores_h[i][keep_h[i]].astype(np.float32),
            )
            for i in range(len(sizes))
        ]


def load_detector(config: DetectConfig, device: torch.device | str = "cpu") -> RetinaFace:
    """The RetinaFace of ``config`` (backbone, weights, thresholds, det_size) on ``device``."""
    path = resolve_weights(config)
    net = load_net(path, config.detector)
    log.info("RetinaFace-%s from %s on %s, det_size %d", config.detector, path, device, config.det_size)
    return RetinaFace(net, DetectSettings.from_config(config), device)
