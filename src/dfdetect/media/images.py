"""Still images: upright RGB (EXIF orientation applied), size limits, shrinking."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MediaError
from .info import MediaInfo
from .sniff import _short, sniff_kind

# A 100-megapixel RGB image is 300 MB decoded; anything larger is far more likely a mistake or a
# decompression bomb than a photo worth scanning for faces.
MAX_IMAGE_PIXELS = 100_000_000


def _probe_image(path: Path) -> MediaInfo:
    with _open_pil(path, max_pixels=None) as im:
        width, height = im.size
        rotation = _EXIF_ROTATION.get(_exif_orientation(im), 0)
        codec = (im.format or "image").lower()
    if rotation % 180:
        width, height = height, width
    return MediaInfo(path=path, kind="image", width=width, height=height, frame_count=1, fps=None,
                     duration_s=None, rotation=rotation, codec=codec)


_EXIF_ORIENTATION_TAG = 0x0112
_EXIF_ROTATION = {3: 180, 4: 180, 5: 90, 6: 90, 7: 270, 8: 270}


def read_image(path: str | Path, max_pixels: int | None = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An image as upright RGB uint8 (EXIF orientation applied). Images whose header declares more than
    `max_pixels` pixels are refused before any pixel is decoded (None: no limit)."""
    from PIL import Image, ImageOps

    path = Path(path)
    kind = sniff_kind(path)
    if kind != "image":
        raise MediaError(f"not an image: {path} (content is a video; read it with iter_frames)")
    with _open_pil(path, max_pixels) as im:
        try:
            im = ImageOps.exif_transpose(im)
            if im.mode != "RGB":
                im = _to_rgb(im)
            image = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise MediaError(f"cannot decode image {path} ({_short(exc)}); the file is truncated or damaged") from None
    return np.ascontiguousarray(image)


def _to_rgb(im):
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels have arbitrary colours underneath: show them on white, as viewers do.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        scaled = np.asarray(im, dtype=np.float64) / 257.0
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


class _open_pil:
    """PIL image opened lazily (header only) with the pixel limit checked before anything decodes."""

    def __init__(self, path: Path, max_pixels: int | None):
        self.path, self.max_pixels, self.image = path, max_pixels, None

    def __enter__(self):
        import warnings

        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                self.image = Image.open(self.path)
            except Image.DecompressionBombError:
                # PIL's own limit (about 179 MP) fired first; ours is the one to obey. Opening reads only
                # the header, so opening again without PIL's limit costs nothing.
                self.image = self._open_without_pil_limit()
            except (OSError, ValueError, SyntaxError) as exc:
                raise MediaError(f"cannot open image {self.path} ({_short(exc)}); the file is truncated or damaged") from None
        width, height = self.image.size
        if self.max_pixels is not None and width * height > self.max_pixels:
            self.image.close()
            raise MediaError(self._too_large(width, height))
        return self.image

    def __exit__(self, *exc):
        if self.image is not None:
            self.image.close()

    def _open_without_pil_limit(self):
        from PIL import Image

        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(self.path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved

    def _too_large(self, width: int, height: int) -> str:
        return (f"image too large: {self.path} is {width}x{height} = {width * height / 1e6:.0f} megapixels, over "
                f"the limit of {self.max_pixels / 1e6:g} megapixels; shrink it first or raise max_pixels")


def _exif_orientation(im) -> int:
    if im.format == "PNG" and "exif" not in im.info:
        # PIL would decode the whole image looking for an eXIf chunk after the pixel data.
        return 1
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block must not make the image unreadable
        return 1


