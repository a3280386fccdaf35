"""bitsandbytes int8 layers that keep nothing of their input for the backward pass.

bitsandbytes' int8 matmul stores its input on the autograd context as a plain attribute, to
compute the weight's gradient. Under LoRA the int8 weight is frozen, so that input is never
used; and since it is not stored through `save_for_backward`, gradient checkpointing cannot
drop it either: every int8 layer's input stays alive until the backward pass reaches it (109 MB
per decoder layer of Llama-3.1-8B at batch 4 x 512, bench/int8_inputs.py). The input's gradient
needs only the weight, so the layers below save nothing.
"""

from __future__ import annotations

import bitsandbytes as bnb
import torch


def free_int8_inputs(model) -> None:
    """Make every frozen bitsandbytes int8 linear layer of `model` keep nothing of its input
    for the backward pass."""
    for module in model.modules():
        if type(module) is bnb.nn.Linear8bitLt and not any(p.requires_grad for p in module.parameters()):
            module.__class__ = FrozenLinear8bitLt


class FrozenLinear8bitLt(bnb.nn.Linear8bitLt):
    """A frozen int8 layer: the same forward; the backward gives the input's gradient from the weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _InputGradOnly.apply(x, self)
        return super().forward(x)


class _InputGradOnly(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, layer: FrozenLinear8bitLt) -> torch.Tensor:
        ctx.layer = layer
        ctx.input_dtype = x.dtype
        return bnb.nn.Linear8bitLt.forward(layer, x)  # runs without building a graph

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        state = ctx.layer.state  # the int8 weight and its row scales, as bitsandbytes' backward uses them
        weight = state.CB.to(ctx.input_dtype, copy=True).mul_(state.SCB.unsqueeze(1) / 127.0)
        return grad_output.to(ctx.input_dtype) @ weight, None
