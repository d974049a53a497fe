"""What a file is, from its first bytes (never its name alone), and readable-file checks."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from ..errors import MediaError

# The names a folder search picks up. A file named on the command line is read whatever its name, by its
# content (sniff_kind); these are the containers that content check recognises and the decoders read.
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ts", ".mts", ".m2ts", ".flv", ".gif",
                    ".3gp", ".mpg", ".mpeg"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS
TS_PACKET = 188  # MPEG transport stream: a 0x47 sync byte every 188 bytes

_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
_NOT_SUPPORTED = [  # recognised, but not inputs this tool reads: say what they are instead of "unknown"
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive; unpack it first"),
    (b"\x1f\x8b", "a gzip archive; unpack it first"),
]


def sniff_kind(path: str | Path) -> str:
    """"video" or "image" from the first bytes of the file, whatever its name says."""
    path = Path(path)
    _check_readable_file(path)
    with open(path, "rb") as f:
        head = f.read(2 * TS_PACKET + 1)
    kind = _kind_from_magic(head)
    if kind is None:
        raise MediaError(f"not a video or image: {path} ({_describe_content(head)})")
    return kind


def _kind_from_magic(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image"
    if head[:4] in (b"II*\x00", b"MM\x00*"):  # TIFF: the first page is read
        return "image"
    if head.startswith((b"GIF87a", b"GIF89a")):  # animated or not, its frames are decoded as a video's
        return "video"
    if head.startswith(b"FLV\x01") or head.startswith(b"\x00\x00\x01\xba"):  # Flash video, MPEG program stream
        return "video"
    if len(head) > 2 * TS_PACKET and head[0] == head[TS_PACKET] == head[2 * TS_PACKET] == 0x47:
        return "video"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "image"
    if head[4:8] == b"ftyp":
        return None if head[8:12] in _HEIF_BRANDS else "video"
    if head[4:8] in _QUICKTIME_ATOMS:  # QuickTime files from before the ftyp atom existed
        return "video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska / WebM
        return "video"
    return None


def _describe_content(head: bytes) -> str:
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "content is a HEIF/AVIF image; convert it to JPEG or PNG"
    for magic, what in _NOT_SUPPORTED:
        if head.startswith(magic):
            return f"content is {what}"
    if not head.strip(b"\x00"):
        return "content is all zero bytes"
    if _looks_like_text(head):
        return "content looks like text"
    return "unrecognised content starting " + head[:8].hex(" ")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    text = head.decode("utf-8", errors="ignore")
    if len(text.encode("utf-8")) < len(head) - 3:  # more lost than one character cut off at the end
        return False
    return bool(text) and sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text)


def _check_readable_file(path: Path) -> None:
    """One clear line for the ways a path can fail before its content is looked at."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MediaError(f"file not found: {path}") from None
    except PermissionError:
        raise MediaError(f"cannot read {path} (permission denied)") from None
    except OSError as exc:
        raise MediaError(f"cannot read {path} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise MediaError(f"is a folder, not a file: {path} (give the files in it, or collect_inputs to list them)")
    if not stat.S_ISREG(st.st_mode):
        raise MediaError(f"not a regular file: {path}")
    if st.st_size == 0:
        raise MediaError(f"empty file (0 bytes): {path}")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise MediaError(f"cannot read {path} (permission denied)") from None
    except OSError as exc:
        raise MediaError(f"cannot read {path} ({exc.strerror or exc})") from None


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # PyAV appends "; last error log: ..." and the path: keep the reason only.
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r":\s*'[^']*'$", "", text)
    return text[:200]
