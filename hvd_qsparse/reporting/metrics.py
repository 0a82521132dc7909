"""Per-step metrics of the training job: JSON lines or CSV, and TensorBoard as an option.

Rank 0 writes one row per step: loss, this rank's bits sent and received for the step and in
total (``comm.accounting``), seconds in
compression, communication and the whole step, wall time since the start; rows at evaluation
steps add the score (test accuracy, or a language model's validation loss) and every rank's
total bits. ``python -m hvd_qsparse.cli plot``
reads these files.
"""
import csv
import json
from pathlib import Path
from typing import Optional

FIELDS = ("step", "epoch", "loss", "bits", "bits_total", "bits_received", "bits_received_total", "compress_s", "communicate_s", "step_s", "wall_s",
          "test_accuracy", "val_loss", "bits_per_rank")
FORMATS = (".jsonl", ".csv")


def check_path(path: str) -> str:
    """A metrics path ending in .jsonl or .csv, or a ValueError naming both."""
    if Path(path).suffix not in FORMATS:
        raise ValueError(f"--metrics must end in {' or '.join(FORMATS)} (the file format), got {path!r}")
    return path


class MetricsLog:
    """Writes rows to ``path`` (format from its suffix) and, optionally, TensorBoard scalars.

    Args:
        path: ``*.jsonl`` or ``*.csv``; parent folders are created.
        tensorboard_dir: a folder for ``torch.utils.tensorboard`` event files, or None.
        meta: the run's settings, written as the first JSON line (JSON lines only).
    """

    def __init__(self, path: str, tensorboard_dir: Optional[str] = None, meta: Optional[dict] = None):
        self.path = Path(check_path(path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", newline="")
        self._csv = None
        if self.path.suffix == ".csv":
            self._csv = csv.DictWriter(self._fh, fieldnames=FIELDS, extrasaction="ignore")
            self._csv.writeheader()
        elif meta is not None:
            self._fh.write(json.dumps({"meta": meta}) + "\n")
        self._tb = _summary_writer(tensorboard_dir) if tensorboard_dir else None

    def log(self, row: dict) -> None:
        """Append one step's row (keys from ``FIELDS``; missing ones stay empty), flushed at once,
        so a run killed at any point keeps every completed step's row."""
        if self._csv is not None:
            self._csv.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
        else:
            self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()
        if self._tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, row["step"])

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def _summary_writer(folder: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ValueError("--tensorboard needs the tensorboard package (pip install tensorboard)") from err
    return SummaryWriter(log_dir=folder)


def read_metrics(path: str) -> tuple:
    """``(meta, rows)`` of a metrics file written by ``MetricsLog`` (meta is {} for CSV)."""
    path = Path(path)
    with open(path, newline="") as fh:
        if path.suffix == ".csv":
            rows = [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]
            return {}, rows
        lines = [json.loads(line) for line in fh if line.strip()]
    meta = lines[0]["meta"] if lines and "meta" in lines[0] else {}
    return meta, [line for line in lines if "meta" not in line]


def _parse_cell(text: str):
    if text == "":
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class StepRecorder:
    """Turns the optimizer's per-step counters into metric rows (every rank calls it; rank 0
    writes). Evaluation rows gather every rank's total bits, a collective, so every rank must
    call ``after_step`` after every step.

    Args:
        opt: the wrapped optimizer (``bits``, ``step_count``, ``timer``).
        log: where rank 0 writes, None on the other ranks.
        evaluate: returns rank 0's current score.
        allgather: ``hvd.allgather_object``.
        eval_every: steps between evaluation rows.
        metric: the row's key for the score (``test_accuracy`` or ``val_loss``).
    """

    def __init__(self, opt, log: Optional[MetricsLog], evaluate, allgather, eval_every: int,
                 metric: str = "test_accuracy"):
        self.opt, self.log, self.evaluate, self.allgather = opt, log, evaluate, allgather
        self.eval_every, self.metric = eval_every, metric

    def after_step(self, epoch: int, loss: float, step_seconds: float, wall_seconds: float) -> None:
        """Record the step just taken (``step_count - 1``)."""
        step = self.opt.step_count - 1
        phases = self.opt.timer.pop()
        evaluating = (step + 1) % self.eval_every == 0
        per_rank = self.allgather(self.opt.bits.total_sent, name=f"metrics.bits.{step}") if evaluating else None
        if self.log is None:
            return
        history = self.opt.bits.history
        last = history[-1] if history and history[-1].step == step else None
        row = {"step": step, "epoch": epoch, "loss": loss, "bits": last.sent if last else 0,
               "bits_total": self.opt.bits.total_sent, "bits_received": last.received if last else 0,
               "bits_received_total": self.opt.bits.total_received, "compress_s": phases.get("compress", 0.0),
               "communicate_s": phases.get("communicate", 0.0), "step_s": step_seconds, "wall_s": wall_seconds}
        if evaluating:
            row.update({self.metric: self.evaluate(), "bits_per_rank": per_rank})
        self.log.log(row)
