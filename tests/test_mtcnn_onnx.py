"""MTCNN without torch (faces/mtcnn.py over the ONNX assets) against facenet-pytorch, on real frames and crops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dfdetect
from dfdetect.errors import ConfigError
from dfdetect.faces import FaceBox, create_detector
from dfdetect.faces.detect import iou_matrix, mtcnn_engine

SRC = Path(dfdetect.__file__).resolve().parents[1]


def crop_paths(shared_data: Path, per_folder: int) -> list[Path]:
    """Evenly spread face crops: DFDC's 224 px and UTKFace's 200 px."""
    paths = []
    for folder in (shared_data / "dfdc-faces" / "faces", shared_data / "real-faces" / "faces"):
        names = sorted(folder.iterdir())
        paths += names[:: len(names) // per_folder][:per_folder]
    return paths


@pytest.fixture(scope="module")
def engines():
    """Both engines with the same settings (the onnx engine's own default looks for fewer small faces)."""
    pytest.importorskip("facenet_pytorch")
    return (create_detector("mtcnn", device="cpu", engine="onnx", smallest_face=None),
            create_detector("mtcnn", device="cpu", engine="torch", smallest_face=None))


@pytest.fixture(scope="module")
def clip_frames(dfdc_videos):
    """Two frames of each shared clip (1080p landscape and 720x1280 portrait), at full resolution."""
    from dfdetect.media import iter_frames

    return [f.image for clip in dfdc_videos for f in iter_frames(clip, "2")]


def assert_same_faces(expected: list[list[FaceBox]], found: list[list[FaceBox]]) -> int:
    """Every face of one list in the other, one to one: IoU >= 0.9, landmarks within 2 px, scores within 0.01."""
    faces = 0
    for ref_boxes, boxes in zip(expected, found, strict=True):
        assert len(boxes) == len(ref_boxes)
        if not ref_boxes:
            continue
        iou = iou_matrix(ref_boxes, boxes)
        pairs = iou.argmax(axis=1)
        assert sorted(pairs) == list(range(len(boxes)))  # one to one
        for i, j in enumerate(pairs):
            assert iou[i, j] >= 0.9
            assert abs(ref_boxes[i].score - boxes[j].score) < 0.01
            assert np.abs(ref_boxes[i].landmarks - boxes[j].landmarks).max() < 2.0
        faces += len(boxes)
    return faces


# -- agreement with facenet-pytorch -------------------------------------------------------------------------
def test_onnx_engine_finds_the_torch_engines_faces_in_clip_frames(engines, clip_frames):
    onnx, torch_engine = engines

    faces = assert_same_faces(torch_engine.detect(clip_frames), onnx.detect(clip_frames))

    assert faces >= len(clip_frames)  # someone in every frame


def test_onnx_engine_finds_the_torch_engines_faces_in_face_crops(engines, shared_data):
    from dfdetect.media import read_image

    crops = [read_image(p) for p in crop_paths(shared_data, 20)]
    onnx, torch_engine = engines

    faces = assert_same_faces(torch_engine.detect(crops), onnx.detect(crops))

    assert faces >= 0.9 * len(crops)


@pytest.mark.parametrize("options", [dict(max_side=640, min_face=60, factor=0.6), dict(smallest_face=60)])
def test_onnx_and_torch_engines_agree_with_other_settings(clip_frames, options):
    pytest.importorskip("facenet_pytorch")
    frames = clip_frames[::3]

    expected = create_detector("mtcnn", device="cpu", engine="torch", **options).detect(frames)
    found = create_detector("mtcnn", device="cpu", engine="onnx", **options).detect(frames)

    assert assert_same_faces(expected, found) >= len(frames)


def test_exported_networks_match_facenet_pytorch():
    pytest.importorskip("facenet_pytorch")
    from dfdetect.faces.mtcnn_export import check

    assert max(check().values()) < 1e-4


def test_pyramid_levels_and_crops_resample_as_torch_area_interpolation():
    torch = pytest.importorskip("torch")
    from torch.nn.functional import interpolate

    from dfdetect.faces.mtcnn import SummedArea, _crops, _pyramid_level

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 57, 83, 3), dtype=np.uint8)
    as_torch = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    tables = SummedArea(images)
    for height, width in ((35, 50), (12, 12), (57, 83), (90, 100)):
        expected = (interpolate(as_torch, size=(height, width), mode="area") - 127.5) * 0.0078125
        assert np.abs(_pyramid_level(tables, height, width) - expected.numpy()).max() < 1e-5
    # Boxes inside, across the border, tiny and wholly outside (dropped, as facenet-pytorch cannot crop it).
    boxes = np.array([[10.7, 5.2, 40.9, 50.1, 0.9], [-8.0, 30.0, 20.0, 70.0, 0.8], [3.0, 3.0, 4.0, 4.0, 0.7],
                      [100.0, 10.0, 120.0, 30.0, 0.6]], np.float32)
    owners = np.array([0, 1, 1, 0])
    crops, kept, kept_owners = _crops(tables, boxes, owners, 24)
    assert kept.tolist() == boxes[:3].tolist() and kept_owners.tolist() == [0, 1, 1]
    for crop, (x1, y1, x2, y2, _), owner in zip(crops, kept, kept_owners):
        x1, y1 = max(int(x1), 1), max(int(y1), 1)  # facenet-pytorch's pad(): truncate, then limit
        x2, y2 = min(int(x2), 83), min(int(y2), 57)
        region = as_torch[owner : owner + 1, :, y1 - 1 : y2, x1 - 1 : x2]
        expected = (interpolate(region, size=(24, 24), mode="area") - 127.5) * 0.0078125
        assert np.abs(crop - expected[0].numpy()).max() < 1e-5


