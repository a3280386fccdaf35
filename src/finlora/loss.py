"""The answer-only loss: the LM head runs on the answer tokens alone."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from finlora import packing


def answer_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The logits at the answer positions, one row per answer token in `answer_positions` order.

    The LM head runs on the answer positions alone instead of on every position: with a large
    vocabulary the full logits tensor is most of the step's memory and a good part of its time.
    """
    causal_lm = _causal_lm(model)
    hidden = causal_lm.get_decoder()(input_ids=batch["input_ids"], use_cache=False).last_hidden_state
    return _logits_at(causal_lm, hidden, batch["answer_positions"])


def answer_loss_sum(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the answer tokens, and how many there were."""
    causal_lm, targets = _causal_lm(model), batch["answer_targets"]
    if packing.is_packed(batch):
        return packing.packed_loss_sum(causal_lm, batch, functools.partial(_loss_sum, causal_lm)), targets.numel()
    return _summed_cross_entropy(answer_logits(model, batch), targets), targets.numel()


def _loss_sum(causal_lm, hidden: torch.Tensor, positions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return _summed_cross_entropy(_logits_at(causal_lm, hidden, positions), targets)


def _summed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), targets, reduction="sum")


def _logits_at(causal_lm, hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    return causal_lm.get_output_embeddings()(hidden.flatten(0, 1).index_select(0, positions))


def _causal_lm(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model
