"""Frames decoded ahead in a background thread, so that decoding overlaps detection and classification.

While the frames of one input are detected and classified, one thread decodes on: up to `depth` frames ahead
of them, and, once that input's frames are all read, into the next input's. PyAV (and the detectors' and
classifiers' native code) release the GIL, so the stages run side by side on two cores or more.

Memory stays bounded: the thread works on at most one input beyond the one being scanned (inputs that gave
no frame, such as unreadable files, do not count), and holds at most `depth` decoded frames of each. An error met while decoding an input is raised where that input's frames are
read, as it would have been without the thread.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Sequence

from .info import Frame

_END = object()
POLL_S = 0.1     # how often a waiting thread looks whether it has been told to stop
JOIN_S = 10.0    # how long close() waits for the thread to finish the frame it is decoding


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


class _Feed:
    """One input's frames on their way from the decoding thread to the scan."""

    def __init__(self, depth: int):
        self.frames: queue.Queue = queue.Queue(depth)
        self.cancelled = threading.Event()

    def discard(self) -> None:
        self.cancelled.set()
        try:
            while True:
                self.frames.get_nowait()
        except queue.Empty:
            pass


class FramePrefetcher:
    """Decodes `frames_of(source)` for each of `sources` in order, in one daemon thread; a source of None is
    left alone (its input is read otherwise). The consumer says `start(i)` when it begins input i, takes its
    frames with `frames(i)`, and says `done(i)` when it has finished with it, whether or not it read them
    all. `close()` stops the thread; use the prefetcher as a context manager to have that done."""

    def __init__(self, sources: Sequence, frames_of: Callable[[object], Iterator[Frame]], depth: int = 8):
        self._sources = list(sources)
        self._frames_of = frames_of
        self._feeds: list[_Feed | None] = [_Feed(max(1, depth)) for _ in self._sources]
        self._current = -1  # the input the consumer is on
        self._empty: set[int] = set()  # inputs whose decoding ended without a frame (an error, mostly)
        self._moved = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dfdetect-decode", daemon=True)
        self._thread.start()

    def __enter__(self) -> "FramePrefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, i: int) -> None:
        with self._moved:
            self._current = max(self._current, i)
            self._moved.notify_all()

    def frames(self, i: int) -> Iterator[Frame]:
        """Input i's frames as the thread decodes them (raising what decoding raised)."""
        self.start(i)
        feed = self._feeds[i]
        if feed is None:
            raise RuntimeError(f"the frames of input {i} were already taken")
        try:
            while True:
                item = feed.frames.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            self.done(i)

    def done(self, i: int) -> None:
        """The consumer has finished with input i: the thread stops decoding it and its frames are dropped."""
        feed, self._feeds[i] = self._feeds[i], None
        if feed is not None:
            feed.discard()

    def close(self) -> None:
        self._stop.set()
        with self._moved:
            self._moved.notify_all()
        for i in range(len(self._feeds)):
            self.done(i)
        if self._thread is not threading.current_thread():
            self._thread.join(JOIN_S)

    # -- the decoding thread ------------------------------------------------------------------------
    def _run(self) -> None:
        for i, source in enumerate(self._sources):
            with self._moved:  # at most one input with frames beyond the consumer's
                while not self._stop.is_set() and not self._empty.issuperset(range(self._current + 1, i)):
                    self._moved.wait(POLL_S)
            feed = self._feeds[i]
            if self._stop.is_set():
                return
            if feed is None or feed.cancelled.is_set():
                continue
            if source is None or not self._fill(feed, source):
                with self._moved:
                    self._empty.add(i)

    def _fill(self, feed: _Feed, source) -> bool:
        """Decode one input into its feed; whether it gave any frame."""
        frames, given = None, False
        try:
            frames = self._frames_of(source)
            for frame in frames:
                if not self._put(feed, frame) or feed.cancelled.is_set() or self._stop.is_set():
                    return True  # the consumer no longer wants this input (the put may have met a drained queue)
                given = True
            self._put(feed, _END)
        except BaseException as exc:  # noqa: BLE001 - handed over, raised where the frames are read
            self._put(feed, _Failed(exc))
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        return given

    def _put(self, feed: _Feed, item) -> bool:
        """Wait for room in the feed; False when the consumer no longer wants it."""
        while not (feed.cancelled.is_set() or self._stop.is_set()):
            try:
                feed.frames.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False
