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


class ServerProcess:
    """`dfdetect serve` in a subprocess on a free loopback port, as a user starts it."""

    def __init__(self, data_dir: Path, *args: str, token: str | None = None):
        self.data_dir, self.args, self.token = Path(data_dir), args, token
        self.proc = None
        self.url = ""

    def start(self, timeout: float = 240.0) -> "ServerProcess":
        import socket
        import subprocess
        import sys
        import time

        import requests

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k != "DFDETECT_TOKEN"}
        if self.token:
            env["DFDETECT_TOKEN"] = self.token
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.data_dir / "server.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dfdetect.cli", "serve", "--port", str(port), "--data", str(self.data_dir),
                 "--device", "cpu", "--log-level", "warning", *self.args],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/v1/health", timeout=2).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the OOM killer stops it."""
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except Exception:
                self.kill()


@pytest.fixture(scope="session")
def ffpp_clips() -> dict[str, list[Path]]:
    """Short FaceForensics++ clips (4 s, 480-720p): real ones and Deepfakes."""
    root = _need(SHARED_DATA / "ffpp-c23")
    return {"real": sorted((root / "original_sequences" / "youtube" / "c23" / "videos").glob("*.mp4")),
            "fake": sorted((root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos").glob("*.mp4"))}


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A throwaway PostgreSQL server (Debian's postgresql package) on a free loopback port; skipped without one."""
    import glob
    import shutil
    import socket
    import subprocess
    import tempfile

    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'dfdetect[postgres]')")
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.skip("no PostgreSQL server binaries (Debian: apt-get install postgresql)")
    bin_dir = Path(binaries[-1]).parent
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="dfdetect-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser to start PostgreSQL as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*cmd):
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(folder / "db"), "-A", "trust", "-U", "dfdetect", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(folder / "db"), "-w", "-l", str(folder / "log"), "-o",
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    yield f"postgresql://dfdetect@127.0.0.1:{port}/postgres"
    subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(folder / "db"), "-m", "immediate", "stop"],
                   capture_output=True, timeout=120)
    shutil.rmtree(folder, ignore_errors=True)
