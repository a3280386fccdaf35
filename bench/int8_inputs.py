"""What int8 layers keep for the backward pass under gradient checkpointing, at Llama-3.1-8B's widths.

    python bench/int8_inputs.py [--layers 1] [--batch-size 4] [--seq-len 512]

Loads bench/train_throughput.py's random Llama-3.1-8B-shaped model (`--layers` decoder layers) in
int8, adds a LoRA adapter on q/k/v with gradient checkpointing, runs the decoder forward once in
training mode and counts the bytes of int8-layer inputs still alive before the backward pass: with
bitsandbytes' own layers (peft's LoRA on the int8 model as loaded) and with finlora's
(`models.add_lora`, which applies finlora.int8). Inputs shared by several layers (q/k/v, gate/up)
count once. The total is extrapolated to 32 layers at 2 bytes per element, as on a GPU in bf16
(a CPU computes in fp32).
"""

from __future__ import annotations

import argparse
import gc
import weakref
from pathlib import Path

import torch

from finlora import models
from finlora.config import LoraParams

LORA = LoraParams(rank=8, alpha=32, dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj"], variant="lora")


def bitsandbytes_lora(base: Path):
    from peft import LoraConfig, get_peft_model

    model = models.load_base(base, 8)
    model.requires_grad_(False)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    return get_peft_model(model, LoraConfig(r=LORA.rank, lora_alpha=LORA.alpha, lora_dropout=LORA.dropout,
                                            target_modules=LORA.target_modules, task_type="CAUSAL_LM"))


def finlora_lora(base: Path):
    return models.add_lora(models.load_base(base, 8), LORA, gradient_checkpointing=True)


def kept_input_elements(model, ids: torch.Tensor) -> int:
    """Elements of int8-layer inputs alive after a training-mode forward pass."""
    import bitsandbytes as bnb

    inputs: list[weakref.ref] = []

    def remember(_, args):
        inputs.append(weakref.ref(args[0]))

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear8bitLt):
            module.register_forward_pre_hook(remember)
    model.train()
    hidden = model.get_base_model().get_decoder()(input_ids=ids).last_hidden_state
    gc.collect()
    alive = {tensor.data_ptr(): tensor.numel() for tensor in (ref() for ref in inputs) if tensor is not None}
    kept = sum(alive.values())
    del hidden
    return kept


def main() -> None:
    from train_throughput import random_llama

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=Path("models/base"), help="lends its tokenizer")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    args = parser.parse_args()

    base = random_llama(args.base, args.layers)
    ids = torch.randint(0, 32000, (args.batch_size, args.seq_len), generator=torch.Generator().manual_seed(0))
    print(f"Llama-3.1-8B widths, {args.layers} layer(s), int8, LoRA r8 q/k/v, gradient checkpointing, "
          f"batch {args.batch_size} x {args.seq_len}")
    print("| int8 layers | kept per layer (MB, bf16) | extrapolated to 32 layers (GB) |\n|---|---|---|")
    for name, build in (("bitsandbytes' own", bitsandbytes_lora), ("finlora.int8", finlora_lora)):
        model = build(base)
        per_layer = kept_input_elements(model, ids) * 2 / args.layers
        print(f"| {name} | {per_layer / 1e6:.1f} | {per_layer * 32 / 1e9:.2f} |")
        del model
        gc.collect()


if __name__ == "__main__":
    main()
