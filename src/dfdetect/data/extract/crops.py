"""Face crops on disk: stable names, the scan path's crop, JPEG encoding and manifest rows."""

from __future__ import annotations

import os
import re

import numpy as np

JPEG_QUALITY = 95


def safe_name(text: str) -> str:
    """A file-name-safe form of a video id or group: "Deepfakes/000_003" -> "Deepfakes-000_003"."""
    text = re.sub(r"\.(mp4|avi|mov|mkv|webm|jpe?g|png|webp|bmp)$", "", str(text), flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-.") or "item"


def unique_name(text: str) -> str:
    """safe_name plus a short hash of the exact text: "a b.mp4" and "a-b.mp4", or two names in another
    script, make one safe_name but stay two files."""
    import hashlib

    return f"{safe_name(text)}-{hashlib.sha1(str(text).encode('utf-8')).hexdigest()[:8]}"


def _crop_path(task: dict, frame_index: int, track: int) -> str:
    group = task["group"] or task["video"]
    return f"crops/{unique_name(group)}/{unique_name(task['video'])}_{frame_index:05d}_{track}.jpg"


def _crop(image, box, settings):
    from ...faces.crop import crop_face

    return crop_face(image, box, settings)


def _encode_jpeg(crop: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(crop[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def _write_bytes(out: str, rel: str, data: bytes) -> None:
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _write_crop(task, frame_index, number, image, box, settings, boxes_from) -> dict:
    rel = _crop_path(task, frame_index, number)
    _write_bytes(task["out"], rel, _encode_jpeg(_crop(image, box, settings)))
    return _row(task, rel, frame_index, number, box, boxes_from)


def _row(task: dict, rel: str, frame_index: int, track: int, box, boxes_from: str) -> dict:
    x1, y1, x2, y2 = (round(float(v), 2) for v in box.to_list())
    return {"path": rel, "frame": int(frame_index), "track": int(track), "x1": x1, "y1": y1, "x2": x2, "y2": y2,
            "score": round(float(box.score), 4), "boxes_from": boxes_from}
