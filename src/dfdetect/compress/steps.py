"""The compression steps and the pipeline that chains them (`dfdetect compress MODEL STEP...`).

A step is written `name` or `name:key=value,key=value` and registered in `STEPS`; its keyword
defaults are its options (their types convert the values). Steps on the PyTorch model (lite, prune,
distill, finetune) hand on a model; `export` and `quantize` hand on an .onnx file, after which only
`quantize` can follow. Every step's result is saved in the output folder as a normal model
(`NN-step.safetensors` + `.json`, or `NN-step.onnx` with the card inside), and the card lists every
step applied so far with its options and what it measured.
"""

from __future__ import annotations

import inspect
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from torch import nn

from ..errors import ConfigError
from ..models.checkpoint import ModelCard
from ..registry import Registry


@dataclass
class Stage:
    """What flows from step to step: the card and either a PyTorch model or an .onnx file."""
    card: ModelCard
    model: nn.Module | None = None
    onnx: Path | None = None
    record: dict = field(default_factory=dict)  # what the step measured, for the card


@dataclass
class Context:
    out: Path
    manifest: str | None = None
    device: str = "cpu"
    log: Callable[[str], None] = print

    def rows(self, split: str, limit: int, seed: int = 0):
        from .data import crop_rows

        return crop_rows(self.manifest, split, limit, seed)


STEPS: Registry[Callable[..., Stage]] = Registry("compression step")


def step_options(name: str) -> dict:
    """A step's options and their defaults (its keyword arguments after `stem`)."""
    parameters = list(inspect.signature(STEPS.get(name)).parameters.values())[3:]
    return {p.name: p.default for p in parameters}


def parse_step(text: str) -> tuple[str, dict]:
    """'prune:ratio=0.35,steps=5' -> ('prune', {'ratio': 0.35, 'steps': 5}), typed by the step's defaults."""
    name, _, rest = text.partition(":")
    defaults = step_options(name)
    options = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in defaults:
            raise ConfigError(f"{name}: unknown option {item!r}; options: "
                              + ", ".join(f"{k}={v}" for k, v in defaults.items()))
        options[key] = _convert(name, key, value, defaults[key])
    return name, options


def _convert(step: str, key: str, value: str, default):
    if value.lower() in ("none", "null", ""):
        return None
    try:
        if isinstance(default, bool):
            return value.lower() in ("1", "true", "yes")
        if isinstance(default, (int, float)):
            return type(default)(value)
    except ValueError:
        raise ConfigError(f"{step}: {key}={value!r} is not a {type(default).__name__}") from None
    return value


def run_pipeline(model: str, steps: list[str], ctx: Context) -> list[Path]:
    """Apply the steps in order; returns the file written for each."""
    parsed = [parse_step(s) for s in steps]  # every step checked before any work starts
    for _, options in parsed:
        if options.get("recipe"):
            from ..train.recipe import load_recipe

            load_recipe(options["recipe"])
    needs_crops = [n for n, o in parsed if n in ("prune", "distill", "finetune")
                   or (n == "quantize" and o.get("mode", "static") == "static")]
    if needs_crops and ctx.manifest is None:
        raise ConfigError(f"{needs_crops[0]} needs real face crops: pass --manifest (a face-crop manifest with "
                          "train/val/test splits)")
    stage = _load(model, ctx)
    written = []
    for index, (name, options) in enumerate(parsed, start=1):
        stem = ctx.out / f"{index:02d}-{name}"
        if _taken(stem):
            raise ConfigError(f"{stem} already exists: choose another --out (a result never replaces a file)")
        ctx.log(f"[{index}/{len(parsed)}] {name} {options or ''}")
        stage = STEPS.get(name)(stage, ctx, stem=stem, **options)
        stage.card = stage.card.model_copy(update={
            "compression": [*stage.card.compression, {"step": name, "options": options, **stage.record}]})
        written.append(_save(stage, stem))
        ctx.log(f"    -> {written[-1]} {_short(stage.record)}")
    return written


