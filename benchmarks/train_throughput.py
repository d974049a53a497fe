"""Training throughput (images per second) of a backbone at a given input size, on whatever device is here.

    .venv/bin/python benchmarks/train_throughput.py [--runs efficientnet_lite0:224:32,efficientnet_b4:380:8]
        [--steps 10] [--warmup 2] [--device auto] [--precision auto] [--threads 1,2] [--channels-last]
        [--data MANIFEST [--loader-only]] [--workers 4] [--out benchmarks/results/train_throughput_<device>.md]

Each run times full optimiser steps (forward, backward, AdamW step) of the model built by the training
code, on random input (the model alone) or, with --data, on batches from a face-crop manifest through the
real dataset (JPEG decode, letterbox, "strong" augmentation, normalisation) in --workers processes.
Warm-up steps (memory allocation, cuDNN / oneDNN kernel selection) are not timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from machine import describe_machine  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]


def parse_runs(text: str) -> list[tuple[str, int, int]]:
    runs = []
    for item in text.split(","):
        arch, size, batch = item.split(":")
        runs.append((arch, int(size), int(batch)))
    return runs


def batches_from_manifest(manifest: str, size: int, batch: int, workers: int, spec):
    from torch.utils.data import DataLoader

    from dfdetect.data.augment import build_augmentation
    from dfdetect.data.dataset import FaceCropDataset, split_rows, worker_init
    from dfdetect.data.manifest import read_manifest

    frame = read_manifest(manifest)
    rows = split_rows(frame, "train") if (frame["split"] != "").any() else frame
    ds = FaceCropDataset.from_manifest(rows, size=size, mean=spec.mean, std=spec.std,
                                       augment=build_augmentation("strong", size))
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                        worker_init_fn=worker_init, pin_memory=True, persistent_workers=workers > 0)
    while True:
        for images, labels, _ in loader:
            yield images, labels


def random_batches(size: int, batch: int):
    import torch

    images = torch.randn(batch, 3, size, size)
    labels = torch.randint(0, 2, (batch,)).float()
    while True:
        yield images, labels


def measure(arch: str, size: int, batch: int, steps: int, warmup: int, device, precision: str,
            channels_last: bool, data: str | None, workers: int, loader_only: bool = False) -> dict:
    import torch

    from dfdetect.models import create_model
    from dfdetect.train.runtime import autocast_dtype as _autocast_dtype, precision_name

    torch.manual_seed(0)
    model = create_model(arch, pretrained=None, num_classes=1).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = _autocast_dtype(precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    source = batches_from_manifest(data, size, batch, workers, model.spec) if data else random_batches(size, batch)

    def step():
        images, labels = next(source)
        if loader_only:
            return
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        if channels_last:
            images = images.to(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(images).float(), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"arch": arch, "size": size, "batch": batch, "precision": precision_name(dtype),
            "channels_last": channels_last, "threads": torch.get_num_threads(), "steps": steps,
            "images_per_s": steps * batch / seconds, "s_per_step": seconds / steps, "peak_gib": peak,
            "input": (f"manifest, {workers} workers" if data else "random tensors")
            + (" (loader only)" if loader_only else "")}


GPU_NOTE = (
    "GPU figures need a run on a GPU machine, e.g. `python benchmarks/train_throughput.py --device cuda "
    "--runs efficientnet_lite0:224:256,efficientnet_b4:380:64 --steps 30 --channels-last` (model alone) and "
    "`... --data MANIFEST --workers 16 --loader-only` (how fast the CPU side can feed it); they go to "
    "train_throughput_cuda.md."
)


def markdown(rows: list[dict], machine: str, device: str, command: str, title: bool = True) -> str:
    lines = [f"# Training throughput ({device})", ""] if title else []
    lines += [
        f"Measured {date.today().isoformat()} on {machine}.", "",
        f"Command: `{command}`", "",
        "Full optimiser steps (forward, backward, AdamW) on the training code's models; warm-up steps not timed.",
        "", "| Model | Input | Batch | Precision | channels_last | Threads | Input data | Steps | Images/s | s/step |"
        + (" Peak GiB |" if any(r["peak_gib"] for r in rows) else ""),
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if any(r["peak_gib"] for r in rows) else ""),
    ]
    for r in rows:
        line = (f"| {r['arch']} | {r['size']} | {r['batch']} | {r['precision']} | {r['channels_last']} | "
                f"{r['threads']} | {r['input']} | {r['steps']} | {r['images_per_s']:.1f} | {r['s_per_step']:.3f} |")
        if r["peak_gib"] is not None:
            line += f" {r['peak_gib']:.1f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="efficientnet_lite0:224:32,efficientnet_b4:380:8",
                        help="comma-separated ARCH:SIZE:BATCH")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--threads", default="", help="comma-separated torch intra-op thread counts to try (CPU)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--data", help="a face-crop manifest: time the real input pipeline too")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--loader-only", action="store_true",
                        help="with --data: time the input pipeline alone (how fast the CPU can feed a GPU)")
    parser.add_argument("--out", help="Markdown file (default: benchmarks/results/train_throughput_<device>.md)")
    parser.add_argument("--append", action="store_true", help="add a section to --out instead of replacing it")
    args = parser.parse_args(argv)

    import torch

    from dfdetect.devices import torch_device as _pick_device

    device = _pick_device(args.device)
    machine = describe_machine()
    threads = [int(t) for t in args.threads.split(",") if t] or [torch.get_num_threads()]
    rows = []
    for arch, size, batch in parse_runs(args.runs):
        for count in threads:
            torch.set_num_threads(count)
            row = measure(arch, size, batch, args.steps, args.warmup, device, args.precision, args.channels_last,
                          args.data, args.workers, args.loader_only)
            rows.append(row)
            print(f"{arch} {size}px batch {batch} {row['precision']} threads {count}: "
                  f"{row['images_per_s']:.1f} images/s ({row['s_per_step']:.3f} s/step)", file=sys.stderr)
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"train_throughput_{device.type}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/train_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.append and out.is_file():
        out.write_text(out.read_text() + "\n" + markdown(rows, machine, device.type, command.strip(), title=False))
    else:
        text = markdown(rows, machine, device.type, command.strip())
        out.write_text(text + ("\n" + GPU_NOTE + "\n" if device.type == "cpu" else ""))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
