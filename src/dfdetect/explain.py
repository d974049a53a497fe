"""Why a scan said what it said: the faces it looked at, Grad-CAM heat maps of where the model looked, and
each person's score over time. `dfdetect scan --explain` and the web page of `dfdetect serve` both use this.

The faces are cut again from the frames the scan names, with the detector's own crop settings. A result
keeps its boxes to 0.1 px, so a crop here can lie a pixel from the one scanned and its recomputed
probability can differ a little from the scan's (which is the one that counted). Grad-CAM (Selvaraju et
al., 2017) weighs the backbone's last feature map by the gradient of the logit of the face's verdict: the
heat map shows the evidence for "fake" on a face called fake, and for "real" on one called real.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import DfdetectError

if TYPE_CHECKING:
    from .api import Detector
    from .results import ScanResult

FACES_PER_PERSON = 4
HEAT_ALPHA = 0.45  # share of the heat map in the overlay


@dataclass
class FaceExplanation:
    track_id: int
    frame_index: int
    time_s: float
    probability: float        # recomputed by the model on this crop
    scan_probability: float   # what the scan gave this face (the figure that counted)
    verdict: str              # "fake" | "real": the class whose evidence the heat map shows
    crop: np.ndarray          # RGB uint8, the model's input size
    heatmap: np.ndarray       # RGB uint8 overlay of the Grad-CAM map on the crop

    def file_stem(self) -> str:
        return f"person{self.track_id}_frame{self.frame_index:06d}"


def explain_faces(detector: "Detector", result: "ScanResult", faces_per_person: int = FACES_PER_PERSON,
                  ) -> list[FaceExplanation]:
    """Crops and heat maps for up to `faces_per_person` faces of each person in a scan result: spread over
    the time the person is seen, the most fake-looking face always among them."""
    from .faces.crop import crop_face
    from .faces.detect import FaceBox
    from .media import FrameSampling, iter_frames

    if not result.tracks:
        return []
    chosen = [(t, f) for t in result.tracks for f in _pick_faces(t.faces, faces_per_person)]
    by_frame: dict[int, list] = {}
    for track, face in chosen:
        by_frame.setdefault(face.frame_index, []).append((track, face))
    crops, keys = [], []
    for frame in iter_frames(result.path, FrameSampling(indices=tuple(by_frame))):
        for track, face in by_frame.get(frame.index, []):
            crops.append(crop_face(frame.image, FaceBox(*face.box.to_list()), detector.crop))
            keys.append((track, face))
    if not crops:
        raise DfdetectError(f"cannot explain {result.path}: the scanned frames no longer decode")
    cams, probs = GradCam(detector).run(crops, [face.probability >= detector.threshold for _, face in keys])
    explained = [FaceExplanation(track.track_id, face.frame_index, face.time_s, float(p), face.probability,
                                 "fake" if face.probability >= detector.threshold else "real", crop, overlay(crop, cam))
                 for (track, face), crop, cam, p in zip(keys, crops, cams, probs)]
    return sorted(explained, key=lambda f: (f.track_id, f.frame_index))


def _pick_faces(faces: Sequence, n: int) -> list:
    faces = sorted(faces, key=lambda f: f.frame_index)
    if len(faces) <= n:
        return faces
    most_fake = max(range(len(faces)), key=lambda i: faces[i].probability)
    spread = {int(round(i)) for i in np.linspace(0, len(faces) - 1, n - 1)} | {most_fake}
    while len(spread) < n:  # the most fake face was already one of the spread ones
        spread.add(next(i for i in range(len(faces)) if i not in spread))
    return [faces[i] for i in sorted(spread)]


class GradCam:
    """Grad-CAM on a detector's model. The backbone's feature map is computed without gradients; only the
    pooling and the head are differentiated, so it costs about one forward pass."""

    def __init__(self, detector: "Detector"):
        # The detector holds a Backend (models.predict); Grad-CAM needs the torch module behind it, or the
        # checkpoint an ONNX twin stands in for.
        self.model = getattr(detector.model, "model", detector.model)
        self.card, self.device = detector.card, detector.device
        if getattr(detector.model, "checkpoint", None) is not None:
            self.model = detector.model.torch_module()
        if not hasattr(self.model, "backbone"):
            raise DfdetectError(f"Grad-CAM needs a PyTorch model; {self.card.name} runs on {type(self.model).__name__}")
        if not hasattr(self.model.backbone, "forward_head"):
            raise DfdetectError(f"Grad-CAM needs a timm backbone; {self.card.arch} has no forward_head")

    def run(self, crops: Sequence[np.ndarray], as_fake: Sequence[bool]) -> tuple[list[np.ndarray], np.ndarray]:
        """Maps in [0, 1] at the crop size, one per crop, for the fake (True) or real (False) class; and
        the calibrated p(fake) of each crop."""
        import torch

        from .models.classifier import fake_logit
        from .models.preprocess import to_tensor
        from .probability import apply_temperature

        backbone = self.model.backbone
        was_training = self.model.training
        self.model.eval()
        try:
            x = to_tensor(list(crops), self.card.mean, self.card.std).to(self.device)
            with torch.no_grad():
                features = backbone.forward_features(x).float()
            features.requires_grad_(True)
            with torch.enable_grad():
                logits = fake_logit(self.model.head(backbone.forward_head(features, pre_logits=True)))
                signs = torch.tensor([1.0 if f else -1.0 for f in as_fake], device=logits.device)
                (logits * signs).sum().backward()
        finally:
            self.model.train(was_training)
        weights = features.grad.mean(dim=(2, 3), keepdim=True)
        cams = torch.relu((weights * features.detach()).sum(dim=1)).cpu().numpy()
        probs = apply_temperature(logits.detach().cpu().numpy(), self.card.temperature)
        size = crops[0].shape[0]
        return [_normalised(cam, size) for cam in cams], np.asarray(probs, dtype=float)


def _normalised(cam: np.ndarray, size: int) -> np.ndarray:
    import cv2

    cam = cv2.resize(cam.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    cam = np.clip(cam, 0, None)
    peak = float(cam.max())
    return cam / peak if peak > 0 else cam


def overlay(crop: np.ndarray, cam: np.ndarray, alpha: float = HEAT_ALPHA) -> np.ndarray:
    """The crop with the map drawn over it in the JET colour scale (red: most evidence)."""
    import cv2

    heat = cv2.applyColorMap(np.uint8(np.round(255 * cam)), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    return np.uint8(np.round((1 - alpha) * crop.astype(np.float32) + alpha * heat.astype(np.float32)))


# -- files ------------------------------------------------------------------------------------------------

@dataclass
class ExplanationFiles:
    timeline: Path | None
    faces: list[tuple[FaceExplanation, Path, Path]]   # (face, crop PNG, heat map PNG)


def save_explanation(result: "ScanResult", faces: Sequence[FaceExplanation], out_dir: str | Path
                     ) -> ExplanationFiles:
    """Writes `timeline.png` (for a video with people) and, per face, `<stem>_crop.png` and
    `<stem>_gradcam.png` into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for face in faces:
        crop_path, heat_path = out_dir / f"{face.file_stem()}_crop.png", out_dir / f"{face.file_stem()}_gradcam.png"
        write_png(face.crop, crop_path)
        write_png(face.heatmap, heat_path)
        saved.append((face, crop_path, heat_path))
    timeline = None
    if result.tracks and result.media is not None and result.media.kind == "video":
        timeline = plot_timeline(result, out_dir / "timeline.png")
    return ExplanationFiles(timeline, saved)


def write_png(image: np.ndarray, path: Path) -> Path:
    import cv2

    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise DfdetectError(f"cannot write {path}")
    return path


def plot_timeline(result: "ScanResult", path: str | Path) -> Path:
    """Each person's face p(fake) over time, with the threshold: where in the video the model is sure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    for track in result.tracks:
        faces = sorted(track.faces, key=lambda f: f.time_s)
        ax.plot([f.time_s for f in faces], [f.probability for f in faces], marker="o", markersize=3,
                label=f"person {track.track_id}: {track.verdict} {track.probability:.2f}")
    ax.axhline(result.threshold, color="grey", linestyle="--", linewidth=1, label=f"threshold {result.threshold:.2f}")
    ax.set(xlabel="time (s)", ylabel="p(fake)", ylim=(0, 1), title=f"{Path(result.path).name}: {result.verdict}")
    if result.media and result.media.duration_s:
        ax.set_xlim(0, result.media.duration_s)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
