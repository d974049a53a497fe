"""The light install: `pip install dfdetect` in a fresh venv gives a scan on ONNX Runtime with no PyTorch and no
OpenCV, and every command or option that needs more says in one line which extra to add."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEFT_OUT = ("torch", "torchvision", "cv2", "timm", "scipy", "sklearn", "skimage", "pandas", "facenet_pytorch")


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("light") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # A copy of the tree without build leftovers, so that pip builds the package as a user's pip would.
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(REPO)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "dfdetect"), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd)})


@pytest.mark.slow
def test_the_light_install_leaves_out_torch_and_opencv(light_venv):
    probe = "import importlib.util as u; print(*[m for m in %r if u.find_spec(m)])" % (LEFT_OUT,)
    found = subprocess.run([str(light_venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == ""


@pytest.mark.slow
def test_the_light_install_scans_a_clip_and_an_image(light_venv, tmp_path, astronaut):
    from PIL import Image

    sample = _run(light_venv, "sample", cwd=tmp_path)
    assert sample.returncode == 0, sample.stderr
    clip = _run(light_venv, "scan", sample.stdout.strip(), "--json", "out.json", cwd=tmp_path)
    assert clip.returncode == 0, clip.stderr
    assert "REAL" in clip.stdout and "astronaut.mp4" in clip.stdout

    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    image = _run(light_venv, "scan", "astronaut.png", "--annotate", "boxed.png", "--quiet", cwd=tmp_path)
    assert image.returncode == 0, image.stderr
    assert "astronaut.png:" in image.stdout and (tmp_path / "boxed.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("args, extra", [
    (["train", "recipe.yaml"], "train"),
    (["evaluate", "default", "manifest.csv"], "train"),
    (["serve"], "serve"),
    (["scan", "x.png", "--explain", "why"], "train"),
    (["scan", "x.png", "--detector", "haar"], "train"),
    (["scan", "x.png", "--device", "cuda"], "train"),
])
def test_what_the_light_install_lacks_is_one_line(light_venv, tmp_path, astronaut, args, extra):
    from PIL import Image

    Image.fromarray(astronaut).save(tmp_path / "x.png")
    done = _run(light_venv, *args, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"dfdetect[{extra}]" in lines[0], done.stderr


@pytest.mark.slow
def test_the_light_install_scans_a_shared_clip_as_the_full_install_does(light_venv, tmp_path, dfdc_videos):
    """Same verdict and p(fake) as the full install's PyTorch checkpoint (the ONNX twin and the ONNX MTCNN)."""
    import json

    from dfdetect import Detector
    from dfdetect.models.checkpoint import resolve

    done = _run(light_venv, "scan", str(dfdc_videos[2]), "--json", "clip.json", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    light = json.loads((tmp_path / "clip.json").read_text())["results"][0]
    full = Detector.load(resolve("default")[0], device="cpu", detector_options={"engine": "torch"}).scan(dfdc_videos[2])
    assert light["verdict"] == full.verdict and abs(light["probability"] - full.probability) < 0.02


@pytest.mark.slow
def test_the_light_install_gives_bad_inputs_one_line_each_and_keeps_the_rest(light_venv, tmp_path):
    import json

    import numpy as np
    from PIL import Image

    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(3000))
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(tmp_path / "grey.png")  # no face
    sample = _run(light_venv, "sample", cwd=tmp_path).stdout.strip()
    done = _run(light_venv, "scan", "empty.mp4", "noise.jpg", "grey.png", sample, "--json", "out.json", "--quiet",
                cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("empty.mp4: error:") and lines[1].startswith("noise.jpg: error:")
    assert lines[2].startswith("grey.png: no_face") and "astronaut.mp4: REAL" in lines[3]
    verdicts = [r["verdict"] for r in json.loads((tmp_path / "out.json").read_text())["results"]]
    assert verdicts == ["error", "error", "no_face", "real"]
