"""`dfdetect <command>`: each command lives in dfdetect/commands/<name>.py with
`add_arguments(parser)` and `run(args) -> int` (the exit status)."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from . import __version__

COMMANDS = {
    "scan": "scan videos and images for face-manipulation deepfakes",
    "sample": "write the bundled sample video (a public-domain face) and print its path",
    "index": "index a dataset folder (DFDC, FF++, Celeb-DF, image folders) into a manifest",
    "pool": "join the manifests of several sources into one training pool with a grouped split",
    "extract": "extract face crops from an indexed dataset with a paper's pipeline",
    "train": "train a model from a YAML recipe",
    "evaluate": "evaluate a checkpoint on a manifest of face crops",
    "calibrate": "refit a model's temperature and thresholds on a manifest split, into a new checkpoint",
    "average": "average the weights of models fine-tuned from one start (a model soup), into a new checkpoint",
    "compare": "compare trained runs in one table",
    "models": "list the models usable by name, with their headline figures",
    "serve": "serve the scan over HTTP: an API and a web page",
    "results": "summarise, filter and export a results database written by `scan --db`",
    "compress": "make a model light for CPUs: Lite conversion, pruning, distillation, ONNX export, int8/fp16",
    "bench-model": "size, MACs, CPU latency and accuracy of models side by side in one table",
}


# Commands whose numpy work is small matrix products (resizing frames and crops) beside video decoding and ONNX
# Runtime: there OpenBLAS's threads gain nothing, and their busy-waiting takes the cores from the other two.
SCANNING_COMMANDS = ("scan", "serve")


def _single_threaded_blas() -> None:
    """One OpenBLAS thread unless the user chose otherwise; read when numpy loads, so set before any import of it
    (a process that loaded numpy already keeps its threads). The portrait shared clip, whose frames are resized by
    matrix products, scanned in 1.90 s with one thread against 2.24 s with two (benchmarks/results/light_scan.md)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """Only the selected command's module is imported, so one command's dependencies never slow another."""
    parser = argparse.ArgumentParser(prog="dfdetect", description="Detect face-manipulation deepfakes.")
    parser.add_argument("--version", action="version", version=f"dfdetect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            module = importlib.import_module(f"dfdetect.commands.{name.replace('-', '_')}")
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    if selected is not None and selected not in COMMANDS:
        return _unknown_command(selected)
    if selected in SCANNING_COMMANDS:
        _single_threaded_blas()
    try:
        args = build_parser(selected if selected in COMMANDS else None).parse_args(argv)
    except ModuleNotFoundError as exc:
        return _missing(exc, selected)
    from .errors import DfdetectError

    previous = _stop_on_sigterm()
    try:
        return int(args._run(args) or 0)
    except DfdetectError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        return _missing(exc, selected)
    except Terminated:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _missing(exc: ModuleNotFoundError, command: str | None) -> int:
    """A package the install left out: one line naming the extra that brings it (a real bug re-raises)."""
    from .extras import missing_message

    message = missing_message(exc.name or "", f"`dfdetect {command}`" if command else None)
    if message is None:
        raise exc
    print(f"error: {message}", file=sys.stderr)
    return 2


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, a job scheduler, a container stop) takes the same path as Ctrl-C, so that finished
    results are written and workers are shut down."""


def _stop_on_sigterm():
    def stop(signum, frame):
        raise Terminated()

    try:
        return signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (embedded use): leave the signal alone
        return None


def _unknown_command(name: str) -> int:
    import difflib

    close = difflib.get_close_matches(name, COMMANDS, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    print(f"dfdetect: error: unknown command '{name}'; {hint}commands: {', '.join(COMMANDS)}", file=sys.stderr)
    return 2


def one_line(exc: Exception) -> str:
    """The message a person acts on. An error raised in a DataLoader worker arrives with the worker's
    traceback in its text; its last line is the original one-line message."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and ": " in lines[-1]:
        return lines[-1].split(": ", 1)[1]
    return lines[-1] if lines else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
