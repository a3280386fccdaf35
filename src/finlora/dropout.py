"""LoRA dropout whose mask is drawn from float32 uniforms, for training on a CPU.

peft's LoRA layers drop out their input with `nn.Dropout`. On a CPU, torch draws that mask with
`bernoulli_`, one element at a time at double precision: 2.0 ms for one q/k/v input of the
default model at batch 8 (8 x 86 x 576), where float32 uniforms take 0.9 ms. With dropout on
q, k and v of 30 layers, torch's mask is about a tenth of a CPU training step
(bench/train_step_parts.py --profile). The mask here keeps each element with the same
probability 1 - p and scales it by 1 / (1 - p), as torch's dropout does. On a GPU, torch's fused
dropout is faster than this, so training there keeps it.
"""

from __future__ import annotations

import torch
from torch import nn


class UniformMaskDropout(nn.Dropout):
    """nn.Dropout with its keep-mask drawn as `uniform >= p` in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        scaled_mask = torch.rand(x.shape, device=x.device).ge_(self.p).mul_(1 / (1 - self.p))
        return x * scaled_mask.to(x.dtype)


def use_uniform_mask_dropout(model: nn.Module) -> int:
    """Give every LoRA dropout of `model` (peft's `lora_dropout` modules) the float32 mask;
    returns how many were changed."""
    dropouts = [module for name, module in model.named_modules()
                if ".lora_dropout." in name and type(module) is nn.Dropout]
    for dropout in dropouts:
        dropout.__class__ = UniformMaskDropout
    return len(dropouts)