def _load(model: str, ctx: Context) -> Stage:
    from ..models import load_checkpoint
    from ..models.predict import is_onnx, load_backend

    if is_onnx(model):
        return Stage(load_backend(model)[1], onnx=Path(model))
    net, card = load_checkpoint(model, device="cpu")
    return Stage(card, model=net)


def _taken(stem: Path) -> bool:
    return any(stem.with_name(stem.name + suffix).exists() for suffix in (".safetensors", ".json", ".onnx"))


def _save(stage: Stage, stem: Path) -> Path:
    from ..models import save_checkpoint
    from .export import write_card

    if stage.model is not None:
        return save_checkpoint(stage.model, stage.card, stem)[0]
    write_card(stage.onnx, stage.card)
    return stage.onnx


def _short(record: dict) -> str:
    keys = ("params", "macs", "size_mb", "max_abs_prob_diff", "verdicts_changed")
    return " ".join(f"{k}={record[k]}" for k in keys if k in record)


def _need_model(stage: Stage, step: str) -> nn.Module:
    if stage.model is None:
        raise ConfigError(f"{step} works on the PyTorch model; put it before export/quantize")
    return stage.model


def _sizes(model: nn.Module, card: ModelCard) -> dict:
    from .prune import count_macs_params

    macs, params = count_macs_params(model, card.input_size)
    return {"params": params, "macs": macs}


# ------------------------------------------------------------------------------------------- steps


@STEPS.register("lite")
def lite_step(stage: Stage, ctx: Context, *, stem: Path, init: str = "source") -> Stage:
    """EfficientNet-B0 -> Lite0 (SE removed, ReLU6); init=source keeps its weights, imagenet starts anew."""
    from .lite import to_lite

    model, card = to_lite(_need_model(stage, "lite"), stage.card, init)
    return Stage(card, model=model, record=_sizes(model, card))


@STEPS.register("prune")
def prune_step(stage: Stage, ctx: Context, *, stem: Path, ratio: float = 0.35, scope: str = "global",
               channels: str = "all", steps: int = 1, crops: int = 256, finetune: int = 0, teacher: str = "",
               alpha: float = 0.25, lr: float = 1e-4, batch: int = 16, recipe: str = "") -> Stage:
    """Taylor-ranked structured pruning to `ratio` in `steps` steps (channels=hidden: inside the blocks only),
    fine-tuning `finetune` batches (with `teacher`: distilling) after each step."""
    from .data import labelled_batches
    from .prune import prune

    model = _need_model(stage, "prune")
    card = stage.card
    before = _sizes(model, card)
    rows = ctx.rows("train", crops, seed=1)
    state = {"card": card}

    def between(net, step):
        if finetune > 0:
            state["card"] = _fine_tune(net, state["card"], ctx, stem, f"step{step}", steps=finetune,
                                       teacher=teacher or None, alpha=alpha, lr=lr, batch=batch, recipe=recipe)

    records = prune(model, card.input_size, lambda: labelled_batches(rows, card, 16), ratio=ratio,
                    scope=scope, channels=channels, steps=steps, between_steps=between)
    after = _sizes(model, card)
    record = {**after, "macs_removed": round(1 - after["macs"] / before["macs"], 4),
              "params_removed": round(1 - after["params"] / before["params"], 4), "per_step": records}
    return Stage(state["card"], model=model, record=record)


@STEPS.register("distill")
def distill_step(stage: Stage, ctx: Context, *, stem: Path, teacher: str = "default", alpha: float = 0.25,
                 steps: int = 300, lr: float = 1e-4, batch: int = 16, recipe: str = "") -> Stage:
    """Fine-tune with alpha * BCE(student, teacher) + (1 - alpha) * BCE(student, label)."""
    model = _need_model(stage, "distill")
    card = _fine_tune(model, stage.card, ctx, stem, "train", steps=steps, teacher=teacher, alpha=alpha,
                      lr=lr, batch=batch, recipe=recipe)
    return Stage(card, model=model, record=_sizes(model, card))