def test_tables_over_a_window_give_the_whole_tables_sums_and_widen_when_read_outside():
    from dfdetect.faces.mtcnn import SummedArea, _crops, _pyramid_level

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 57, 83, 3), dtype=np.uint8)
    whole, part = SummedArea(images), SummedArea(images, (5, 40, 15, 70))
    assert part.table.shape == (2, 3, 36, 56)
    level = (slice(None), slice(None), slice(4, 16), slice(10, 30))  # reads image rows 6-26, columns 16-49
    np.testing.assert_array_equal(_pyramid_level(part, 35, 50, (4, 16), (10, 30), image=1),
                                  _pyramid_level(whole, 35, 50)[1:][level])
    assert part.table.shape == (2, 3, 36, 56)  # read inside: not rebuilt
    boxes = np.array([[22.0, 12.0, 60.0, 38.0, 0.9], [-8.0, 30.0, 20.0, 70.0, 0.8]], np.float32)
    owners = np.array([0, 1])
    inside, _, _ = _crops(part, boxes[:1], owners[:1], 24)
    np.testing.assert_array_equal(inside, _crops(whole, boxes[:1], owners[:1], 24)[0])
    beyond, _, _ = _crops(part, boxes, owners, 24)  # the second box reaches past the window
    np.testing.assert_array_equal(beyond, _crops(whole, boxes, owners, 24)[0])
    assert (part.top, part.bottom, part.left, part.right) == (5, 57, 0, 70)


def test_nms_matches_torchvision_and_facenet_pytorchs_min_rule():
    torch = pytest.importorskip("torch")
    from facenet_pytorch.models.utils.detect_face import batched_nms_numpy
    from torchvision.ops import batched_nms as torchvision_batched_nms

    from dfdetect.faces.mtcnn import batched_nms

    rng = np.random.default_rng(1)
    corners = rng.uniform(0, 200, (300, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + rng.uniform(5, 60, (300, 2)).astype(np.float32)], axis=1)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    groups = rng.integers(0, 3, 300)
    as_torch = [torch.from_numpy(a) for a in (boxes, scores, groups)]
    for threshold in (0.5, 0.7):
        expected = torchvision_batched_nms(*as_torch, threshold).numpy()
        assert batched_nms(boxes, scores, groups, threshold).tolist() == expected.tolist()
    expected = batched_nms_numpy(*as_torch, 0.7, "Min").numpy()
    assert batched_nms(boxes, scores, groups, 0.7, method="min").tolist() == expected.tolist()


# -- no torch on the onnx path ------------------------------------------------------------------------------
BLOCK_TORCH = """
import importlib.abc, json, sys

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "facenet_pytorch"):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, BlockTorch())
"""

