"""Regenerate the MTCNN networks shipped in assets/detectors/mtcnn/ as ONNX files.

    python -m dfdetect.faces.mtcnn_export [--out src/dfdetect/assets/detectors/mtcnn] [--check]

The weights are facenet-pytorch 2.6.0's (the original MTCNN ones, converted from Caffe); this needs torch and
facenet-pytorch (`pip install --no-deps facenet-pytorch==2.6.0`). The scan itself reads the .onnx files with
ONNX Runtime (faces/mtcnn.py) and imports neither. P-Net takes any batch and image size; R-Net (24 px) and
O-Net (48 px) any batch. Outputs keep facenet-pytorch's order and layout: box regression, then landmarks
(O-Net), then the softmax face / no-face probabilities.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

OPSET = 17
ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "detectors" / "mtcnn"
FACENET_VERSION = "2.6.0"

# name -> (facenet class, input side or None for any, output names in facenet-pytorch's order)
NETWORKS = {
    "pnet": ("PNet", None, ["regression", "probability"]),
    "rnet": ("RNet", 24, ["regression", "probability"]),
    "onet": ("ONet", 48, ["regression", "landmarks", "probability"]),
}


def export_all(out: Path = ASSET_DIR, opset: int = OPSET) -> list[Path]:
    """Write pnet.onnx, rnet.onnx and onet.onnx into `out`; returns their paths."""
    from importlib.metadata import version as package_version

    import onnx
    import torch
    from facenet_pytorch.models import mtcnn as facenet_mtcnn

    version = package_version("facenet-pytorch")
    if version != FACENET_VERSION:
        print(f"note: facenet-pytorch {version} is installed; the assets were made with {FACENET_VERSION}")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (cls_name, side, outputs) in NETWORKS.items():
        net = getattr(facenet_mtcnn, cls_name)(pretrained=True).float().eval()
        example = torch.zeros(1, 3, side or 64, side or 64)
        axes = {0: "batch"} if side else {0: "batch", 2: "height", 3: "width"}
        out_axes = {0: "batch"} if side else {0: "batch", 2: "out_height", 3: "out_width"}
        path = out / f"{name}.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: fine for plain CNNs
            torch.onnx.export(net, (example,), str(path), input_names=["image"], output_names=outputs,
                              dynamic_axes={"image": axes, **{o: out_axes for o in outputs}},
                              opset_version=opset, dynamo=False)
        proto = onnx.load(str(path))
        proto.doc_string = (f"MTCNN {cls_name}, weights of facenet-pytorch {version} (the original MTCNN ones); "
                            "input RGB, NCHW, (x - 127.5) / 128")
        onnx.checker.check_model(proto)
        onnx.save(proto, str(path))
        paths.append(path)
    return paths


def check(out: Path = ASSET_DIR, seed: int = 0) -> dict[str, float]:
    """Largest absolute difference between each ONNX file and facenet-pytorch on random inputs."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from facenet_pytorch.models import mtcnn as facenet_mtcnn

    rng = np.random.default_rng(seed)
    worst = {}
    for name, (cls_name, side, _) in NETWORKS.items():
        net = getattr(facenet_mtcnn, cls_name)(pretrained=True).float().eval()
        session = ort.InferenceSession(str(out / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        diff = 0.0
        for batch, height, width in ((1, 37, 53), (3, 120, 90)) if side is None else ((1, side, side), (7, side, side)):
            x = rng.uniform(-1, 1, (batch, 3, height, width)).astype(np.float32)
            with torch.no_grad():
                expected = [t.numpy() for t in net(torch.from_numpy(x))]
            got = session.run(None, {"image": x})
            diff = max(diff, *(float(np.abs(a - b).max()) for a, b in zip(expected, got)))
        worst[name] = diff
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dfdetect.faces.mtcnn_export", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSET_DIR, help=f"folder for the .onnx files (default: {ASSET_DIR})")
    parser.add_argument("--opset", type=int, default=OPSET)
    parser.add_argument("--check", action="store_true", help="compare the files with facenet-pytorch afterwards")
    args = parser.parse_args(argv)
    for path in export_all(args.out, args.opset):
        print(f"{path}  {path.stat().st_size / 1e6:.2f} MB")
    if args.check:
        for name, diff in check(args.out).items():
            print(f"{name}: largest difference to facenet-pytorch {diff:.2e}")


if __name__ == "__main__":
    main()
