"""Files a command writes: checked before any work starts, and held while they are written.

`check_outputs` refuses an output that is one of the inputs, two options naming one file, a folder, a device
or a place that cannot be written, each as one line naming the option. `HeldFile` holds an exclusive lock
(flock) on an output for as long as a command writes it, so that a second run aimed at the same file is
refused instead of splicing its lines into the first one's. Rewrites go through a locked temporary file
renamed over the old one, so a reader never sees half a file and the lock moves with the new file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from .errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the checks before any work still apply
    fcntl = None


def file_key(path: str | Path) -> tuple:
    """What makes two names the same file: device and inode when it exists (hard links, symlinks, "./a" and
    "a"), else the absolute path with links resolved."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return name_key(path)


def name_key(path: str | Path) -> tuple:
    """The key of a file by its name alone (links resolved), for names that will exist only later."""
    return ("path", os.path.realpath(path))


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Iterable[str | Path] = ()) -> dict[str, Path]:
    """The given outputs (option -> path; None for options not given) as Paths, or a ConfigError naming the
    option when an output is an input, two options name one file, or the path cannot be written."""
    named = {option: Path(path) for option, path in outputs.items() if path}
    inputs_by_key = {file_key(p): Path(p) for p in inputs}
    seen: dict[tuple, str] = {}
    for option, path in named.items():
        key = file_key(path)
        if key in inputs_by_key:
            raise ConfigError(f"{option} {path} is one of the inputs and would be overwritten; choose another file")
        if key in seen:
            raise ConfigError(f"{seen[key]} and {option} both name {path}; give each its own file")
        seen[key] = option
        check_writable_file(path, option)
    return named


def check_writable_file(path: Path, option: str = "output") -> None:
    """A regular file that exists, or a new name in a folder that exists (or can be made) and can be written."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{option} {path} is not a regular file (a device or pipe); give a file name")
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: the folder {folder} is not writable")


def check_writable_folder(path: Path, option: str = "output folder") -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file, not a folder")
    folder = _nearest_existing(path)
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: the folder {folder} is not writable")


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class HeldFile:
    """An output file locked for one writer from `acquire()` to `release()`. A file the holder created but
    never wrote (the command failed before its first result) is removed again on release."""

    def __init__(self, path: str | Path, option: str = "output"):
        self.path, self.option = Path(path), option
        self._fd: int | None = None
        self._created = False
        self.written = False

    def acquire(self) -> "HeldFile":
        self._created = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise ConfigError(f"{self.option} {self.path}: cannot write it ({exc.strerror})") from None
        if not _lock(fd) or _replaced(fd, self.path):
            os.close(fd)
            raise ConfigError(f"{self.option} {self.path} is being written by another running dfdetect; wait for "
                              "it to finish or choose another file")
        self._fd = fd
        return self

    def open_for_appending(self):
        """The held file emptied, as a text stream (for CSV rows written as results come)."""
        os.ftruncate(self._fd, 0)
        self.written = True
        return os.fdopen(os.dup(self._fd), "w", newline="", encoding="utf-8")

    def replace(self, text: str) -> None:
        """Write the whole file anew: a locked temporary file renamed over it; no `.tmp` is left behind."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            _lock(fd, wait=True)
            with os.fdopen(os.dup(fd), "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self.written = True

    def release(self) -> None:
        if self._fd is None:
            return
        if self._created and not self.written:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def _lock(fd: int, wait: bool = False) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False


def _replaced(fd: int, path: Path) -> bool:
    """True when another writer renamed a new version over the path after we opened it: it is live."""
    try:
        return os.fstat(fd).st_ino != os.stat(path).st_ino
    except FileNotFoundError:
        return True


def check_not_in_dataset(out: str | Path, dataset: str | Path, option: str) -> None:
    """An output that already exists inside the dataset it is made from is part of that dataset (a label
    file, a video): writing it would destroy the input. New files beside the dataset's are allowed."""
    out, dataset = Path(out), Path(dataset)
    if file_key(out) == file_key(dataset):
        raise ConfigError(f"{option} {out} is the dataset itself; choose another output")
    if out.exists() and dataset.is_dir() and _inside(out, dataset):
        raise ConfigError(f"{option} {out} is a file of the dataset {dataset} and would be overwritten; "
                          "write it outside the dataset folder")


def _inside(path: Path, folder: Path) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder
