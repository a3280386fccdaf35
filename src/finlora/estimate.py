"""Peak memory of training and inference, estimated from a model's config.json alone (no weights),
broken down as the LoRA vs QLoRA study's Tables 2-3 break it down: weights by dtype (NF4 storage
and its quantisation constants included), adapter, gradients, optimizer states, activations (with
and without gradient checkpointing), logits, KV cache.

The counts follow what this pipeline's training loop keeps, per token of a batch:
- a decoder layer saves about 8H + 3I values for its backward pass (H hidden, I intermediate
  size: the norms' inputs, q/k/v and the attention output, and the MLP's gate, up and activation);
- each LoRA target adds its dropped-out input and the dropout mask (1.5 x its input width) and
  the r-wide output of A;
- bitsandbytes' 4-bit layers also keep their inputs (3H + I: q/k/v share one, o, gate/up share
  one, down); finlora's int8 layers keep nothing (finlora.int8);
- with gradient checkpointing only each layer's input (H) is kept, plus one layer recomputed;
- the LM head runs on answer positions only: logits for those, in float32, and their gradient.
Validated against measured GPU peaks (tests/test_estimate.py, README "Memory before you start").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from finlora import layout
from finlora.errors import FinloraError

if TYPE_CHECKING:
    from finlora.config import Params

GB = 1e9
NF4_BLOCK, DOUBLE_QUANT_BLOCK = 64, 256  # bitsandbytes' NF4 block sizes (double quantisation on)
ADAM_STATES = 2  # exp_avg and exp_avg_sq, float32


@dataclass(frozen=True)
class Shape:
    """What memory depends on in a decoder-only transformer's config.json."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied_embeddings: bool

    @classmethod
    def from_config(cls, config: dict) -> "Shape":
        try:
            return cls(config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"],
                       config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"],
                       config["vocab_size"], bool(config.get("tie_word_embeddings", False)))
        except KeyError as missing:
            raise FinloraError(f"config.json has no {missing.args[0]}",
                               hint="the estimator reads Llama-style configs (hidden_size, intermediate_size, ...)") from None

    @property
    def kv_width(self) -> int:
        return self.kv_heads * (self.hidden // self.heads)

    def linears(self) -> dict[str, tuple[int, int]]:
        """(input, output) width of each linear layer of one decoder layer."""
        h, i, kv = self.hidden, self.intermediate, self.kv_width
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def targets(self, names: list[str]) -> dict[str, tuple[int, int]]:
        linears = self.linears()
        if names == ["all-linear"]:
            return linears
        unknown = [name for name in names if name not in linears]
        if unknown:
            raise FinloraError(f"lora.target_modules: {unknown[0]} is not a linear layer the estimator knows",
                               hint=f"one of {', '.join(linears)}, or all-linear")
        return {name: linears[name] for name in names}


@dataclass(frozen=True)
class Setting:
    bits: int  # 4 | 8 | 16: the frozen base weights
    rank: int
    targets: list[str]
    batch_size: int  # per process
    seq_len: int  # tokens per example
    gradient_checkpointing: bool
    zero_stage: int = 0
    processes: int = 1
    answer_tokens: int = 8  # per example: where the LM head and the loss run
    dtype_bytes: int = 2  # bf16 on GPUs; 4 where the pipeline computes in float32 (CPUs)
    head_labels: int = 0  # a classification head's outputs (model.head: classify); 0: the LM head answers


def weights(shape: Shape, bits: int, dtype_bytes: int, head_labels: int = 0) -> dict[str, float]:
    """Bytes of the base model: the decoder's linear layers at `bits`, embeddings, LM head (none
    for a classifier) and norms in the compute dtype."""
    linear_params = shape.layers * sum(i * o for i, o in shape.linears().values())
    out_rows = shape.layers * sum(o for _, o in shape.linears().values())
    other = base_params(shape, head_labels) - linear_params
    parts = {"embeddings, norms" + ("" if head_labels else ", LM head"): other * dtype_bytes}
    if bits == 16:
        parts["linear layers (16-bit)"] = linear_params * dtype_bytes
    elif bits == 8:
        parts["linear layers (int8)"] = linear_params
        parts["int8 row scales"] = out_rows * 4
    else:
        parts["linear layers (NF4)"] = linear_params / 2
        parts["NF4 constants"] = linear_params / NF4_BLOCK + 4 * linear_params / (NF4_BLOCK * DOUBLE_QUANT_BLOCK)
    return parts


def adapter_params(shape: Shape, rank: int, targets: list[str]) -> int:
    return shape.layers * sum(rank * (i + o) for i, o in shape.targets(targets).values())


def trainable_params(shape: Shape, rank: int, targets: list[str], head_labels: int = 0) -> int:
    """What training updates: LoRA's A and B on every target, and a classification head
    (hidden x labels, no bias) in full."""
    return adapter_params(shape, rank, targets) + shape.hidden * head_labels


def base_params(shape: Shape, head_labels: int = 0) -> int:
    """The base model's parameters: a causal LM's, or a sequence classifier's (no LM head; its
    new head is counted with what trains)."""
    lm_head = 0 if head_labels or shape.tied_embeddings else shape.vocab * shape.hidden
    return (shape.layers * sum(i * o for i, o in shape.linears().values()) + shape.vocab * shape.hidden + lm_head
            + (2 * shape.layers + 1) * shape.hidden)


def activations_per_token(shape: Shape, setting: Setting) -> tuple[float, float]:
    """(bytes kept per token between forward and backward, bytes of one layer recomputed)."""
    h, i = shape.hidden, shape.intermediate
    layer = 8 * h + 3 * i
    layer += sum(1.5 * d_in + setting.rank for d_in, _ in shape.targets(setting.targets).values())
    if setting.bits == 4:
        layer += 3 * h + i
    layer_bytes = layer * setting.dtype_bytes
    if setting.gradient_checkpointing:
        return shape.layers * h * setting.dtype_bytes, layer_bytes
    return shape.layers * layer_bytes, 0.0


def training(shape: Shape, setting: Setting) -> dict[str, float]:
    """Peak bytes of one training process, part by part. ZeRO splits the optimizer states (stage
    1) and the gradients (stage 2) of the adapter over the processes."""
    parts = weights(shape, setting.bits, setting.dtype_bytes, setting.head_labels)
    adapter = trainable_params(shape, setting.rank, setting.targets, setting.head_labels)
    split = max(1, setting.processes)
    parts["adapter (float32)"] = adapter * 4
    parts["gradients (float32)"] = adapter * 4 / (split if setting.zero_stage >= 2 else 1)
    parts["optimizer states (AdamW, float32)"] = ADAM_STATES * adapter * 4 / (split if setting.zero_stage >= 1 else 1)
    tokens = setting.batch_size * setting.seq_len
    kept, recomputed = activations_per_token(shape, setting)
    checkpointing = "with checkpointing" if setting.gradient_checkpointing else "no checkpointing"
    parts[f"activations ({checkpointing})"] = tokens * (kept + recomputed)
    if setting.head_labels:
        parts["head logits (float32, and gradient)"] = 2 * setting.batch_size * setting.head_labels * 4
    else:
        parts["logits on answer positions (float32, and gradient)"] = (
            2 * setting.batch_size * setting.answer_tokens * shape.vocab * 4)
    return parts


def inference(shape: Shape, bits: int, rank: int, targets: list[str], batch_size: int, prompt_tokens: int,
              new_tokens: int, dtype_bytes: int = 2) -> dict[str, float]:
    """Peak bytes of generation: weights, the adapter, the KV cache of the whole batch, and the
    last position's logits."""
    parts = weights(shape, bits, dtype_bytes)
    parts["adapter"] = adapter_params(shape, rank, targets) * dtype_bytes
    tokens = batch_size * (prompt_tokens + new_tokens)
    parts["KV cache"] = 2 * shape.layers * shape.kv_width * tokens * dtype_bytes
    parts["logits (float32)"] = batch_size * shape.vocab * 4
    return parts


def total(parts: dict[str, float]) -> float:
    return sum(parts.values())


def largest_batch(shape: Shape, setting: Setting, available: float) -> int:
    """The largest batch size per process whose training estimate fits `available` bytes (0: none)."""
    batch = 0
    while batch < 4096 and total(training(shape, replace(setting, batch_size=batch + 1))) <= available:
        batch += 1
    return batch


def setting_for(params: Params, dtype_bytes: int = 2, answer_tokens: int = 8) -> Setting:
    """The training setting of params for one group (`Params.for_group`); the sequence length is
    train.max_seq_len, the longest a batch can hold."""
    from finlora.head import label_space

    train = params.train
    labels = len(label_space(params.all_tasks)) if params.model.head == "classify" else 0
    return Setting(params.quant.bits, params.lora.rank, params.lora.target_modules, train.batch_size,
                   train.max_seq_len, train.gradient_checkpointing, train.zero_stage, train.num_gpus,
                   answer_tokens, dtype_bytes, labels)


def refuse_if_too_big(shape: Shape, setting: Setting, available: float, device: str) -> None:
    """Stop before loading anything when the training estimate exceeds `available` bytes, naming
    the estimate and what would fit."""
    need = total(training(shape, setting))
    if need <= available:
        return
    batch = largest_batch(shape, setting, available)
    if batch:
        hint = f"train.batch_size {batch} fits (with train.grad_accum to keep the effective batch)"
    elif not setting.gradient_checkpointing:
        hint = "turn on train.gradient_checkpointing, or use quant.bits 4"
    else:
        hint = "use quant.bits 4, a shorter train.max_seq_len or a smaller model"
    raise FinloraError(f"this training needs about {need / GB:.1f} GB per process (finlora estimate), "
                       f"more than the {available / GB:.1f} GB of {device}", hint=hint)


def table(parts: dict[str, float]) -> str:
    width = max(map(len, parts))
    lines = [f"  {name:<{width}}  {value / GB:8.3f} GB" for name, value in parts.items()]
    return "\n".join(lines + [f"  {'total':<{width}}  {total(parts) / GB:8.3f} GB"])


def model_config(base: str, base_dir: Path = layout.BASE) -> dict:
    """The config.json of model.base: the base_model stage's copy, a local folder's, or the Hub's
    (the config file alone; a clear error offline)."""
    for folder in (base_dir, Path(base)):
        if (folder / "config.json").is_file():
            return read_config(folder / "config.json")
    from huggingface_hub import hf_hub_download

    try:
        return read_config(Path(hf_hub_download(base, "config.json")))
    except Exception as error:  # offline, gated or unknown: the Hub's own message says which
        raise FinloraError(f"model.base = {base}: cannot read its config.json ({type(error).__name__})",
                           hint="run `dvc repro base_model` first, or pass --config PATH to a config.json") from None


def read_config(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise FinloraError(f"{path}: cannot read a model config ({error})") from None
