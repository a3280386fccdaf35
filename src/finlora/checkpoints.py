"""Resumable DeepSpeed checkpoints of a training, and the fingerprint that ties one to its run."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from finlora import models
from finlora.batching import Encoded
from finlora.config import Params
from finlora.validation import BestStep, Validated


def run_fingerprint(params: Params, base_dir: Path, encoded: list[Encoded], world: int) -> str:
    """A checkpoint only resumes the very same run: data, model, settings and layout."""
    data = hashlib.sha256(json.dumps([[e.input_ids, e.labels] for e in encoded]).encode()).hexdigest()
    settings = [asdict(params.lora), asdict(params.quant), asdict(params.train), params.model.chat_template,
                models.base_fingerprint(base_dir), data, world]
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


class Checkpoints:
    """DeepSpeed checkpoints of the trainable weights, optimizer, schedule and RNG, kept outside
    DVC's outputs (DVC deletes those before it reruns a stage) and removed once training ends."""

    def __init__(self, folder: Path, fingerprint: str):
        self.folder, self.fingerprint = folder, fingerprint

    def resume(self, engine, best: BestStep) -> tuple[list[tuple[float, float]], list[Validated]]:
        """The (loss, lr) history and the validations of the checkpointed run, its weights,
        optimizer and RNG loaded and its best step put into `best`; nothing where no checkpoint
        of this run is."""
        marker = self.folder / "fingerprint"
        if not marker.is_file() or marker.read_text() != self.fingerprint:
            return [], []
        _, state = engine.load_checkpoint(str(self.folder), load_module_strict=False)
        if not state:
            return [], []
        torch.set_rng_state(state["rng"])
        random.setstate(state["python_rng"])
        print(f"resuming from the checkpoint at step {len(state['history'])}")
        best.best = Validated(**state["best"]) if state["best"] else None
        best.weights = state["best_weights"]
        return [tuple(item) for item in state["history"]], [Validated(**v) for v in state["validations"]]

    def save(self, engine, step: int, history: list[tuple[float, float]], validations: list[Validated],
             best: BestStep) -> None:
        import torch.distributed as dist

        state = {"history": history, "validations": [asdict(v) for v in validations],  # plain types, for torch.load
                 "best": asdict(best.best) if best.best else None, "best_weights": best.weights,
                 "rng": torch.get_rng_state(), "python_rng": random.getstate()}
        engine.save_checkpoint(str(self.folder), tag=f"step{step}", client_state=state,
                               exclude_frozen_parameters=True)
        if not dist.is_initialized() or dist.get_rank() == 0:
            (self.folder / "fingerprint").write_text(self.fingerprint)
            for old in self.folder.glob("step*"):
                if old.name != f"step{step}":
                    shutil.rmtree(old, ignore_errors=True)

    def clear(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
        if not dist.is_initialized() or dist.get_rank() == 0:
            shutil.rmtree(self.folder, ignore_errors=True)
