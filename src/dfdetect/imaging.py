"""The few image operations the scan needs (resize, grey, Laplacian), in NumPy.

The scan runs without OpenCV, whose wheel (it carries its own FFmpeg and OpenBLAS) would be most of a light
install. The resampling follows OpenCV's definitions (INTER_AREA, INTER_LINEAR, INTER_CUBIC: pixel centres at
+0.5, replicated borders, cubic a = -0.75) so that crops match those the models were trained on to within one
grey level, and every caller resizes through here, so training crops and scan crops are one procedure.
"""

from __future__ import annotations

import math

import numpy as np

# Shrinking averages the pixels a shrunk pixel covers (no aliasing on faces shrunk several-fold); enlarging
# interpolates with the named filter.
ENLARGE_FILTERS = ("cubic", "linear")
_CUBIC_A = -0.75


def fit_within(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The size an image of width x height is shrunk to so that its long side is at most `max_side` (aspect
    kept; unchanged when it fits or max_side is None). Decoding and detection shrink by this one rule, so
    that a frame the decoder shrank is the one the detector would have made."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def shrink_within(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """`image` shrunk by fit_within (the same array when it fits)."""
    width, height = fit_within(image.shape[1], image.shape[0], max_side)
    return resize(image, width, height)


def resize(image: np.ndarray, width: int, height: int, enlarge: str = "cubic") -> np.ndarray:
    """`image` (H x W or H x W x C, uint8) resized to width x height: per axis, area averaging where it
    shrinks and the `enlarge` interpolation where it grows."""
    if enlarge not in ENLARGE_FILTERS:
        raise ValueError(f"enlarge must be one of {', '.join(ENLARGE_FILTERS)}, got {enlarge!r}")
    if width < 1 or height < 1:
        raise ValueError(f"cannot resize to {width} x {height}")
    old_h, old_w = image.shape[:2]
    if (old_w, old_h) == (width, height):
        return image
    if old_h % height == 0 and old_w % width == 0 and image.dtype == np.uint8 and image.ndim in (2, 3):
        return _reduce(image, old_w // width, old_h // height)
    out = image.astype(np.float32)
    if old_h != height:
        out = _resample_axis(out, 0, *_taps(old_h, height, enlarge))
    if old_w != width:
        out = _resample_axis(out, 1, *_taps(old_w, width, enlarge))
    # OpenCV rounds halves up where both axes shrink by whole factors (its fixed-point path), else to even.
    whole = old_h % height == 0 and old_w % width == 0 and old_h >= height and old_w >= width
    out = np.floor(out + 0.5) if whole else np.rint(out)
    return np.clip(out, 0, 255).astype(np.uint8)


def _reduce(image: np.ndarray, fx: int, fy: int) -> np.ndarray:
    """Shrinking by whole factors: the mean of each fx x fy block, halves rounded up (OpenCV's INTER_AREA
    exactly), by Pillow's reduce in C, about ten times faster than NumPy on a video frame."""
    from PIL import Image

    if image.ndim == 3 and image.shape[2] not in (3, 4):
        return np.stack([_reduce(image[..., c], fx, fy) for c in range(image.shape[2])], axis=2)
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).reduce((fx, fy)))


