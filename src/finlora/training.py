"""The LoRA training loop, run by DeepSpeed, readable top to bottom.

    encode -> length-grouped batches -> DeepSpeed engine -> answer-only loss -> save adapter

Launched through the `deepspeed` launcher (one process per GPU; gloo on CPU, NCCL on CUDA).
Only rank 0 writes outputs.
"""

from __future__ import annotations

import math
import os
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from finlora import models
from finlora.config import Params
from finlora.errors import FinloraError
from finlora.files import atomic_dir, write_json
from finlora.prompts import training_ids

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


def check_environment(params: Params) -> None:
    """Fail before any model loads when the settings cannot work on this machine."""
    if params.train.optimizer == "zero_one_adam":
        if not torch.cuda.is_available():
            raise FinloraError(
                "train.optimizer = zero_one_adam needs CUDA GPUs with NCCL; none is available here",
                hint="use train.optimizer: adamw on this machine",
            )
        try:
            from deepspeed.runtime.fp16.onebit.zoadam import ZeroOneAdam  # noqa: F401
        except ImportError:
            raise FinloraError(
                "train.optimizer = zero_one_adam: the installed DeepSpeed no longer ships 0/1 Adam",
                hint="use train.optimizer: adamw, or install a DeepSpeed release that has it",
            ) from None
    if params.quant.bits != 16 and params.train.zero_stage == 3:
        raise FinloraError("quant.bits 4/8 with train.zero_stage 3 is not supported", hint="use zero_stage 0, 1 or 2")


