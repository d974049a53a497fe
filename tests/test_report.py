"""Reports, run comparison, manifests, and `dfdetect evaluate` / `compare` end to end on real DFDC crops."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dfdetect.errors import DatasetError, DfdetectError, MediaError
from dfdetect.evaluate.metrics import compute_metrics
from dfdetect.evaluate.report import compare_runs, comparison_markdown, write_comparison, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_command(name: str, argv: list[str]) -> int:
    """Parse and run one command the way the CLI does, without importing the other commands."""
    import argparse
    import importlib

    module = importlib.import_module(f"dfdetect.commands.{name}")
    parser = argparse.ArgumentParser(prog=f"dfdetect {name}")
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))
Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.4, 0.35, 0.8])


def _history(path):
    pd.DataFrame({"epoch": [1, 2, 3], "stage": ["head", "all", "all"], "lr": [1e-3, 5e-4, 1e-4],
                  "train_loss": [0.69, 0.5, 0.4], "val_loss": [0.68, 0.55, 0.52], "val_auc": [0.6, 0.75, 0.8],
                  "images_per_s": [410.0, 395.5, ""]}).to_csv(path, index=False)
    return path


def test_write_report_files_and_contents(tmp_path):
    levels = {
        "frame": compute_metrics(Y, P, 0.5, groups=["original", "original", "dfdc", "dfdc"]),
        "video": compute_metrics([1, 1], [0.3, 0.9], 0.5),  # one class: AUC undefined
    }
    written = write_report(tmp_path / "out", levels, info={"checkpoint": "x.safetensors", "split": "test"},
                           history=_history(tmp_path / "history.csv"), notes=["a note"])
    for name in ("roc_frame", "confusion_frame", "reliability_frame", "confusion_video", "training_curves"):
        assert written[name].read_bytes()[:8] == PNG_SIGNATURE, name
    assert "roc_video" not in written  # no ROC curve without both classes
    saved = json.loads(written["metrics"].read_text())
    assert saved["levels"]["frame"] == levels["frame"] and saved["info"]["split"] == "test"
    report = written["report"].read_text()
    assert "| Accuracy at threshold 0.5000 | 75.00 % |" in report
    assert "| ROC-AUC | 0.7500 |" in report
    assert "| original | 2 | 0 | 2 | 100.00 % | n/a |" in report
    assert "auc: ROC-AUC needs both real and fake items" in report
    assert "![Training curves](training_curves.png)" in report and "> a note" in report


def _make_run(folder, arch, params, metrics_levels=None, card_metrics=None):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"")  # compare reads only the card
    card = {"name": folder.name, "arch": arch, "params": params, "metrics": card_metrics or {}}
    (folder / "model.json").write_text(json.dumps(card))
    if metrics_levels:
        write_report(folder / "eval-test", metrics_levels, info={"split": "test"}, figures=False)
    return folder


def test_compare_runs_table(tmp_path):
    b0 = _make_run(tmp_path / "b0", "efficientnet_b0", 5_288_548,
                   {"frame": compute_metrics(Y, P), "video": compute_metrics(Y, [0.1, 0.2, 0.7, 0.8])})
    # training's validation report in the run folder ranks below the held-out evaluation in eval-test/
    write_report(b0, {"frame": compute_metrics(Y, [0.9, 0.8, 0.1, 0.2])}, info={"split": "val"}, figures=False)
    b4 = _make_run(tmp_path / "b4", "efficientnet_b4", 19_341_616,
                   card_metrics={"val_auc": 0.828, "val_accuracy": 0.727, "val_log_loss": 0.51})
    table = compare_runs([b0, b4, tmp_path / "missing"])
    assert table["model"].tolist() == ["efficientnet_b0", "efficientnet_b4"]
    # video level preferred: the second prediction set separates perfectly
    assert table.loc[0, "auc"] == pytest.approx(1.0) and table.loc[0, "source"] == "video level, test"
    assert table.loc[1, "auc"] == pytest.approx(0.828) and table.loc[1, "source"] == "model card"
    assert [run for run, _ in table.attrs["skipped"]] == [str(tmp_path / "missing")]
    frame_table = compare_runs([b0], level="frame")
    assert frame_table.loc[0, "auc"] == pytest.approx(0.75)

    markdown = comparison_markdown(table)
    assert "| efficientnet_b0 | b0 | 100.0 | 1.000 |" in markdown
    assert "| efficientnet_b4 | b4 | 72.7 | 0.828 | 0.5100 | n/a | 19.3M | model card |" in markdown
    md, csv = write_comparison(table, tmp_path / "cmp" / "table.md")
    assert md.read_text() == markdown
    assert pd.read_csv(csv)["params"].tolist() == [5_288_548, 19_341_616]


def test_compare_command(tmp_path, capsys):
    run = _make_run(tmp_path / "b0", "efficientnet_b0", 5_288_548, {"frame": compute_metrics(Y, P)})
    assert run_command("compare", [str(run), "--out", str(tmp_path / "t.md")]) == 0
    assert "| efficientnet_b0 | b0 | 75.0 | 0.750 |" in capsys.readouterr().out
    assert (tmp_path / "t.csv").is_file()
    assert run_command("compare", [str(run), str(tmp_path / "nothing")]) == 1  # one run skipped
    assert "skipped" in capsys.readouterr().err
    with pytest.raises(DfdetectError, match="evaluate them first"):
        run_command("compare", [str(tmp_path / "nothing")])


def test_commands_import_no_torch_or_matplotlib():
    code = ("import sys, dfdetect.evaluate, dfdetect.commands.evaluate, dfdetect.commands.compare; "
            "heavy = [m for m in ('torch', 'matplotlib') if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- manifests


def test_read_manifest_resolves_paths_and_labels(tmp_path):
    from dfdetect.commands.evaluate import select_split
    from dfdetect.data.manifest import read_labelled_manifest as read_manifest

    (tmp_path / "crops").mkdir()
    pd.DataFrame({
        "path": ["crops/000.jpg", str(tmp_path / "abs.jpg"), "crops/still.png"],
        "label": ["REAL", "1", "fake"],
        "video": ["000", "000", ""],  # a still image has no video
        "method": ["", "", ""],       # unknown everywhere: treated as absent
        "split": ["test", "test", "val"],
    }).to_csv(tmp_path / "m.csv", index=False)
    df = read_manifest(tmp_path / "m.csv")
    assert df["path"].tolist() == [str(tmp_path / "crops/000.jpg"), str(tmp_path / "abs.jpg"),
                                   str(tmp_path / "crops/still.png")]
    assert df["label"].tolist() == [0, 1, 1]
    assert df["video"].tolist() == ["000", "000", str(tmp_path / "crops/still.png")]
    assert "method" not in df.columns
    assert len(select_split(df, "test")) == 2 and len(select_split(df, "all")) == 3
    with pytest.raises(DatasetError, match="it has: test, val"):
        select_split(df, "train")
    pd.DataFrame({"file": ["a.jpg"], "label": [0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DatasetError, match="lacks column"):
        read_manifest(tmp_path / "bad.csv")


# ---------------------------------------------------------------- end to end with a real model and crops


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from dfdetect.models import BACKBONES, ModelCard, create_model, save_checkpoint

    # On a small CPU shared with other processes, OpenMP threads spin against each other (a 64-pixel batch
    # took seconds instead of milliseconds); one thread is steady. Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("efficientnet_b0")
    spec = BACKBONES.get("efficientnet_b0")
    # 64-pixel inputs keep the test quick on a small CPU; the card, not the backbone, fixes the input size
    card = ModelCard(name="test-b0", arch="efficientnet_b0", input_size=64, mean=spec.mean,
                     std=spec.std, threshold=0.5, temperature=1.0)
    run = tmp_path_factory.mktemp("run")
    weights, _ = save_checkpoint(model, card, run / "model")
    _history(run / "history.csv")
    yield weights
    torch.set_num_threads(threads)


@pytest.fixture
def crop_manifest(tmp_path, dfdc_faces):
    meta = pd.read_csv(dfdc_faces / "metadata.csv", nrows=60)
    real = meta[meta["label"] == "REAL"].head(5)
    fake = meta[meta["label"] == "FAKE"].head(5)
    rows = pd.concat([real, fake])
    manifest = pd.DataFrame({
        "path": [str(dfdc_faces / "faces" / name.replace(".mp4", ".jpg")) for name in rows["videoname"]],
        "label": rows["label"].tolist(),
        # crops of one label grouped as if they were frames of fewer videos, so video level differs
        "video": ["real-a", "real-a", "real-b", "real-c", "real-c", "fake-a", "fake-a", "fake-b", "fake-c", "fake-c"],
        "method": ["original"] * 5 + ["dfdc"] * 5,
        "split": ["test", "test", "test", "val", "val"] * 2,
    })
    path = tmp_path / "faces.csv"
    manifest.to_csv(path, index=False)
    return path


def test_evaluate_command_end_to_end(tiny_checkpoint, crop_manifest, capsys):
    import torch

    from dfdetect.faces.crop import letterbox
    from dfdetect.media import read_image
    from dfdetect.models import load_checkpoint
    from dfdetect.models.preprocess import to_tensor

    status = run_command("evaluate", [str(tiny_checkpoint), str(crop_manifest), "--device", "cpu", "--batch-size", "4",
                   "--workers", "2", "--tta", "flip", "--fit-temperature-on", "val", "--threshold", "eer"])
    assert status == 0
    out = tiny_checkpoint.parent / "eval-faces-test"
    saved = json.loads((out / "metrics.json").read_text())
    info, levels = saved["info"], saved["levels"]
    assert levels["frame"]["n"] == 6 and levels["video"]["n"] == 4
    assert set(levels["frame"]["per_group"]) == {"original", "dfdc"}
    assert "fitted on split 'val'" in info["temperature_source"]
    assert info["thresholds"]["frame"]["source"] == "eer on split 'val'"
    assert (out / "training_curves.png").is_file() and (out / "report.md").is_file()
    assert "report:" in capsys.readouterr().out

    # the saved probabilities are the model's own: letterbox -> normalise -> mean of plain and mirrored logit / T
    predictions = pd.read_csv(out / "predictions_frame.csv")
    model, card = load_checkpoint(tiny_checkpoint)
    crops = [letterbox(read_image(p), card.input_size) for p in predictions["path"]]
    x = to_tensor(crops, card.mean, card.std)
    with torch.inference_mode():
        logits = (model.fake_logit(x) + model.fake_logit(torch.flip(x, dims=[3]))) / 2
    expected = torch.sigmoid(logits.double() / info["temperature"]).numpy()
    np.testing.assert_allclose(predictions["prob"], expected, rtol=1e-4, atol=1e-6)
    threshold = info["thresholds"]["frame"]["value"]
    assert predictions["predicted"].tolist() == (predictions["prob"] >= threshold).astype(int).tolist()
    videos = pd.read_csv(out / "predictions_video.csv").set_index("video")
    assert videos.loc["real-a", "n_frames"] == 2
    assert videos.loc["real-a", "prob"] == pytest.approx(predictions["prob"][:2].mean())


def test_predict_logits_skips_or_raises_on_unreadable_crops(tiny_checkpoint, dfdc_faces, tmp_path):
    from dfdetect.commands.evaluate import predict_logits, predict_manifest
    from dfdetect.models import load_checkpoint

    model, card = load_checkpoint(tiny_checkpoint)
    model.train()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = str(next((dfdc_faces / "faces").glob("*.jpg")))
    logits = predict_logits(model, card, [good, broken, good], batch_size=2, skip_unreadable=True, progress=False)
    assert np.isnan(logits[1]) and np.isfinite(logits[[0, 2]]).all()
    assert logits[0] == pytest.approx(logits[2], rel=1e-5)  # same crop, different batch
    assert model.training  # the caller's mode is restored
    with pytest.raises(MediaError):
        predict_logits(model, card, [good, broken], progress=False)
    probs = predict_manifest(model, card, pd.DataFrame({"path": [good]}), temperature=2.0, progress=False)
    assert probs[0] == pytest.approx(1 / (1 + np.exp(-logits[0] / 2.0)), rel=1e-5)


def test_evaluate_warns_of_crops_cut_otherwise_and_recrop_cuts_them_again(tiny_checkpoint, crop_manifest, tmp_path,
                                                                           capsys):
    extraction = tmp_path / "haar_crops"
    extraction.mkdir()
    manifest = extraction / "manifest.csv"
    manifest.write_bytes(crop_manifest.read_bytes())
    preset = {"name": "seed003", "detector": "haar", "margin": 0.2, "margin_px": 0}
    (extraction / "extract_config.json").write_text(json.dumps({"preset": preset}))
    common = [str(tiny_checkpoint), str(manifest), "--device", "cpu", "--workers", "2", "--no-figures"]

    assert run_command("evaluate", [*common, "--out", str(tmp_path / "as_given")]) == 0
    err = capsys.readouterr().err
    assert "cut with haar, margin 0.2" in err and "--recrop" in err  # the card says mtcnn, margin 0.3
    assert "cut with haar" in (tmp_path / "as_given" / "report.md").read_text()

    assert run_command("evaluate", [*common, "--recrop", "--out", str(tmp_path / "recut")]) == 0
    assert "cut with haar" not in capsys.readouterr().err
    saved = json.loads((tmp_path / "recut" / "metrics.json").read_text())
    assert saved["info"]["recrop"] is True and saved["levels"]["frame"]["n"] == 6
    assert re.search(r"Crops cut again as the card says \(mtcnn, margin 0.3, 0 px\); in \d of 6 no face",
                     (tmp_path / "recut" / "report.md").read_text())
