"""One line describing the machine a benchmark ran on (CPU model and cores, torch, GPU, load)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def publish(lines: list[str], out: str | None) -> str:
    """A benchmark's report: printed, and written to `out` when given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        Path(out).write_text(text)
    return text


def describe_machine() -> str:
    try:
        import torch
    except ImportError:  # the light install
        torch = None
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}"
    if torch is not None:
        text += f", torch {torch.__version__}"
        text += f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    try:
        text += f", load average {os.getloadavg()[0]:.1f} at start"
    except OSError:
        pass
    return text