def encode(tokenizer, records: list[dict], max_seq_len: int, chat_template: bool) -> tuple[list[Encoded], int]:
    """Tokenise records; ones longer than `max_seq_len` are dropped and counted, never cut."""
    encoded, dropped = [], 0
    for record in records:
        ids, labels = training_ids(tokenizer, record["context"], record["target"], chat_template)
        if len(ids) > max_seq_len:
            dropped += 1
            continue
        encoded.append(Encoded(ids, labels))
    return encoded, dropped


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffle, then sort within windows of 32 batches so a batch holds similar lengths (little
    padding), then shuffle the batch order so training does not see short-to-long."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 32
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def answer_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy on the answer tokens only.

    The LM head runs on the answer positions alone instead of on every position: with a large
    vocabulary the full logits tensor is most of the step's memory and a good part of its time.
    """
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal_lm.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep])


def deepspeed_config(params: Params, world_size: int) -> dict:
    cuda = torch.cuda.is_available()
    return {
        "train_micro_batch_size_per_gpu": params.train.batch_size,
        "gradient_accumulation_steps": params.train.grad_accum,
        "train_batch_size": params.train.batch_size * params.train.grad_accum * world_size,
        "gradient_clipping": 1.0,
        "zero_optimization": {"stage": params.train.zero_stage},
        "bf16": {"enabled": cuda and models.compute_dtype() == torch.bfloat16 and params.quant.bits == 16},
        "steps_per_print": 1_000_000,
        "wall_clock_breakdown": False,
    }


def warmup_cosine(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def init_distributed() -> tuple[int, int]:
    """Join the process group the launcher set up; a plain `python` run becomes rank 0 of 1."""
    import deepspeed

    if "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(_free_port()))
    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train(params: Params, records: list[dict], base_dir: Path, adapter_out: Path,
          metrics_out: Path, live_dir: Path) -> dict | None:
    """Train one adapter on `records`; rank 0 writes the adapter, metrics and dvclive logs."""
    import deepspeed

    check_environment(params)
    rank, world = init_distributed()
    torch.manual_seed(params.train.seed)
    random.seed(params.train.seed)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))

    tokenizer = models.load_tokenizer(base_dir)
    encoded, dropped = encode(tokenizer, records, params.train.max_seq_len, params.model.chat_template)
    if not encoded:
        raise FinloraError(f"no training example fits train.max_seq_len = {params.train.max_seq_len}")
    batches_per_epoch = len(length_grouped_batches([0] * len(encoded), params.train.batch_size, 0)) // world
    if batches_per_epoch == 0:
        raise FinloraError(f"{len(encoded)} examples are too few for {world} processes", hint="add data or processes")
    total_steps = max(1, batches_per_epoch * params.train.epochs // params.train.grad_accum)

    model = models.add_lora(models.load_base(base_dir, params.quant.bits), params.lora, params.quant.bits)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=params.train.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total_steps, max(1, total_steps // 10)))
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=schedule, config=deepspeed_config(params, world))
    engine.train()

    live = _open_live(live_dir) if rank == 0 else None
    progress = _progress(total_steps, rank)
    lengths = [len(e.input_ids) for e in encoded]
    real_tokens = padded_tokens = 0
    losses: list[float] = []
    step_losses: list[float] = []
    start = time.perf_counter()
    for epoch in range(params.train.epochs):
        batches = length_grouped_batches(lengths, params.train.batch_size, params.train.seed + epoch)
        for indices in batches[rank:batches_per_epoch * world:world]:
            batch = collate([encoded[i] for i in indices], tokenizer.pad_token_id)
            batch = {k: v.to(engine.device) for k, v in batch.items()}
            loss = answer_loss(engine.module, batch)
            engine.backward(loss)
            engine.step()
            real_tokens += int(batch["attention_mask"].sum())
            padded_tokens += batch["attention_mask"].numel()
            step_losses.append(loss.item())
            if engine.is_gradient_accumulation_boundary():
                losses.append(sum(step_losses) / len(step_losses))
                step_losses = []
                if live is not None:
                    live.log_metric("train/loss", losses[-1])
                    live.log_metric("train/lr", schedule.get_last_lr()[0])
                    live.next_step()
                progress.update(1)
                progress.set_postfix(loss=f"{losses[-1]:.3f}")
    seconds = time.perf_counter() - start
    progress.close()

    summary = _reduce_resources(real_tokens, padded_tokens, models.peak_memory_bytes())
    if rank != 0:
        return None
    with atomic_dir(adapter_out) as tmp:
        engine.module.save_pretrained(tmp)
        _check_adapter(tmp)
        models.write_adapter_origin(tmp, base_dir)
    metrics = {
        "final_loss": round(sum(losses[-5:]) / len(losses[-5:]), 4),
        "steps": len(losses),
        "examples": len(encoded),
        "dropped_too_long": dropped,
        "epochs": params.train.epochs,
        "batch_size_per_device": params.train.batch_size,
        "world_size": world,
        "wall_s": round(seconds, 1),
        "device_hours": round(seconds * world / 3600, 4),
        "tokens_per_s": round(summary["real_tokens"] / seconds, 1),
        "padding_efficiency": round(summary["real_tokens"] / summary["padded_tokens"], 3),
        "peak_memory_gb": round(summary["peak_memory"] / 1e9, 3),
        "peak_memory_kind": "cuda_allocated_sum" if torch.cuda.is_available() else "cpu_rss_sum",
        "trainable_params": trainable,
        "adapter_bytes": models.adapter_bytes(adapter_out),
        "quant_bits": params.quant.bits,
        "lora_rank": params.lora.rank,
    }
    write_json(metrics_out, metrics)
    if live is not None:
        live.end()
    return metrics


def _reduce_resources(real: int, padded: int, peak: int) -> dict:
    import torch.distributed as dist

    values = torch.tensor([real, padded, peak], dtype=torch.float64)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(values)
    return {"real_tokens": values[0].item(), "padded_tokens": values[1].item(), "peak_memory": values[2].item()}


def _check_adapter(folder: Path) -> None:
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file() or weights.stat().st_size < 1024:
        raise FinloraError(f"{weights}: the saved adapter is empty; nothing was written")


def _open_live(live_dir: Path):
    from dvclive import Live

    return Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None)


def _progress(total: int, rank: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="train", unit="step", disable=rank != 0)
