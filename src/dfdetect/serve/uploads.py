"""An upload, received within its limits and checked before any job is made of it.

The file is streamed to `uploads/<random>.upload`; the client's file name is kept for display only. What it
is comes from its bytes (`media.sniff`), never from its name or declared type. Each way an upload can be
wrong is one `ApiError`: a status code, a short code and one line a person can act on.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, MediaError
from .settings import ServeSettings

MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the small form fields around the file
COPY_CHUNK = 1024 * 1024


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class _BodyTooLarge(Exception):
    pass


@dataclass
class Upload:
    path: Path            # the stored file, under a generated name
    filename: str         # the client's name, cleaned, for display
    kind: str             # "video" | "image"
    options: dict         # frames, annotate


def too_large(settings: ServeSettings) -> ApiError:
    return ApiError(413, "too_large", f"the upload is larger than this server's limit of {settings.max_upload_mb:g} MB")


async def receive_upload(request, settings: ServeSettings, uploads_dir: Path) -> Upload:
    """The `file` part of a multipart form, stored and checked; ApiError for every way it can be wrong."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes + MULTIPART_OVERHEAD:
        raise too_large(settings)  # refused before a byte of it is read
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "not_multipart", "send the file as multipart/form-data in a field named 'file'")
    form = await _read_form(request, settings)
    try:
        part = form.get("file")
        if part is None or isinstance(part, str):
            raise ApiError(400, "no_file", "no file in the request: send it in a multipart field named 'file'")
        filename = clean_filename(part.filename)
        path = uploads_dir / f"{uuid.uuid4().hex}.upload"
        size = await _store(part, path, settings)
        options = {"frames": str(form.get("frames") or settings.frames),
                   "annotate": str(form.get("annotate", "true")).lower() not in ("0", "false", "no", "off")}
    finally:
        await form.close()
    try:
        if size == 0:
            raise ApiError(400, "empty_file", f"{filename} is empty (0 bytes)")
        kind = check_media(path, filename, options, settings)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Upload(path, filename, kind, options)


async def _read_form(request, settings: ServeSettings):
    """The form, parsed while counting body bytes: a body past the limit stops being read at the limit."""
    from starlette.requests import ClientDisconnect, Request

    limit, received = settings.max_upload_bytes + MULTIPART_OVERHEAD, 0

    async def counting_receive():
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _BodyTooLarge()
        return message

    try:
        return await Request(request.scope, counting_receive).form(max_files=1, max_fields=8)
    except _BodyTooLarge:
        raise too_large(settings) from None
    except ClientDisconnect:
        raise ApiError(400, "incomplete_upload", "the upload ended before the whole file arrived") from None
    except Exception as exc:  # starlette's MultiPartException: a malformed form
        raise ApiError(400, "bad_form", f"the multipart form could not be read ({exc})") from None


async def _store(part, path: Path, settings: ServeSettings) -> int:
    size = 0
    try:
        with open(path, "wb") as out:
            while chunk := await part.read(COPY_CHUNK):
                size += len(chunk)
                if size > settings.max_upload_bytes:
                    raise too_large(settings)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return size


def clean_filename(name: str | None) -> str:
    """The client's name without folders or control characters, for display (never used as a path)."""
    name = Path(str(name or "upload").replace("\\", "/")).name
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()[:200]
    return name or "upload"


def check_media(path: Path, filename: str, options: dict, settings: ServeSettings) -> str:
    """'video' or 'image' after checking type, readability, duration and frames asked for."""
    from ..media import FrameSampling, probe, read_image, sample_indices, sniff_kind

    try:
        kind = sniff_kind(path)
    except MediaError as exc:
        raise ApiError(415, "unsupported_type", _named(exc, path, filename)) from None
    try:
        info = probe(path)
        if kind == "image":
            read_image(path)  # a truncated image only shows when its pixels are decoded
    except MediaError as exc:
        raise ApiError(422, "unreadable_media", _named(exc, path, filename)) from None
    if kind == "video":
        if info.duration_s and info.duration_s > settings.max_video_s:
            raise ApiError(422, "too_long", f"{filename} lasts {info.duration_s:.0f} s; this server takes videos "
                                            f"up to {settings.max_video_s:g} s")
        try:
            sampling = FrameSampling.parse(options["frames"])
            wanted = len(sample_indices(info.frame_count, info.fps, sampling))
        except (ConfigError, MediaError) as exc:
            raise ApiError(400, "bad_option", f"frames: {exc}") from None
        if wanted > settings.max_frames:
            raise ApiError(422, "too_many_frames", f"frames={options['frames']} samples {wanted} frames of {filename}; "
                                                   f"this server samples at most {settings.max_frames}")
    return kind


def _named(exc: Exception, path: Path, filename: str) -> str:
    """The media message with the client's file name in place of the server's path."""
    return str(exc).replace(str(path), filename)
