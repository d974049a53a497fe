"""What a `dfdetect serve` instance runs with: model, storage, limits and access."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class ServeSettings:
    data_dir: Path = Path("dfdetect-serve")   # uploads/ and outputs/ (and the SQLite file by default)
    database: str | None = None               # None: sqlite in data_dir; a sqlite:///path or postgresql://... URL
    model: str = "default"
    device: str = "auto"
    frames: str = "32"                        # default frame sampling of video scans
    workers: int = 1                          # scans run at once (each worker holds its own model)
    max_upload_mb: float = 200.0
    max_video_s: float = 600.0
    max_queue: int = 100                      # queued video jobs; more is refused with 503
    max_frames: int = 300                     # the most frames a request may ask to sample
    token: str | None = None                  # bearer token required on /v1 (health excepted) when set
    keep_hours: float = 24.0                  # outputs older than this are deleted (results stay in the database)
    cleanup_every_s: float = 600.0
    lease_s: float = 60.0                     # a running job whose worker is silent this long is queued again
    node: str = field(default_factory=socket.gethostname)  # this server's name among those sharing a database
    faces_per_person: int = 4                 # faces explained (crop + heat map) per person

    def __post_init__(self):
        if self.workers < 1 or self.max_queue < 1 or self.max_frames < 1:
            raise ConfigError("workers, max_queue and max_frames must be at least 1")
        if self.max_upload_mb <= 0 or self.max_video_s <= 0 or self.keep_hours <= 0 or self.lease_s <= 0:
            raise ConfigError("upload size, video duration, keep hours and lease must be positive")
        object.__setattr__(self, "data_dir", Path(self.data_dir))

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{(self.data_dir / 'scans.db').resolve()}"

    @classmethod
    def from_env(cls, **overrides) -> "ServeSettings":
        """Settings with the token from DFDETECT_TOKEN unless given (a token on a command line shows in `ps`)."""
        overrides.setdefault("token", os.environ.get("DFDETECT_TOKEN") or None)
        return cls(**overrides)
