"""A training run as the server knows it: its owner, config, folder, status, steps and error."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.train_config import TrainConfig

STATES = ("queued", "running", "stopping", "stopped", "done", "failed", "damaged")
RECENT = 20  # steps: the window of a run's current pace (its ETA, its images/s)


@dataclass
class Job:
    id: str
    owner: str
    config: TrainConfig
    run_dir: Path
    status: str = "queued"  # one of STATES
    error: str | None = None
    steps: list = field(default_factory=list)  # per-step stats: step, epoch, loss, lr, images_per_s, time
    total_steps: int | None = None
    samples_png: Path | None = None  # the latest sample grid (its name says when: lab.train)
    submitted: float = field(default_factory=time.time)
    resumes: int = 0
    pid: int | None = None  # of the training process, while it runs
    session: str = ""  # the session that queued it (the per-session cap)
    address: str = ""  # the network address that queued it (the per-address cap; "" for this machine)
    shared: bool = False  # the lecturer shared its controls with the room: anyone may stop and resume it
    note: str | None = None  # why it stopped, when the server stopped it (its time limit)
    interrupted: bool = False  # the server stopped it on its way down: it goes on, first, when the server is back
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def __getstate__(self) -> dict:  # a copy for another process (a cluster's job manager answers from an actor)
        return {k: v for k, v in self.__dict__.items() if k != "_stop"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _stop=threading.Event())

    @property
    def samples_label(self) -> str | None:
        """When the latest sample grid was drawn, from its name: epoch_003.png "after epoch 3", step_000040.png "at
        step 40"."""
        if self.samples_png is None:
            return None
        kind, _, number = self.samples_png.stem.partition("_")
        return f"after epoch {int(number)}" if kind == "epoch" else f"at step {int(number)}"

    @property
    def finished(self) -> bool:
        return self.status in ("stopped", "done", "failed", "damaged")

    def eta_seconds(self) -> float | None:
        """Seconds left at the pace of the last RECENT steps."""
        if self.total_steps is None or len(self.steps) < 2:
            return None
        recent = self.steps[-RECENT:]
        pace = (recent[-1]["time"] - recent[0]["time"]) / max(len(recent) - 1, 1)
        return pace * (self.total_steps - recent[-1]["step"])

    def images_per_s(self) -> float | None:
        """The median rate of the last RECENT steps (one step's rate jumps: an epoch's short last batch)."""
        return statistics.median(s["images_per_s"] for s in self.steps[-RECENT:]) if self.steps else None
