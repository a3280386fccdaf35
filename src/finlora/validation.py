"""Held-out validation during training, and keeping the adapter of the best validated step."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from finlora.batching import Encoded, collate, to_device
from finlora.loss import answer_logits
from finlora.runtime import all_reduce


@dataclass
class Validated:
    step: int
    loss: float  # mean cross-entropy per answer token
    accuracy: float  # share of examples answered exactly, token for token


def validate(model, examples: list[Encoded], batch_size: int, pad_id: int, rank: int, world: int) -> tuple[float, float]:
    """The mean answer-token loss over held-out examples, and the share of them answered exactly:
    every answer token is the model's most likely token after the gold tokens before it, which is
    when greedy decoding writes the answer token for token. One forward pass, no generation."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, answer tokens, exact answers
    mine = examples[rank::world]
    with torch.no_grad():
        for start in range(0, len(mine), batch_size):
            batch = to_device(collate(mine[start:start + batch_size], pad_id), device)
            logits = answer_logits(model, batch)
            targets = batch["answer_targets"]
            rows, width = batch["input_ids"].shape
            misses = torch.zeros(rows, device=device).index_add_(
                0, batch["answer_positions"] // width, (logits.argmax(dim=-1) != targets).float())
            totals += torch.tensor([F.cross_entropy(logits.float(), targets, reduction="sum").item(),
                                    targets.numel(), int((misses == 0).sum())], dtype=torch.float64)
    model.train(was_training)
    loss_sum, tokens, exact = all_reduce(totals).tolist()
    return loss_sum / tokens, exact / len(examples)


class BestStep:
    """The validated step with the best accuracy (the lower loss breaks a tie) and, when the
    adapter of that step is to be saved, a copy of its trainable weights."""

    def __init__(self, keep_weights: bool):
        self.keep_weights = keep_weights
        self.best: Validated | None = None
        self.weights: dict[str, torch.Tensor] = {}

    def offer(self, validated: Validated, model) -> None:
        if self.best is None or (validated.accuracy, -validated.loss) > (self.best.accuracy, -self.best.loss):
            self.best = validated
            if self.keep_weights:
                self.weights = {name: parameter.detach().to("cpu", copy=True)
                                for name, parameter in model.named_parameters() if parameter.requires_grad}

    def restore(self, model) -> None:
        """Put the best step's weights back into `model` (nothing to do without kept weights)."""
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name, weight in self.weights.items():
                parameters[name].copy_(weight)
