"""Reading RetinaFace weight files: key checks, the module. prefix, both backbones, the cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import panini_video
from panini_video import cache
from panini_video.config import DetectConfig
from panini_video.download import file_sha256
from panini_video.errors import CheckpointMismatchError, WeightsError, WeightsNotFoundError
from panini_video.faces.retinaface import load_detector
from panini_video.faces.retinaface_net import RetinaFaceNet
from panini_video.faces.retinaface_weights import load_net, read_state_dict, resolve_weights
from panini_video.models import fetch

FIXTURES = Path(__file__).parent / "fixtures"
WEIGHTS = "weights/retinaface_mobilenet0.25_Final.pth"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mobilenet_state(testdata: Path) -> dict[str, torch.Tensor]:
    return torch.load(testdata / WEIGHTS, map_location="cpu", weights_only=True)


def official_resnet50_keys() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (FIXTURES / "retinaface_resnet50_keys.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split()
            rows.append((key, () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))))
    return rows


def test_mobilenet_file_loads_every_tensor(testdata: Path, mobilenet_state: dict) -> None:
    net = load_net(testdata / WEIGHTS, "mobilenet")
    loaded = net.state_dict()
    assert len(loaded) == len(mobilenet_state) == 300
    for key, value in mobilenet_state.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert not net.training


def test_module_prefixed_copy_loads_the_same(tmp_path: Path, mobilenet_state: dict) -> None:
    path = tmp_path / "mobilenet0.25_Final.pth"  # the original's name; it was saved from DataParallel
    torch.save({f"module.{k}": v for k, v in mobilenet_state.items()}, path)
    state = read_state_dict(path)
    assert sorted(state) == sorted(mobilenet_state)
    net = load_net(path, "mobilenet")
    torch.testing.assert_close(net.state_dict()["fpn.merge1.0.weight"], mobilenet_state["fpn.merge1.0.weight"])


def test_missing_key_is_named(tmp_path: Path, mobilenet_state: dict) -> None:
    state = dict(mobilenet_state)
    del state["ssh2.conv7x7_3.1.running_var"]
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(CheckpointMismatchError, match=r"missing keys: ssh2\.conv7x7_3\.1\.running_var"):
        load_net(tmp_path / "w.pth", "mobilenet")


def test_extra_key_and_wrong_shape_are_named(tmp_path: Path, mobilenet_state: dict) -> None:
    state = dict(mobilenet_state)
    state["ClassHead.3.conv1x1.weight"] = torch.zeros(4, 64, 1, 1)
    state["BboxHead.0.conv1x1.bias"] = torch.zeros(9)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(CheckpointMismatchError) as info:
        load_net(tmp_path / "w.pth", "mobilenet")
    message = str(info.value)
    assert "unexpected keys: ClassHead.3.conv1x1.weight" in message
    assert "BboxHead.0.conv1x1.bias (9,) != (8,)" in message


def test_weights_of_the_other_backbone_are_refused(testdata: Path) -> None:
    with pytest.raises(CheckpointMismatchError, match="RetinaFace-mobilenet weights, but the detector is resnet50"):
        load_net(testdata / WEIGHTS, "resnet50")


def test_not_a_weight_file(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"this is not a pickle")
    with pytest.raises(WeightsError, match="not a readable torch weight file"):
        read_state_dict(tmp_path / "junk.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="state_dict"):
        read_state_dict(tmp_path / "list.pth")


def test_resnet50_keys_and_shapes_match_the_official_list() -> None:
    ours = [(k, tuple(v.shape)) for k, v in RetinaFaceNet("resnet50").state_dict().items()]
    assert ours == official_resnet50_keys()


def test_resnet50_random_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = RetinaFaceNet("resnet50")
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.02)
        for name, b in net.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                b.normal_(0, 0.1)
    net.eval()
    path = cache.detector_path("resnet50")  # the test's own empty cache directory
    path.parent.mkdir(parents=True)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)  # as Resnet50_Final.pth
    detector = load_detector(DetectConfig(detector="resnet50"))
    for key, value in net.state_dict().items():
        torch.testing.assert_close(detector.net.state_dict()[key], value, rtol=0, atol=0)
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        for a, b in zip(net(x), detector.net(x), strict=True):
            torch.testing.assert_close(a, b)
    frame = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    assert len(detector.detect([frame])) == 1


def test_the_package_ships_the_release_mobilenet_file(testdata: Path) -> None:
    shipped = cache.shipped_detector_path("mobilenet")
    assert shipped is not None and shipped.parent == Path(panini_video.__file__).parent / "weights"
    release = fetch.DETECTORS["retinaface-mobilenet"]
    assert shipped.stat().st_size == release.size and file_sha256(shipped) == release.sha256
    assert shipped.read_bytes() == (testdata / WEIGHTS).read_bytes()
    assert cache.shipped_detector_path("resnet50") is None  # 105 MB: a download


def test_an_empty_cache_finds_faces_with_the_shipped_file(testdata: Path) -> None:
    assert not cache.detector_path("mobilenet").exists()
    assert resolve_weights(DetectConfig()) == cache.shipped_detector_path("mobilenet")
    image = cv2.cvtColor(cv2.imread(str(testdata / "photos" / "two_people.jpg")), cv2.COLOR_BGR2RGB)
    (found,) = load_detector(DetectConfig()).detect([image])
    assert len(found.scores) == 2 and found.scores.min() > 0.99  # MANIFEST: 2 faces, 0.999 and 0.998


def test_an_explicit_path_comes_before_the_cache_and_the_cache_before_the_shipped_file(tmp_path: Path) -> None:
    cached = cache.detector_path("mobilenet")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    mine = tmp_path / "mine.pth"
    mine.write_bytes(b"y")
    assert resolve_weights(DetectConfig()) == cached
    assert resolve_weights(DetectConfig(weights=str(mine))) == mine


def test_absent_resnet50_weights_say_how_to_get_them() -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        load_detector(DetectConfig(detector="resnet50"))
    message = str(info.value)
    assert "panini-video weights fetch retinaface-resnet50" in message and "--detector-weights PATH" in message
    assert str(cache.detector_path("resnet50")) in message


def test_explicit_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="nothing.pth"):
        load_detector(DetectConfig(weights=str(tmp_path / "nothing.pth")))


def test_cache_directory_is_used(testdata: Path) -> None:
    path = cache.detector_path("mobilenet")
    path.parent.mkdir(parents=True)
    shutil.copyfile(testdata / WEIGHTS, path)
    assert resolve_weights(DetectConfig()) == path
    detector = load_detector(DetectConfig(threshold=0.9, det_size=320, nms_threshold=0.3))
    assert detector.backbone == "mobilenet"
    assert (detector.settings.threshold, detector.settings.det_size, detector.settings.nms_threshold) == (0.9, 320, 0.3)
