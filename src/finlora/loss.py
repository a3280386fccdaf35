"""The answer-only loss: the LM head runs on the answer tokens alone."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from finlora import packing


def answer_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The logits at the answer positions, one row per answer token in `answer_positions` order.

    The LM head runs on the answer positions alone instead of on every position: with a large
    vocabulary the full logits tensor is most of the step's memory and a good part of its time.
    """
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = causal_lm.get_decoder()
    if packing.is_packed(batch):
        hidden = packing.packed_hidden_states(decoder, batch)
    else:
        hidden = decoder(input_ids=batch["input_ids"], use_cache=False).last_hidden_state
    answers = hidden.flatten(0, 1).index_select(0, batch["answer_positions"])
    return causal_lm.get_output_embeddings()(answers)


def answer_loss_sum(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the answer tokens, and how many there were."""
    logits = answer_logits(model, batch)
    targets = batch["answer_targets"]
    return F.cross_entropy(logits.float(), targets, reduction="sum"), targets.numel()

