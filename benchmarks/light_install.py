"""The light install (`pip install dfdetect`, scan only) on every Python this machine has: time from a clean
venv, size on disk, and the README's first scan with it; the full install's size beside it.

    python3 benchmarks/light_install.py [--pythons 3.10,3.11,3.12,3.13] [--full-venv .venv]

Each venv is made with `python -m venv` and filled with `pip install --no-cache-dir .` from this checkout
(wheels come from the package index, not pip's cache). Sizes are `du` of the whole venv, pip and setuptools
included, and of what the install added (the venv's site-packages less pip and setuptools). Writes
benchmarks/results/light_install.md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, publish  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def python_for(version: str) -> str | None:
    """An interpreter of that version: pythonX.Y on PATH, else pyenv's."""
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
        return found
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        for candidate in sorted(Path(root, "versions").glob(f"{version}.*"), reverse=True):
            if (candidate / "bin" / "python").is_file():
                return str(candidate / "bin" / "python")
    return None


def du_mb(path: Path) -> float:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True).stdout.split()[0]) / 1e6


def added_mb(venv: Path) -> float:
    site = next(venv.glob("lib/python*/site-packages"))
    tooling = [p for p in site.iterdir() if p.name.split("-")[0] in ("pip", "setuptools", "_distutils_hack",
                                                                       "distutils-precedence.pth")]
    return du_mb(site) - sum(du_mb(p) for p in tooling)


def measure(version: str, python: str, work: Path) -> dict:
    venv = work / f"venv{version}"
    t0 = time.perf_counter()
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    made = time.perf_counter()
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-cache-dir",
                          "--disable-pip-version-check", str(REPO)], capture_output=True, text=True)
    installed = time.perf_counter()
    row = {"python": subprocess.run([python, "--version"], capture_output=True, text=True).stdout.split()[-1],
           "venv_s": made - t0, "install_s": installed - made, "ok": pip.returncode == 0}
    if not row["ok"]:
        row["error"] = pip.stderr.strip().splitlines()[-1] if pip.stderr.strip() else "pip failed"
        return row
    row.update(venv_mb=du_mb(venv), added_mb=added_mb(venv))
    dfdetect = str(venv / "bin" / "dfdetect")
    t = time.perf_counter()
    sample = subprocess.run([dfdetect, "sample"], capture_output=True, text=True, check=True).stdout.strip()
    scan = subprocess.run([dfdetect, "scan", sample], capture_output=True, text=True)
    row.update(scan_s=time.perf_counter() - t, scan=(scan.stdout.strip().splitlines() or [scan.stderr.strip()])[0])
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pythons", default="3.10,3.11,3.12,3.13")
    p.add_argument("--full-venv", default=str(REPO / ".venv"), help="the full install, for its size")
    p.add_argument("--out", default=str(RESULTS / "light_install.md"))
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for version in args.pythons.split(","):
            python = python_for(version)
            if python is None:
                rows.append({"python": version, "ok": False, "error": "no interpreter here"})
                continue
            rows.append(measure(version, python, Path(tmp)))
            print(rows[-1], flush=True)
    full = Path(args.full_venv)
    lines = [
        "# The light install: time, size and first scan per Python", "",
        f"Command: `python3 benchmarks/light_install.py --pythons {args.pythons}`  ",
        f"Machine: {describe_machine()}  ",
        f"Date: {datetime.now(timezone.utc).isoformat(timespec='minutes')}", "",
        "`pip install --no-cache-dir .` in a fresh `python -m venv` (goal: at most 30 s and 400 MB), then "
        "`dfdetect scan \"$(dfdetect sample)\"` with it (first run: no warm caches).", "",
        "| Python | venv made | pip install | venv on disk | added by the install | sample scan | its line |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r.get("ok"):
            lines.append(f"| {r['python']} | | | | | | failed: {r.get('error', '')} |")
            continue
        lines.append(f"| {r['python']} | {r['venv_s']:.1f} s | {r['install_s']:.1f} s | {r['venv_mb']:.0f} MB | "
                     f"{r['added_mb']:.0f} MB | {r['scan_s']:.1f} s | `{r['scan']}` |")
    if full.is_dir():
        lines += ["", f"The full install (`bash install.sh`: PyTorch with its CUDA libraries, OpenCV, training, "
                      f"server and test tools) is {du_mb(full) / 1000:.1f} GB on disk ({full.name})."]
    publish(lines, args.out)
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
