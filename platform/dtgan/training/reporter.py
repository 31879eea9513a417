"""Where the loop's metrics go: a Reporter base class (the plug-in point for Ray and MLflow) and the defaults."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from dtgan import keys

# The few terms the progress bar shows (all terms go to metrics.jsonl).
PROGRESS_TERMS = {
    keys.train_key("d/latent/total"): "D",
    keys.train_key("g/latent/total"): "G",
    keys.train_key("g/latent/cyc"): "cyc",
    keys.train_key("g/latent/sty"): "sty",
    keys.TRAIN_IMAGES_PER_S: "img/s",
}


class Reporter:
    """Receives ``report(step, metrics, checkpoint_path)`` from every rank; subclasses decide what to do."""

    def report(self, step: int, metrics: dict[str, float], checkpoint_path: str | None) -> None:
        raise NotImplementedError

    def before_checkpoint(self, step: int, metrics: dict[str, float]) -> None:
        """Called before the checkpoint of ``step`` is written, with the metrics ``report`` will then receive.

        A reporter that buffers makes these and all earlier metrics durable here: a process lost between the
        checkpoint appearing and ``report`` must not resume from a step whose metrics were never written.
        The default does nothing (``report`` writes them).
        """

    def close(self) -> None:
        """Called once when the loop ends, normally or not."""


class NullReporter(Reporter):
    """For ranks other than 0 when no reporter is given."""

    def report(self, step: int, metrics: dict[str, float], checkpoint_path: str | None) -> None:
        pass


class ConsoleReporter(Reporter):
    """A tqdm progress bar with the main losses and images/s, and one JSON line per report in metrics.jsonl."""

    def __init__(
        self, metrics_path: str | Path, total_steps: int, start_step: int = 0, show_progress: bool = True
    ):
        self.metrics_path = Path(metrics_path)
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        self._bar = tqdm(
            total=total_steps, initial=start_step, unit="it", dynamic_ncols=True, disable=not show_progress
        )
        self._shown = start_step

    def report(self, step: int, metrics: dict[str, float], checkpoint_path: str | None) -> None:
        record = {"step": step, **metrics}
        if checkpoint_path is not None:
            record["checkpoint_path"] = checkpoint_path
        with self.metrics_path.open("a") as f:  # appending whole lines: a crash loses at most the last line
            f.write(json.dumps(record) + "\n")
        self._bar.set_postfix(
            {short: f"{metrics[key]:.3g}" for key, short in PROGRESS_TERMS.items() if key in metrics},
            refresh=False,
        )
        self._bar.update(step - self._shown)
        self._shown = step

    def close(self) -> None:
        self._bar.close()
