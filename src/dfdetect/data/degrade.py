"""Resolution and compression variety: the ways a face reaches a detector after a camera, a resize and a
codec, so that "low quality" or "sharp studio photo" stops being a cue for real or fake.

`ResolutionAndCodec` shrinks the crop to 0.25-1x of its side (a small face in a large frame), compresses it
at that size with JPEG (a photo) or H.264 (a video frame, through PyAV's libx264) at a random quality, and
brings it back to the input size with a random interpolation: the order in which a scan meets a small,
compressed face.
"""

from __future__ import annotations

import io

import albumentations as A
import cv2
import numpy as np

UPSCALE_INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_NEAREST)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        return image
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def h264(image: np.ndarray, crf: int) -> np.ndarray:
    """One RGB frame through libx264 at the given constant rate factor (18: near lossless, 40: blocky), 4:2:0
    chroma as video has it. Sides are made even first, as 4:2:0 needs."""
    import av

    height, width = image.shape[:2]
    even = np.ascontiguousarray(image[: height - height % 2, : width - width % 2])
    if even.shape[0] < 2 or even.shape[1] < 2:
        return image
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": str(int(crf)), "preset": "ultrafast",
                                                                   "tune": "zerolatency"})
        stream.width, stream.height, stream.pix_fmt = even.shape[1], even.shape[0], "yuv420p"
        for packet in stream.encode(av.VideoFrame.from_ndarray(even, format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    if decoded.shape != image.shape:  # odd sides: the last row / column kept from the input
        image = image.copy()
        image[: decoded.shape[0], : decoded.shape[1]] = decoded
        return image
    return decoded


class ResolutionAndCodec(A.ImageOnlyTransform):
    """Down-scale (scale_range of the side), compress (JPEG quality or H.264 CRF, `video_share` of the time
    H.264), up-scale back. Seeded through albumentations' own random state, as the other transforms are."""

    def __init__(self, scale_range=(0.25, 1.0), jpeg_quality=(30, 95), h264_crf=(20, 40), video_share=0.5,
                 p: float = 0.5):
        super().__init__(p=p)
        self.scale_range = tuple(scale_range)
        self.jpeg_quality = tuple(jpeg_quality)
        self.h264_crf = tuple(h264_crf)
        self.video_share = float(video_share)

    def get_params(self) -> dict:
        rng = self.py_random
        return {"scale": rng.uniform(*self.scale_range), "video": rng.random() < self.video_share,
                "quality": rng.randint(*self.jpeg_quality), "crf": rng.randint(*self.h264_crf),
                "upscale": rng.choice(UPSCALE_INTERPOLATIONS)}

    def apply(self, img: np.ndarray, scale: float = 1.0, video: bool = False, quality: int = 90, crf: int = 23,
              upscale: int = cv2.INTER_LINEAR, **params) -> np.ndarray:
        height, width = img.shape[:2]
        small_size = (max(8, round(width * scale)), max(8, round(height * scale)))
        small = cv2.resize(img, small_size, interpolation=cv2.INTER_AREA) if scale < 1 else img
        small = h264(small, crf) if video else jpeg(small, quality)
        return cv2.resize(small, (width, height), interpolation=upscale) if small.shape[:2] != (height, width) else small

    def get_transform_init_args_names(self):
        return ("scale_range", "jpeg_quality", "h264_crf", "video_share")
