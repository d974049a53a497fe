"""`dfdetect average`: the weight average of checkpoints (a model soup), with a card that must be calibrated."""

from __future__ import annotations

import torch

from dfdetect.cli import main
from dfdetect.models import create_model, load_card, load_checkpoint, save_checkpoint
from dfdetect.models.average import NOT_CALIBRATED


def _checkpoint(path, seed: int, arch: str = "efficientnet_lite0"):
    torch.manual_seed(seed)
    model = create_model(arch).eval()
    card = load_card("default").model_copy(update={"arch": arch, "name": f"m{seed}", "weights_sha256": "",
                                                   "threshold": 0.7, "temperature": 0.9})
    save_checkpoint(model, card, path)
    return model.state_dict()


def test_the_average_is_the_weighted_mean_of_every_tensor_and_its_card_asks_for_calibration(tmp_path, capsys):
    a = _checkpoint(tmp_path / "a", seed=0)
    b = _checkpoint(tmp_path / "b", seed=1)
    assert main(["average", str(tmp_path / "a"), str(tmp_path / "b"), "--weights", "3,1",
                 "--out", str(tmp_path / "soup")]) == 0
    assert "calibrate it before use" in capsys.readouterr().out

    soup, card = load_checkpoint(tmp_path / "soup")
    state = soup.state_dict()
    floats = [key for key in a if a[key].is_floating_point()]
    assert floats and all(torch.allclose(state[k], 0.75 * a[k] + 0.25 * b[k], atol=1e-6) for k in floats)
    assert not torch.equal(a[floats[0]], b[floats[0]])
    assert (card.threshold, card.temperature, card.video_threshold, card.metrics) == (0.5, 1.0, None, {})
    assert card.warnings == [NOT_CALIBRATED] and card.name == "m0-averaged"
    parts = card.training["averaged_from"]
    assert [(p["name"], p["weight"]) for p in parts] == [("m0", 0.75), ("m1", 0.25)]
    assert all(len(p["weights_sha256"]) == 64 for p in parts)
    assert all(p["training"] == load_card("default").training for p in parts)  # the parts' recipes travel on


def test_models_that_cannot_be_averaged_and_outputs_over_inputs_are_refused(tmp_path, capsys):
    _checkpoint(tmp_path / "a", seed=0)
    _checkpoint(tmp_path / "other", seed=1, arch="mobilenetv3_large")
    assert main(["average", str(tmp_path / "a"), str(tmp_path / "other"), "--out", str(tmp_path / "x")]) == 2
    assert "their arch differs" in capsys.readouterr().err
    assert main(["average", str(tmp_path / "a"), "--out", str(tmp_path / "x")]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["average", str(tmp_path / "a"), str(tmp_path / "a"), "--weights", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert main(["average", str(tmp_path / "a"), "default", "--out", str(tmp_path / "a")]) == 2
    assert not (tmp_path / "x.safetensors").exists() and load_checkpoint(tmp_path / "a")[1].name == "m0"
