"""MTCNN without PyTorch: facenet-pytorch's cascade in NumPy and OpenCV, its three networks in ONNX Runtime.

The networks are facenet-pytorch 2.6.0's, exported by `python -m dfdetect.faces.mtcnn_export` into
assets/detectors/mtcnn/. The cascade follows facenet-pytorch's `detect_face` step by step, so that both find
the same faces: an image pyramid from the smallest face looked for (scale 12 / min_face, then x factor while the
short side stays >= 12 px), P-Net on every level, NMS per level (IoU 0.5) and per image (0.7), box regression,
squaring, R-Net on 24 px crops (NMS 0.7, regression, squaring), O-Net on 48 px crops with landmarks, and a
last NMS by intersection over the smaller box ('Min', 0.7). Pixels go in as (x - 127.5) / 128.

Pyramid levels and crops are resampled exactly as torch's "area" interpolation (adaptive average pooling, which
OpenCV's INTER_AREA is not: with it, boxes on DFDC frames overlapped facenet-pytorch's by IoU 0.87 to 1.0), from
summed-area tables; a search near given regions builds them only over the part of the image it reads.
Boxes, scores and landmarks then equal facenet-pytorch's to float rounding (tests/test_mtcnn_onnx.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "detectors" / "mtcnn"
THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709
MIN_FACE = 20  # facenet-pytorch's default smallest face, in pixels of the image it is given


class OnnxMtcnn:
    """The three MTCNN networks in ONNX Runtime sessions and the cascade around them.

    threads: ONNX Runtime's intra-op threads (None: its default, one per core).
    device: "cuda..." uses ONNX Runtime's CUDA provider when the installed onnxruntime has it, else the CPU."""

    def __init__(self, thresholds: Sequence[float] = THRESHOLDS, factor: float = FACTOR, device: str = "cpu",
                 threads: int | None = None, model_dir: str | Path = ASSET_DIR):
        if len(thresholds) != 3:
            raise ValueError(f"MTCNN takes three thresholds (P-Net, R-Net, O-Net), got {list(thresholds)}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"the pyramid factor must be between 0 and 1, got {factor}")
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        model_dir = Path(model_dir)
        self._pnet, self._rnet, self._onet = (_session(model_dir / f"{name}.onnx", device, threads)
                                              for name in ("pnet", "rnet", "onet"))

    # -- the cascade ---------------------------------------------------------------------------------------
    def detect(self, images: np.ndarray, min_face: float = MIN_FACE, regions: Sequence | None = None
               ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Faces in a batch of RGB uint8 images of one size, (N, H, W, 3). Per image: boxes (K, 5) as x1, y1,
        x2, y2, probability, best first, and landmarks (K, 5, 2) as x, y (eyes, nose, mouth corners).

        regions: per image, None (search it all) or rectangles (x1, y1, x2, y2, in its pixels) where P-Net
        looks; faces found there come out as from a search of the whole image (see _pnet_level)."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise ValueError(f"MTCNN takes RGB uint8 images of shape (N, H, W, 3); got {images.shape} {images.dtype}")
        n, h, w = images.shape[:3]
        empty = [(np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)) for _ in range(n)]
        scales = pyramid_scales(h, w, min_face, self.factor)
        if n == 0 or not scales:
            return empty

        # First stage: P-Net over the pyramid; candidates are rows of x1, y1, x2, y2, score, 4 regressions.
        plan = _search_plan(scales, h, w, regions)
        tables = SummedArea(images, _plan_extent(plan, h, w))
        found, owners = [], []
        for scale, windows in plan:
            boxes, image_inds = self._pnet_level(tables, scale, windows)
            keep = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.5)
            found.append(boxes[keep])
            owners.append(image_inds[keep])
        boxes, image_inds = np.concatenate(found), np.concatenate(owners)
        keep = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes, image_inds = boxes[keep], image_inds[keep]
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        regressed = boxes[:, :4] + boxes[:, 5:9] * np.stack([width, height, width, height], axis=1)
        boxes = _square(np.concatenate([regressed, boxes[:, 4:5]], axis=1))

        # Second stage: R-Net on 24 px crops.
        if len(boxes):
            crops, boxes, image_inds = _crops(tables, boxes, image_inds, 24)
            reg, prob = _run_batched(self._rnet, crops) if len(crops) else (np.zeros((0, 4)), np.zeros((0, 2)))
            passed = prob[:, 1] > self.thresholds[1]
            boxes = np.concatenate([boxes[passed, :4], prob[passed, 1:2]], axis=1)
            image_inds, reg = image_inds[passed], reg[passed]
            keep = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
            boxes, image_inds, reg = boxes[keep], image_inds[keep], reg[keep]
            boxes = _square(_regress(boxes, reg))

        # Third stage: O-Net on 48 px crops, with landmarks.
        points = np.zeros((0, 5, 2), np.float32)
        if len(boxes):
            crops, boxes, image_inds = _crops(tables, boxes, image_inds, 48)
            empty_out = (np.zeros((0, 4)), np.zeros((0, 10)), np.zeros((0, 2)))
            reg, marks, prob = _run_batched(self._onet, crops) if len(crops) else empty_out
            passed = prob[:, 1] > self.thresholds[2]
            boxes = np.concatenate([boxes[passed, :4], prob[passed, 1:2]], axis=1)
            image_inds, reg, marks = image_inds[passed], reg[passed], marks[passed]
            box_w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
            box_h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
            points = np.stack([box_w * marks[:, :5] + boxes[:, 0:1] - 1,
                               box_h * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
            boxes = _regress(boxes, reg)
            keep = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7, method="min")
            boxes, image_inds, points = boxes[keep], image_inds[keep], points[keep]

        return [(boxes[image_inds == i], points[image_inds == i]) for i in range(n)]


    def _pnet_level(self, tables: SummedArea, scale: float, windows: list | None):
        """P-Net's candidates on one pyramid level: boxes (rows as _generate_boxes) and the image of each.

        windows: None (every image's whole level) or per image the windows of the level P-Net sees (see
        _search_plan), cut at even rows and columns: P-Net has no padding and a stride of 2, so its cells there
        are exactly those of the whole level, and the candidates (and, as R-Net and O-Net crop from the whole
        image, the faces) are the same."""
        height, width = _level_size(tables.height, tables.width, scale)
        if windows is None:
            reg, prob = self._pnet.run(None, {"image": _pyramid_level(tables, height, width)})
            return _generate_boxes(reg, prob[:, 1], scale, self.thresholds[0])
        found, owners = [np.zeros((0, 9), np.float32)], [np.zeros(0, np.int64)]
        for i, image_windows in enumerate(windows):
            for top, bottom, left, right in image_windows:
                level = _pyramid_level(tables, height, width, (top, bottom), (left, right), image=i)
                reg, prob = self._pnet.run(None, {"image": level})
                boxes, _ = _generate_boxes(reg, prob[:, 1], scale, self.thresholds[0], (left // 2, top // 2))
                found.append(boxes)
                owners.append(np.full(len(boxes), i, np.int64))
        return np.concatenate(found), np.concatenate(owners)


def _level_size(h: int, w: int, scale: float) -> tuple[int, int]:
    return int(h * scale + 1), int(w * scale + 1)


def _search_plan(scales: list[float], h: int, w: int, regions: Sequence | None) -> list[tuple[float, list | None]]:
    """Per pyramid scale, the windows of the level P-Net sees: None when every image is searched whole, else per
    image a list of (top, bottom, left, right), the whole level for an image whose regions are None."""
    if regions is None:
        return [(scale, None) for scale in scales]
    plan = []
    for scale in scales:
        height, width = _level_size(h, w, scale)
        plan.append((scale, [[(0, height, 0, width)] if rects is None else _level_windows(rects, scale, height, width)
                             for rects in regions]))
    return plan


def _plan_extent(plan: list, h: int, w: int) -> tuple[int, int, int, int] | None:
    """The image rows and columns (top, bottom, left, right) whose pixels the plan's level windows average; None
    for the whole image."""
    if any(windows is None for _, windows in plan):
        return None
    extent = None
    for scale, windows in plan:
        height, width = _level_size(h, w, scale)
        for top, bottom, left, right in (window for image_windows in windows for window in image_windows):
            rows, cols = _bins(h, height, (top, bottom)), _bins(w, width, (left, right))
            read = (int(rows[0][0]), int(rows[1][-1]), int(cols[0][0]), int(cols[1][-1]))
            extent = read if extent is None else _union(extent, read)
    return extent if extent is not None else (0, 0, 0, 0)


def _level_windows(rects: Sequence, scale: float, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Rectangles of image pixels as windows of one pyramid level (top, bottom, left, right), starting on even
    rows and columns and of even sizes (so P-Net's cells line up with the whole level's), at least P-Net's 12
    px; overlapping windows are joined."""
    joined: list[tuple[int, int, int, int]] = []
    for x1, y1, x2, y2 in rects:
        window = _even_span(y1 * scale, y2 * scale, height) + _even_span(x1 * scale, x2 * scale, width)
        if window[1] - window[0] < 12 or window[3] - window[2] < 12:
            continue
        overlapping = [w for w in joined if _overlap(w, window)]
        while overlapping:  # a joined window may reach others
            joined = [w for w in joined if w not in overlapping]
            window = _union(window, *overlapping)
            overlapping = [w for w in joined if _overlap(w, window)]
        joined.append(window)
    return joined


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _union(*windows: tuple) -> tuple[int, int, int, int]:
    return (min(w[0] for w in windows), max(w[1] for w in windows),
            min(w[2] for w in windows), max(w[3] for w in windows))


def _even_span(start: float, end: float, size: int) -> tuple[int, int]:
    """[start, end) widened to whole pixels within [0, size), starting on an even pixel, of even length."""
    first = max(0, int(np.floor(start)) // 2 * 2)
    last = min(size, int(np.ceil(end)))
    if (last - first) % 2:
        last = last + 1 if last < size else last - 1
    return first, last


def pyramid_scales(height: int, width: int, min_face: float = MIN_FACE, factor: float = FACTOR) -> list[float]:
    """facenet-pytorch's pyramid: from 12 / min_face, times `factor` while the short side stays >= 12 px."""
    m = 12.0 / min_face
    min_side = min(height, width) * m
    scales, scale = [], m
    while min_side >= 12:
        scales.append(scale)
        scale *= factor
        min_side *= factor
    return scales


# -- networks ------------------------------------------------------------------------------------------------
def _session(path: Path, device: str, threads: int | None):
    from ..onnx_session import open_session

    if not path.is_file():
        from ..errors import ConfigError

        raise ConfigError(f"MTCNN network {path} is missing; reinstall dfdetect (or make it with "
                          "`python -m dfdetect.faces.mtcnn_export`)")
    return open_session(path, device, threads)


def _run_batched(session, batch: np.ndarray, size: int = 512) -> list[np.ndarray]:
    """The network over `batch` in parts of `size` crops (facenet-pytorch's bound on memory), outputs joined."""
    parts = [session.run(None, {"image": batch[i : i + size]}) for i in range(0, len(batch), size)]
    return [np.concatenate(outputs) for outputs in zip(*parts)]


# -- pyramid and crops: torch's "area" resampling from summed-area tables ------------------------------------
# torch's interpolate(mode="area") is adaptive average pooling: output pixel i along an axis of n pixels
# resampled to m is the mean of input pixels floor(i * n / m) to ceil((i + 1) * n / m) - 1. Sums over such
# rectangles come exactly, in integers, from each image's summed-area table, for the pyramid levels and for
# the crops alike.
class SummedArea:
    """Summed-area tables of a batch of (N, H, W, 3) uint8 images over one window of image rows and columns
    (top, bottom, left, right; None: the whole images). `table` is (N, 3, rows + 1, columns + 1): [n, c, y, x]
    the sum of channel c over the window's rows before top + y and columns before left + x. A sum asked for
    outside the window widens it first (a search near regions reads a little past them only now and then), so
    sums are always exact."""

    def __init__(self, images: np.ndarray, window: tuple[int, int, int, int] | None = None):
        self.images = images
        self.height, self.width = images.shape[1:3]
        self._build(window or (0, self.height, 0, self.width))

    def covering(self, rows: tuple[int, int], cols: tuple[int, int]) -> tuple[np.ndarray, int, int]:
        """(table, top, left) for sums over image rows rows[0] to rows[1] - 1 and columns likewise: table
        index y stands for image row top + y."""
        window = (rows[0], rows[1], cols[0], cols[1])
        if not (self.top <= rows[0] and rows[1] <= self.bottom and self.left <= cols[0] and cols[1] <= self.right):
            self._build(_union((self.top, self.bottom, self.left, self.right), window))
        return self.table, self.top, self.left

    def _build(self, window: tuple[int, int, int, int]) -> None:
        top, bottom, left, right = window
        self.top, self.bottom, self.left, self.right = top, bottom, left, right
        part = self.images[:, top:bottom, left:right]
        n, h, w = part.shape[:3]
        wide = h * w * 255 >= 2**31  # int32 holds every sum of a frame up to 8 Mpx
        dtype = np.int64 if wide else np.int32
        self.table = np.zeros((n, 3, h + 1, w + 1), dtype)
        # Contiguous planes and add.accumulate: three times faster than cumsum over the transposed view.
        planes = np.ascontiguousarray(part.transpose(0, 3, 1, 2)).astype(dtype)
        np.add.accumulate(planes, axis=2, out=planes)
        np.add.accumulate(planes, axis=3, out=self.table[:, :, 1:, 1:])


def _bins(size: int, out: int, part: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis: output i averages input start[i] to end[i] - 1 (torch's adaptive average pooling); for
    the outputs in `part` (first, end) only, when given."""
    i = np.arange(out) if part is None else np.arange(*part)
    return (i * size) // out, ((i + 1) * size + out - 1) // out


def _normalised(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Means from sums and pixel counts, as network input: (mean - 127.5) / 128 in float32."""
    out = sums.astype(np.float32)
    out /= counts
    out -= 127.5
    out *= 0.0078125
    return out


def _pyramid_level(tables: SummedArea, height: int, width: int, rows: tuple[int, int] | None = None,
                   cols: tuple[int, int] | None = None, image: int | None = None) -> np.ndarray:
    """P-Net's input for one pyramid level: the images area-resampled to (N, 3, height, width), normalised;
    with rows / cols (first, end), only that part of the level; with `image`, of that image only."""
    rows_from, rows_to = _bins(tables.height, height, rows)
    cols_from, cols_to = _bins(tables.width, width, cols)
    table, top, left = tables.covering((rows_from[0], rows_to[-1]), (cols_from[0], cols_to[-1]))
    if image is not None:
        table = table[image : image + 1]
    rows_from, rows_to, cols_from, cols_to = rows_from - top, rows_to - top, cols_from - left, cols_to - left
    strips = np.take(table, rows_to, axis=2) - np.take(table, rows_from, axis=2)  # sums over bins' rows
    sums = np.take(strips, cols_to, axis=3) - np.take(strips, cols_from, axis=3)
    counts = ((rows_to - rows_from)[:, None] * (cols_to - cols_from)[None, :]).astype(np.float32)
    return _normalised(sums, counts)


def _crops(tables: SummedArea, boxes: np.ndarray, image_inds: np.ndarray, size: int):
    """Network input (K, 3, size, size): each box's pixels area-resampled, normalised. As facenet-pytorch's
    pad(), a box is truncated to integers and limited to its image; a box wholly outside gives no crop and is
    dropped. Returns the crops with the boxes and owners kept."""
    corners = np.trunc(boxes[:, :4]).astype(np.int64)
    left, top = np.maximum(corners[:, 0], 1) - 1, np.maximum(corners[:, 1], 1) - 1
    right, bottom = np.minimum(corners[:, 2], tables.width), np.minimum(corners[:, 3], tables.height)
    valid = (bottom > top) & (right > left)
    left, top, right, bottom, owners = left[valid], top[valid], right[valid], bottom[valid], image_inds[valid]
    if not len(owners):
        return np.zeros((0, 3, size, size), np.float32), boxes[valid], owners
    table, table_top, table_left = tables.covering((int(top.min()), int(bottom.max())),
                                                   (int(left.min()), int(right.max())))
    top, bottom, left, right = top - table_top, bottom - table_top, left - table_left, right - table_left
    table_h, table_w = table.shape[2:]
    i = np.arange(size)
    # Per crop and output pixel, the table rows and columns around its bin: (K, size).
    heights, widths = (bottom - top)[:, None], (right - left)[:, None]
    rows_from, rows_to = top[:, None] + (i * heights) // size, top[:, None] + ((i + 1) * heights + size - 1) // size
    cols_from, cols_to = left[:, None] + (i * widths) // size, left[:, None] + ((i + 1) * widths + size - 1) // size
    # Flat indices into the tables, (K, 3, size, 1) for rows and (K, 1, 1, size) for columns.
    planes = (owners[:, None] * 3 + np.arange(3)[None, :])[:, :, None, None] * (table_h * table_w)
    flat = table.reshape(-1)

    def corner(rows, cols):
        return np.take(flat, planes + rows[:, None, :, None] * table_w + cols[:, None, None, :])

    sums = corner(rows_to, cols_to) - corner(rows_from, cols_to) - corner(rows_to, cols_from)
    sums += corner(rows_from, cols_from)
    counts = ((rows_to - rows_from)[:, :, None] * (cols_to - cols_from)[:, None, :])[:, None].astype(np.float32)
    return _normalised(sums, counts), boxes[valid], owners


# -- boxes ---------------------------------------------------------------------------------------------------
def _generate_boxes(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float,
                    offset: tuple[int, int] = (0, 0)):
    """P-Net's map cells scoring >= threshold as boxes in image pixels (stride 2, 12 px cells): rows of x1, y1,
    x2, y2, score and four regressions, with the image each belongs to. offset: the map's first cell (x, y)
    in the whole level's map, for a map of part of the level."""
    image_inds, ys, xs = np.nonzero(prob >= threshold)
    score = prob[image_inds, ys, xs]
    regression = reg[image_inds, :, ys, xs]  # (K, 4)
    cell = np.stack([xs + offset[0], ys + offset[1]], axis=1).astype(np.float32)
    scale = np.float32(scale)
    top_left = np.floor((2 * cell + 1) / scale)
    bottom_right = np.floor((2 * cell + 12) / scale)
    boxes = np.concatenate([top_left, bottom_right, score[:, None], regression], axis=1).astype(np.float32)
    return boxes, image_inds


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """R-Net's and O-Net's box regression (facenet-pytorch's bbreg: sizes counted with + 1)."""
    out = boxes.copy()
    width = boxes[:, 2] - boxes[:, 0] + 1
    height = boxes[:, 3] - boxes[:, 1] + 1
    out[:, :4] = boxes[:, :4] + reg[:, :4] * np.stack([width, height, width, height], axis=1)
    return out


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes made square on their centre, with the longer side (facenet-pytorch's rerec)."""
    out = boxes.copy()
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    out[:, 0] = boxes[:, 0] + width * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + height * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best first. "union": torchvision's nms (IoU of areas
    without + 1, a box goes when IoU > threshold); "min": facenet-pytorch's nms_numpy 'Min' (overlap over the
    smaller area, sizes counted with + 1, a box stays when overlap <= threshold)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    boxes = boxes.astype(np.float64)
    x1, y1, x2, y2 = boxes.T
    plus = 1.0 if method == "min" else 0.0
    areas = (x2 - x1 + plus) * (y2 - y1 + plus)
    order = np.argsort(scores, kind="stable")[::-1] if method != "min" else np.argsort(scores)[::-1]
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + plus)
        h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + plus)
        inter = w * h
        if method == "min":
            overlap = inter / np.minimum(areas[best], areas[rest])
            order = rest[overlap <= threshold]
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                overlap = inter / (areas[best] + areas[rest] - inter)
            order = rest[~(overlap > threshold)]
    return np.asarray(kept, np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float,
                method: str = "union") -> np.ndarray:
    """NMS within each group (image) alone, as torchvision's batched_nms: indices kept, best first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    offsets = groups.astype(np.float64) * (float(boxes.max()) + 1.0)
    return nms(boxes + offsets[:, None], scores, threshold, method)
