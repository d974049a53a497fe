"""The run's history: history.csv (one row per epoch) and TensorBoard when installed, kept on resume."""

from __future__ import annotations

from pathlib import Path

from ..evaluate.history import read_history as read_history_csv

HISTORY_FILE = "history.csv"
HISTORY_COLUMNS = [
    "epoch", "stage", "stage_epoch", "lr", "train_loss", "val_loss", "val_auc", "val_accuracy",
    "seconds", "images_per_s",
]
TENSORBOARD_KEYS = ("lr", "train_loss", "val_loss", "val_auc", "val_accuracy", "images_per_s")


def read_history(run_dir: str | Path) -> list[dict]:
    """The per-epoch rows of a run (history.csv) with numeric values."""
    return read_history_csv(Path(run_dir) / HISTORY_FILE)


class HistoryLog:
    """Writes history.csv (rank 0 only). On resume, rows after the resumed epoch are dropped."""

    def __init__(self, run_dir: Path, tensorboard: bool):
        self.path = run_dir / HISTORY_FILE
        self.tensorboard_dir = run_dir / "tensorboard" if tensorboard else None
        self._tb = None

    def open(self, resumed_epoch: int | None) -> list[dict]:
        """Start the file; returns the rows kept from before (empty for a fresh run)."""
        import csv

        kept = []
        if resumed_epoch is not None and self.path.is_file():
            kept = [row for row in read_history_csv(self.path) if row["epoch"] <= resumed_epoch]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
            writer.writeheader()
            writer.writerows({k: ("" if row[k] is None else row[k]) for k in HISTORY_COLUMNS} for row in kept)
        if self.tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.tensorboard_dir))
            except ImportError:
                self._tb = None
        return kept

    def append(self, row: dict) -> None:
        import csv

        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=HISTORY_COLUMNS).writerow(
                {k: ("" if row[k] is None else row[k]) for k in HISTORY_COLUMNS}
            )
        if self._tb is not None:
            for key in TENSORBOARD_KEYS:
                if row[key] is not None:
                    self._tb.add_scalar(key, row[key], row["epoch"])
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def summary(row: dict) -> str:
    """One line per epoch for the log."""
    parts = [f"epoch {row['epoch']} ({row['stage']})", f"train loss {row['train_loss']:.4f}"]
    if row["val_loss"] is not None:
        parts.append(f"val loss {row['val_loss']:.4f}")
    if row["val_auc"] is not None:
        parts.append(f"val AUC {row['val_auc']:.4f}")
    if row["val_accuracy"] is not None:
        parts.append(f"val acc {row['val_accuracy']:.4f}")
    parts.append(f"{row['images_per_s']:.1f} img/s")
    return ", ".join(parts)