def _resample_axis(image: np.ndarray, axis: int, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Each output line along `axis` is the weighted sum of the input lines `index` names."""
    n_in, n_out = image.shape[axis], len(index)
    period_in, period_out = n_in // math.gcd(n_in, n_out), n_out // math.gcd(n_in, n_out)
    if period_out < n_out and period_in <= _MAX_PERIOD and _periodic(index, weight, period_in, period_out):
        return _resample_periodic(image, axis, index[:period_out], weight[:period_out], period_in)
    shape = [1] * image.ndim
    shape[axis] = len(index)
    out = None
    for k in range(index.shape[1]):
        term = np.take(image, index[:, k], axis=axis) * weight[:, k].reshape(shape)
        out = term if out is None else out + term
    return out


# Shrinking by a ratio of small whole numbers (1280 -> 960 is 4 -> 3) repeats the same taps every few lines: one
# small matrix product over blocks of lines then replaces gathering every line, far faster on a video frame.
_MAX_PERIOD = 16


def _periodic(index: np.ndarray, weight: np.ndarray, period_in: int, period_out: int) -> bool:
    """Whether output i + period_out takes the inputs of output i shifted by period_in, with its weights."""
    first_in, first_out = index[:period_out], weight[:period_out]
    blocks = len(index) // period_out
    shifted = first_in[None] + period_in * np.arange(blocks)[:, None, None]
    live = first_out[None] != 0
    same_index = np.where(live, index.reshape(blocks, period_out, -1) == shifted, True).all()
    return bool(same_index and (weight.reshape(blocks, period_out, -1) == first_out[None]).all()
                and (first_in[first_out != 0] < period_in).all())


def _resample_periodic(image: np.ndarray, axis: int, index: np.ndarray, weight: np.ndarray, period_in: int
                       ) -> np.ndarray:
    """_resample_axis where the taps of the first period_out outputs (index, weight) repeat every period_in
    inputs: each block of period_in lines times one (period_in x period_out) matrix."""
    period_out = len(index)
    matrix = np.zeros((period_in, period_out), np.float32)
    for r in range(period_out):
        np.add.at(matrix[:, r], index[r][weight[r] != 0], weight[r][weight[r] != 0])
    before, after = image.shape[:axis], image.shape[axis + 1:]
    lines, blocks, inner = math.prod(before), image.shape[axis] // period_in, math.prod(after)
    if inner <= 4:  # lines of a few values (pixels of one row): one product with the matrix widened to them
        wide = np.kron(matrix, np.eye(inner, dtype=np.float32))
        out = image.reshape(lines * blocks, period_in * inner) @ wide
    else:  # long lines (rows of an image): the blocks' lines mixed by the matrix
        out = np.matmul(matrix.T, image.reshape(lines * blocks, period_in, inner))
    return out.reshape(before + (blocks * period_out,) + after)


def _taps(n_in: int, n_out: int, enlarge: str) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), each n_out x taps: which input pixels make each output pixel, and how much."""
    if n_out < n_in:
        return _area_taps(n_in, n_out)
    return _cubic_taps(n_in, n_out) if enlarge == "cubic" else _linear_taps(n_in, n_out)


def _area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    scale = n_in / n_out
    taps = math.ceil(scale) + 1
    start = np.arange(n_out) * scale
    first = np.floor(start).astype(np.int64)
    index = first[:, None] + np.arange(taps)[None, :]
    # The share of each input pixel [j, j + 1) inside the output pixel's span [start, start + scale).
    overlap = np.minimum(index + 1, start[:, None] + scale) - np.maximum(index, start[:, None])
    weight = np.clip(overlap, 0.0, None) / scale
    weight[index >= n_in] = 0.0
    return np.minimum(index, n_in - 1), weight.astype(np.float32)


def _centres(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    source = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    first = np.floor(source).astype(np.int64)
    return first, source - first


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    first, t = _centres(n_in, n_out)
    # Past either edge OpenCV holds the edge pixel.
    t = np.where(first < 0, 0.0, np.where(first >= n_in - 1, 0.0, t))
    first = np.clip(first, 0, n_in - 1)
    index = np.stack([first, np.minimum(first + 1, n_in - 1)], axis=1)
    return index, np.stack([1 - t, t], axis=1).astype(np.float32)


def _cubic_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    first, t = _centres(n_in, n_out)
    offsets = np.arange(-1, 3)
    distance = np.abs(t[:, None] - offsets[None, :])
    a = _CUBIC_A
    near = ((a + 2) * distance - (a + 3)) * distance ** 2 + 1
    far = ((a * distance - 5 * a) * distance + 8 * a) * distance - 4 * a
    weight = np.where(distance <= 1, near, np.where(distance < 2, far, 0.0))
    index = np.clip(first[:, None] + offsets[None, :], 0, n_in - 1)
    return index, weight.astype(np.float32)


def to_grey(image: np.ndarray) -> np.ndarray:
    """RGB uint8 -> grey uint8 with ITU-R BT.601 weights (as OpenCV's RGB2GRAY)."""
    grey = image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def laplacian(grey: np.ndarray) -> np.ndarray:
    """The 4-neighbour Laplacian (OpenCV's ksize=1 kernel) with mirrored borders, as float64."""
    g = np.pad(grey.astype(np.float64), 1, mode="reflect")
    return g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