@STEPS.register("finetune")
def finetune_step(stage: Stage, ctx: Context, *, stem: Path, steps: int = 300, lr: float = 1e-4,
                  batch: int = 16, recipe: str = "") -> Stage:
    """Fine-tune on the labels alone."""
    model = _need_model(stage, "finetune")
    card = _fine_tune(model, stage.card, ctx, stem, "train", steps=steps, teacher=None, alpha=0.0,
                      lr=lr, batch=batch, recipe=recipe)
    return Stage(card, model=model, record=_sizes(model, card))


def _fine_tune(model, card, ctx: Context, stem: Path, tag: str, *, steps, teacher, alpha, lr, batch, recipe=""):
    from .distill import FineTune, fine_tune

    if ctx.manifest is None:
        raise ConfigError("fine-tuning needs face crops: pass --manifest")
    work = stem.with_name(f"{stem.name}-{tag}")
    # Each fine-tune draws its own crops (the seed picks the subset): iterative pruning sees new data each step.
    options = FineTune(manifest=ctx.manifest, steps=steps, teacher=teacher, alpha=alpha, lr=lr,
                       batch_size=batch, device=ctx.device, seed=zlib.crc32(work.name.encode()) % 100_000,
                       recipe=recipe or None)
    return fine_tune(model, card, options, work)


@STEPS.register("export")
def export_step(stage: Stage, ctx: Context, *, stem: Path, opset: int = 17, check: int = 64,
                tolerance: float = 1e-3, fold: bool = True) -> Stage:
    """PyTorch -> ONNX with the card inside; outputs must agree within `tolerance` (probability).
    fold=false keeps batch norms apart (ONNX Runtime folds them at load): fp16-weights is then lossless."""
    from ..models.predict import TorchBackend, load_backend
    from .export import export_onnx

    model = _need_model(stage, "export")
    path = stem.with_suffix(".onnx")
    sizes = _sizes(model, stage.card)  # kept in the card: ONNX Runtime does not count MACs
    card = export_onnx(model, stage.card, path, opset, fold=fold)
    record = {"opset": opset, "fold": fold, "size_mb": round(path.stat().st_size / 1e6, 3), **sizes}
    if check and ctx.manifest is not None:
        record.update(_check(TorchBackend(model.eval(), "cpu"), load_backend(path)[0], card, ctx, check))
        if record["max_abs_prob_diff"] > tolerance:
            raise ConfigError(f"export: ONNX and PyTorch disagree on real crops (probability off by "
                              f"{record['max_abs_prob_diff']:.2g} > {tolerance}); {path} kept for inspection")
    return Stage(card, onnx=path, record=record)


@STEPS.register("quantize")
def quantize_step(stage: Stage, ctx: Context, *, stem: Path, mode: str = "static", crops: int = 128,
                  method: str = "percentile", check: int = 256, format: str = "qoperator") -> Stage:
    """int8 (static: calibrated on real crops; dynamic), fp16 or fp16-weights (stored in half precision, run in
    float32) ONNX; agreement with the float model measured."""
    from ..models.predict import load_backend
    from .data import crop_images
    from .quantize import quantize

    path = stem.with_suffix(".onnx")
    with tempfile.TemporaryDirectory() as tmp:
        source = stage.onnx
        if source is None:
            from .export import export_onnx

            source = Path(tmp) / "float.onnx"
            export_onnx(_need_model(stage, "quantize"), stage.card, source)
        calibration = None
        if mode == "static":
            calibration = crop_images(ctx.rows("val", crops, seed=2), stage.card)
        card, done = quantize(source, path, stage.card, mode, calibration, method, format)
        record = {**done, "size_mb": round(path.stat().st_size / 1e6, 3)}
        if check and ctx.manifest is not None:
            record.update(_check(load_backend(source)[0], load_backend(path)[0], card, ctx, check))
    return Stage(card, onnx=path, record=record)


def _check(reference, candidate, card: ModelCard, ctx: Context, n: int) -> dict:
    """Agreement on real test crops (never the calibration ones)."""
    from .data import crop_images
    from .export import agreement

    return {"agreement_" + k if k == "crops" else k: v for k, v in
            agreement(reference, candidate, card, crop_images(ctx.rows("test", n, seed=3), card)).items()}
