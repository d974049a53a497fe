"""Shared fixtures: real inputs from ../shared/data (skipped with a reason where absent) and skimage's astronaut."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DFDETECT_SHARED_DATA", REPO.parent / "shared" / "data"))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set DFDETECT_SHARED_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def dfdc_videos() -> list[Path]:
    folder = _need(SHARED_DATA / "dfdc-videos" / "videos")
    videos = sorted(folder.glob("*.mp4"))
    if not videos:
        pytest.skip(f"no .mp4 clips in {folder}")
    return videos


@pytest.fixture(scope="session")
def dfdc_video_labels() -> dict[str, str]:
    import csv

    path = _need(SHARED_DATA / "dfdc-videos" / "labels.csv")
    with open(path) as f:
        return {Path(r["path"]).name: r["label"] for r in csv.DictReader(f)}


@pytest.fixture(scope="session")
def dfdc_faces() -> Path:
    return _need(SHARED_DATA / "dfdc-faces")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small CPU steps run many times slower with two intra-op threads on two busy cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