DETECT_WITHOUT_TORCH = BLOCK_TORCH + """
from dfdetect.media import read_image
from dfdetect.faces.mtcnn import OnnxMtcnn

image = read_image(sys.argv[1])
boxes, points = OnnxMtcnn().detect(image[None])[0]
out = {"cascade": [len(boxes), float(boxes[0, 4]) if len(boxes) else 0.0]}
try:
    from dfdetect.devices import resolve_device
    resolve_device("cpu")
except ImportError as exc:
    out["detector"] = f"resolve_device needs torch ({exc})"
else:
    from dfdetect.faces import create_detector
    detector = create_detector("mtcnn", device="cpu")
    faces = detector.detect_one(image)
    out["detector"] = [detector.engine, detector.uses_torch, len(faces), faces[0].landmarks.shape[0] if faces else 0]
out["torch_modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "facenet_pytorch"))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def without_torch(shared_data):
    crop = crop_paths(shared_data, 1)[0]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", DETECT_WITHOUT_TORCH, str(crop)], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_onnx_cascade_runs_with_torch_blocked(without_torch):
    faces, score = without_torch["cascade"]

    assert faces == 1 and score > 0.9
    assert without_torch["torch_modules"] == []


def test_the_default_mtcnn_detector_runs_on_the_cpu_with_torch_blocked(without_torch):
    assert not isinstance(without_torch["detector"], str), without_torch["detector"]  # "cpu" resolves without torch

    assert without_torch["detector"] == ["onnx", False, 1, 5]
    assert without_torch["torch_modules"] == []


# -- the engine option ----------------------------------------------------------------------------------------
def test_engine_option_and_uses_torch_per_instance():
    onnx = create_detector("mtcnn", device="cpu", engine="onnx")
    auto = create_detector("mtcnn", device="cpu")

    assert (onnx.engine, onnx.uses_torch) == ("onnx", False)
    assert (auto.engine, auto.uses_torch) == ("onnx", False)  # auto takes torch only on a CUDA device
    with pytest.raises(ConfigError, match="auto, onnx, torch"):
        create_detector("mtcnn", device="cpu", engine="tensorrt")
    with pytest.raises(ConfigError, match="threads"):
        create_detector("mtcnn", device="cpu", threads=0)


def test_torch_engine_reports_uses_torch():
    pytest.importorskip("facenet_pytorch")

    detector = create_detector("mtcnn", device="cpu", engine="torch")

    assert (detector.engine, detector.uses_torch) == ("torch", True)
    assert detector.smallest_face is None  # the torch engine searches as it always did


def test_auto_engine_takes_torch_only_on_cuda_with_facenet_pytorch(monkeypatch):
    from dfdetect.faces import detect

    monkeypatch.setattr(detect, "_facenet_importable", lambda: True)
    assert [mtcnn_engine("auto", d) for d in ("cpu", "cuda", "cuda:1")] == ["onnx", "torch", "torch"]
    assert mtcnn_engine("onnx", "cuda") == "onnx" and mtcnn_engine("torch", "cpu") == "torch"
    monkeypatch.setattr(detect, "_facenet_importable", lambda: False)
    assert mtcnn_engine("auto", "cuda") == "onnx"


def test_torch_engine_without_facenet_pytorch_says_what_to_install_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # import fails as if not installed

    with pytest.raises(ConfigError) as error:
        create_detector("mtcnn", device="cpu", engine="torch")

    message = str(error.value)
    assert "\n" not in message
    assert "pip install --no-deps facenet-pytorch==2.6.0" in message and "torch" in message


def test_limit_threads_keeps_the_onnx_engine_working(astronaut):
    detector = create_detector("mtcnn", device="cpu", engine="onnx", max_side=256)
    before = detector.detect_one(astronaut)

    detector.limit_threads(1)

    after = detector.detect_one(astronaut)
    assert len(after) == len(before) == 1 and after[0].iou(before[0]) > 0.999


# -- smallest_face ---------------------------------------------------------------------------------------------
def test_smallest_face_keeps_mtcnns_own_pyramid_levels():
    from dfdetect.faces.detect import _first_level

    assert _first_level(10, 0.709) == _first_level(20, 0.709) == 20  # MTCNN's own start
    assert _first_level(60, 0.709) == pytest.approx(20 / 0.709**3)  # levels for 20, 28, 40, 56, 79 px faces
    assert _first_level(79, 0.709) == pytest.approx(20 / 0.709**3)
    assert _first_level(80, 0.709) == pytest.approx(20 / 0.709**4)


def test_smallest_face_finds_the_same_larger_faces_and_searches_small_images_whole(shared_data):
    import cv2

    from dfdetect.media import read_image

    crops = [read_image(p) for p in crop_paths(shared_data, 10)]
    everything = create_detector("mtcnn", device="cpu", engine="onnx", smallest_face=None)
    limited = create_detector("mtcnn", device="cpu", engine="onnx", smallest_face=80)

    assert assert_same_faces(everything.detect(crops), limited.detect(crops)) >= 18
    tiny = [cv2.resize(crop, (56, 56), interpolation=cv2.INTER_AREA) for crop in crops[:4]]
    assert sum(len(faces) for faces in limited.detect(tiny)) >= 3  # faces of ~56 px, below smallest_face


def test_regions_find_the_faces_a_whole_search_finds_and_nothing_outside(clip_frames):
    detector = create_detector("mtcnn", device="cpu", engine="onnx", smallest_face=80)
    assert detector.searches_regions
    whole = detector.detect(clip_frames, smallest_face=80)
    assert sum(map(len, whole)) >= len(clip_frames)
    near = [[(b.x1 - b.width / 2, b.y1 - b.height / 2, b.x2 + b.width / 2, b.y2 + b.height / 2) for b in boxes]
            for boxes in whole]
    found = detector.detect(clip_frames, smallest_face=80, regions=near)
    for expected, boxes in zip(whole, found, strict=True):  # the same boxes, not merely close ones
        assert [b.to_list() for b in boxes] == [b.to_list() for b in expected]
    h, w = clip_frames[0].shape[:2]
    everywhere = detector.detect(clip_frames[:2], regions=[[(0, 0, w, h)], None])
    assert [[b.to_list() for b in boxes] for boxes in everywhere] == \
        [[b.to_list() for b in boxes] for boxes in detector.detect(clip_frames[:2])]
    corner = [[(0, 0, 60, 60)] for _ in clip_frames]  # no face there
    assert not any(detector.detect(clip_frames, regions=corner))


def test_level_windows_start_even_and_join_overlaps():
    from dfdetect.faces.mtcnn import _level_windows

    windows = _level_windows([(11, 21, 101, 91), (91, 31, 161, 121), (300, 300, 305, 305)], 0.5, 200, 200)
    assert windows == [(10, 62, 4, 82)]  # the two first joined; the third under 12 px at this level
    top, bottom, left, right = windows[0]
    assert top % 2 == bottom % 2 == left % 2 == right % 2 == 0
    assert _level_windows([(0, 0, 400, 400)], 0.5, 200, 200) == [(0, 200, 0, 200)]


def test_engine_defaults_for_smallest_face():
    from dfdetect.faces.detect import ONNX_SMALLEST_FACE

    assert create_detector("mtcnn", device="cpu", engine="onnx").smallest_face == ONNX_SMALLEST_FACE
    assert create_detector("mtcnn", device="cpu", engine="onnx", smallest_face=None).smallest_face is None
    with pytest.raises(ConfigError, match="smallest_face"):
        create_detector("mtcnn", device="cpu", smallest_face=0)


# -- iou_matrix -----------------------------------------------------------------------------------------------
def test_iou_matrix_edge_cases():
    square = FaceBox(0, 0, 10, 10)
    boxes = [square, FaceBox(5, 0, 15, 10), FaceBox(10, 0, 20, 10), FaceBox(2, 2, 4, 4), FaceBox(3, 3, 3, 3)]

    iou = iou_matrix([square], boxes)

    assert iou.shape == (1, 5) and iou.dtype == np.float64
    assert iou[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0, 4 / 100, 0.0])  # touching edges: 0
    assert iou_matrix([], boxes).shape == (0, 5) and iou_matrix(boxes, []).shape == (5, 0)
    assert iou_matrix([], []).shape == (0, 0)
    empty = FaceBox(7, 7, 7, 7)
    assert iou_matrix([empty], [empty])[0, 0] == 0.0  # 0 / 0: no overlap, not NaN
    assert iou_matrix(boxes, boxes).diagonal().tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]


def test_iou_matrix_matches_torchvision_box_iou():
    torch = pytest.importorskip("torch")
    from torchvision.ops import box_iou

    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 100, (20, 2))
    boxes = [FaceBox(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, rng.uniform(0, 50, (20, 2)))]
    as_torch = torch.tensor([b.to_list() for b in boxes], dtype=torch.float64)

    assert np.allclose(iou_matrix(boxes[:7], boxes), box_iou(as_torch[:7], as_torch).numpy(), atol=1e-12)
