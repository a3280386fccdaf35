"""The LoRA training loop, run by DeepSpeed, readable top to bottom.

    encode -> length-grouped batches -> DeepSpeed engine -> answer-only loss
           -> validate every N steps -> save the adapter (of the best validated step, or the last)

Launched through the `deepspeed` launcher (one process per GPU; gloo on CPU, NCCL on CUDA).
Only rank 0 writes outputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from finlora import estimate, models
from finlora.config import Params
from finlora.dropout import use_uniform_mask_dropout
from finlora.errors import FinloraError
from finlora.files import atomic_dir, write_json
from finlora.launch import init_distributed
from finlora.prompts import training_ids

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


def check_environment(params: Params, base_dir: Path) -> None:
    """Fail before any model loads when the settings cannot work on this machine or base model:
    Liger without CUDA, or a training the GPU's memory cannot hold by the estimate."""
    if params.train.liger_kernel:
        _check_liger_kernel(base_dir)
    if torch.cuda.is_available():
        config = Path(models.weights_location(base_dir)) / "config.json"
        device = torch.cuda.get_device_name()
        estimate.refuse_if_too_big(estimate.Shape.from_config(estimate.read_config(config)),
                                   estimate.setting_for(params), torch.cuda.mem_get_info()[1], device)


def _check_liger_kernel(base_dir: Path) -> None:
    if not torch.cuda.is_available():
        raise FinloraError(
            "train.liger_kernel needs a CUDA GPU (Liger's kernels are written in Triton); none is available here",
            hint="set train.liger_kernel: false on this machine",
        )
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError as error:
        raise FinloraError(f"train.liger_kernel: cannot import Liger's kernels ({error})",
                           hint="pip install liger-kernel==0.8.5 (it needs triton, which CUDA builds of torch "
                           "bring), or set train.liger_kernel: false") from None
    config = Path(models.weights_location(base_dir)) / "config.json"
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        raise FinloraError(f"train.liger_kernel: Liger has no kernels for model type {model_type!r} ({config})",
                           hint="set train.liger_kernel: false for this model; Liger covers "
                           + ", ".join(sorted(MODEL_TYPE_TO_APPLY_LIGER_FN)))


def apply_liger_kernel(model) -> None:
    """Swap in Liger's fused Triton kernels for the model's RMSNorm, SwiGLU and rotary embeddings
    (for the rest of the process: Liger also patches the model type's module). Its fused
    cross-entropy stays off: the loss here runs the LM head on answer positions only."""
    from liger_kernel.transformers.monkey_patch import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=False)


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
    """A right-padded batch, with the answer tokens' places in the flattened batch and their ids.

    Every token of each example but the last is input (the last, the end token, is a target only:
    as an input, its prediction would be computed and thrown away). There is no attention mask:
    in a causal model a token attends only to those before it, so no real token sees the padding
    after it, and only real positions are read. Without a mask, attention takes its causal kernel
    for every batch and transformers reads no mask back from the GPU (a wait for the device); the
    answer positions are worked out here on the host for the same reason."""
    width = max(len(e.input_ids) for e in examples) - 1
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    positions, targets = [], []
    for row, example in enumerate(examples):
        ids[row, :len(example.input_ids) - 1] = torch.tensor(example.input_ids[:-1])
        for column, target in enumerate(example.labels[1:]):  # the token that follows each input
            if target != IGNORE:
                positions.append(row * width + column)
                targets.append(target)
    return {"input_ids": ids, "answer_positions": torch.tensor(positions, dtype=torch.long),
            "answer_targets": torch.tensor(targets, dtype=torch.long)}


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The batch on `device`, without the host waiting for the copy (CUDA stages it)."""
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def answer_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The logits at the answer positions, one row per answer token in `answer_positions` order.

    The LM head runs on the answer positions alone instead of on every position: with a large
    vocabulary the full logits tensor is most of the step's memory and a good part of its time.
    """
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal_lm.get_decoder()(input_ids=batch["input_ids"], use_cache=False).last_hidden_state
    answers = hidden.flatten(0, 1).index_select(0, batch["answer_positions"])
    return causal_lm.get_output_embeddings()(answers)


def answer_loss_sum(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the answer tokens, and how many there were."""
    logits = answer_logits(model, batch)
    targets = batch["answer_targets"]
    return F.cross_entropy(logits.float(), targets, reduction="sum"), targets.numel()


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
    loss_sum, tokens, exact = _all_reduce(totals).tolist()
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


def answer_tokens(example: Encoded) -> int:
    return sum(label != IGNORE for label in example.labels[1:])


def micro_batches(encoded: list[Encoded], params: Params, world: int) -> list[list[list[int]]]:
    """Every micro-batch of the run, as the example indices of each rank: rank r of a global
    batch takes its examples r, r + world, ... so any world size sees the same global batches."""
    lengths = [len(e.input_ids) for e in encoded]
    steps = []
    for epoch in range(params.train.epochs):
        global_batches = length_grouped_batches(lengths, params.train.batch_size * world, params.train.seed + epoch)
        steps += [[batch[rank::world] for rank in range(world)] for batch in global_batches
                  if len(batch) == params.train.batch_size * world]
    return steps


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


def train(params: Params, records: list[dict], base_dir: Path, adapter_out: Path,
          metrics_out: Path, live_dir: Path | None, checkpoint_dir: Path | None = None,
          validation: list[dict] = (), last_adapter_out: Path | None = None) -> dict | None:
    """Train one adapter on `records`; rank 0 writes the adapter, metrics and (unless `live_dir`
    is None) dvclive logs.

    `validation` (examples held out of `records`: finlora.mixing.hold_out) is scored every
    `train.validate_every` steps and at the last; with `train.keep_best` the adapter saved is the
    one of the step with the best validation accuracy; `last_adapter_out`, where given, gets the
    last step's adapter as well (bench/dev_real.py compares the two).

    With `train.checkpoint_every` > 0 a resumable DeepSpeed checkpoint goes to `checkpoint_dir`
    every N optimizer steps; a rerun with the same data and settings continues from the last one.
    """
    import deepspeed

    rank, world = init_distributed()
    torch.manual_seed(params.train.seed)
    random.seed(params.train.seed)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))

    tokenizer = models.load_tokenizer(base_dir, params.model.chat_template)
    encoded, dropped = encode(tokenizer, records, params.train.max_seq_len, params.model.chat_template)
    if not encoded:
        raise FinloraError(f"no training example fits train.max_seq_len = {params.train.max_seq_len}")
    steps = micro_batches(encoded, params, world)
    accumulation = params.train.grad_accum
    steps = steps[:len(steps) // accumulation * accumulation]
    if not steps:
        raise FinloraError(
            f"{len(encoded)} examples are too few for one global batch of {params.train.batch_size} x {world} "
            f"processes x {accumulation} accumulation steps", hint="lower train.batch_size or add data")
    total_steps = len(steps) // accumulation
    held_out, _ = encode(tokenizer, list(validation), params.train.max_seq_len, params.model.chat_template)

    base = models.load_base(base_dir, params.quant.bits)
    if params.train.liger_kernel:
        apply_liger_kernel(base)
    model = models.add_lora(base, params.lora, params.train.gradient_checkpointing)
    if not torch.cuda.is_available():
        use_uniform_mask_dropout(model)
    models.reset_peak_memory()  # the peak while training, weights resident; not the loader's transients
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=params.train.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total_steps, max(1, total_steps // 10)))
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=schedule, config=deepspeed_config(params, world))
    engine.train()

    checkpoints = Checkpoints(checkpoint_dir, _run_fingerprint(params, base_dir, encoded + held_out, world)) \
        if checkpoint_dir is not None and params.train.checkpoint_every > 0 else None
    best = BestStep(keep_weights=params.train.keep_best)
    history: list[tuple[float, float]] = []
    validations: list[Validated] = []
    if checkpoints:
        history, validations = checkpoints.resume(engine, best)
    resumed_from = len(history)
    live = _open_live(live_dir) if rank == 0 and live_dir is not None else None
    for step, (loss, lr) in enumerate(history):  # a resumed run's curve starts where the first run's did
        _log(live, loss, lr, next((v for v in validations if v.step == step + 1), None))
    progress = _progress(total_steps, rank, initial=len(history))

    tokens = 0  # of every example this rank trained on, padding aside: what tokens/s counts
    step_seconds = []
    start = time.perf_counter()
    with _clear_training_errors(params), models.attention_without_cudnn():
        for step in range(len(history), total_steps):
            step_start = time.perf_counter()
            tokens += _optimizer_step(engine, encoded, steps, step, params, rank, world, tokenizer, history)
            step_seconds.append(time.perf_counter() - step_start)  # the step ends on a device sync (its loss)
            validated = None
            if held_out and ((step + 1) % params.train.validate_every == 0 or step + 1 == total_steps):
                validated = Validated(step + 1, *validate(engine.module, held_out, params.train.batch_size,
                                                          tokenizer.pad_token_id, rank, world))
                validations.append(validated)
                best.offer(validated, engine.module)
            _log(live, *history[-1], validated)
            progress.update(1)
            progress.set_postfix(loss=f"{history[-1][0]:.3f}",
                                 **({"val_acc": f"{validations[-1].accuracy:.3f}"} if validations else {}))
            if checkpoints and (step + 1) % params.train.checkpoint_every == 0 and step + 1 < total_steps:
                checkpoints.save(engine, step + 1, history, validations, best)
    seconds = time.perf_counter() - start
    progress.close()
    if last_adapter_out is not None and rank == 0:
        _save_adapter(engine.module, last_adapter_out, base_dir)
    if params.train.keep_best and best.best is not None:
        best.restore(engine.module)
    kept = best.best if params.train.keep_best and best.best is not None else (validations[-1] if validations else None)

    all_tokens, peak_memory = _all_reduce(
        torch.tensor([tokens, models.peak_memory_bytes()], dtype=torch.float64)).tolist()  # sums over ranks
    losses = [loss for loss, _ in history]
    if rank == 0:
        _save_adapter(engine.module, adapter_out, base_dir)
    if checkpoints:
        checkpoints.clear()
    if rank != 0:
        return None
    metrics = {
        "final_loss": round(sum(losses[-5:]) / len(losses[-5:]), 4),
        "steps": total_steps,
        "resumed_from_step": resumed_from,
        "examples": len(encoded),
        "dropped_too_long": dropped,
        "epochs": params.train.epochs,
        "batch_size_per_device": params.train.batch_size,
        "world_size": world,
        "wall_s": round(seconds, 1),
        "device_hours": round(seconds * world / 3600, 4),
        "tokens_per_s": round(all_tokens / seconds, 1) if seconds > 0 else 0.0,
        "steady_tokens_per_s": steady_tokens_per_s(all_tokens, step_seconds),
        "padding_efficiency": padding_efficiency(encoded, steps),
        "peak_memory_gb": round(peak_memory / 1e9, 3),
        "peak_memory_kind": "cuda_allocated_sum" if torch.cuda.is_available() else "cpu_rss_sum",
        "trainable_params": trainable,
        "adapter_bytes": models.adapter_bytes(adapter_out),
        "quant_bits": params.quant.bits,
        "lora_rank": params.lora.rank,
        "seed": params.train.seed,
        "val_examples": len(held_out),
        "kept_step": kept.step if kept else total_steps,  # the step whose adapter was saved
        "val_loss": round(kept.loss, 4) if kept else None,  # of the saved adapter
        "val_accuracy": round(kept.accuracy, 4) if kept else None,
    }
    write_json(metrics_out, metrics)
    if live is not None:
        live.end()
    return metrics


def _optimizer_step(engine, encoded, steps, step, params, rank, world, tokenizer, history) -> int:
    """One optimizer step over its accumulation window; appends (loss, lr) to `history`. Returns
    how many tokens this rank's examples hold (padding aside)."""
    accumulation = params.train.grad_accum
    window = steps[step * accumulation:(step + 1) * accumulation]
    window_tokens = sum(answer_tokens(encoded[i]) for micro in window for ranks in micro for i in ranks)
    loss_sum = torch.zeros((), dtype=torch.float64, device=engine.device)  # read once, at the step's end
    tokens = 0
    for micro in window:
        examples = [encoded[i] for i in micro[rank]]
        summed, _ = answer_loss_sum(engine.module, to_device(collate(examples, tokenizer.pad_token_id), engine.device))
        # DeepSpeed divides by the accumulation steps and averages over ranks; scaling back makes
        # the gradient the mean over every answer token of the window, whatever the layout.
        engine.backward(summed * world * accumulation / window_tokens)
        engine.step()
        loss_sum += summed.detach()
        tokens += sum(len(e.input_ids) for e in examples)
    history.append((float(_all_reduce(loss_sum)) / window_tokens, engine.get_lr()[0]))
    return tokens


@contextlib.contextmanager
def _clear_training_errors(params: Params):
    """Running out of memory, or losing another process of the run (a node killed or gone), ends
    the training with a clear error and no adapter."""
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError):
        raise FinloraError(
            f"out of memory while training (train.batch_size {params.train.batch_size}, "
            f"quant.bits {params.quant.bits}, train.gradient_checkpointing {params.train.gradient_checkpointing}); "
            "no adapter was written",
            hint="lower train.batch_size (raise train.grad_accum to keep the global batch), "
            "set train.gradient_checkpointing: true, or use quant.bits: 4") from None
    except RuntimeError as error:  # gloo raises a plain RuntimeError when a peer's connection drops
        if not (isinstance(error, torch.distributed.DistBackendError) or any(
                lost in str(error) for lost in ("Connection closed by peer", "Connection reset by peer"))):
            raise
        said = " ".join(str(error).split())
        raise FinloraError(
            f"another process of this training ended or cannot be reached ({said[:160]}); no adapter was written",
            hint="check the other nodes' logs and rerun; with train.checkpoint_every the rerun continues from "
            "the last checkpoint") from None


def _log(live, loss: float, lr: float, validated: Validated | None = None) -> None:
    if live is not None:
        live.log_metric("train/loss", loss)
        live.log_metric("train/lr", lr)
        if validated is not None:
            live.log_metric("val/loss", validated.loss)
            live.log_metric("val/accuracy", validated.accuracy)
        live.next_step()


def _all_reduce(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over every rank (unchanged in a single process), on the device they came on.
    NCCL reduces CUDA tensors only, so under NCCL a CPU tensor goes through this rank's GPU."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return values
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else values.device
    reduced = values.to(device)
    dist.all_reduce(reduced)
    return reduced.to(values.device)


def _run_fingerprint(params: Params, base_dir: Path, encoded: list[Encoded], world: int) -> str:
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


def steady_tokens_per_s(real_tokens: float, step_seconds: list[float]) -> float:
    """Tokens per second of a typical step: the mean tokens of a step over the median step time,
    so the first step's warm-up (kernel loading, allocator growth) and stray stalls do not count."""
    if not step_seconds:
        return 0.0
    return round(real_tokens / len(step_seconds) / statistics.median(step_seconds), 1)


def padding_efficiency(encoded: list[Encoded], steps: list[list[list[int]]]) -> float:
    """The share of the whole schedule's input positions (every micro-batch of every rank, as
    `collate` pads each to its longest input) that are tokens, not padding. A property of the
    schedule, so a run resumed from a checkpoint reports what an uninterrupted one does."""
    real = padded = 0
    for micro in steps:
        for indices in micro:
            inputs = [len(encoded[i].input_ids) - 1 for i in indices]
            real += sum(inputs)
            padded += len(inputs) * max(inputs, default=0)
    return round(real / max(1, padded), 3)


def _save_adapter(model, folder: Path, base_dir: Path) -> None:
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp)
        _check_adapter(tmp)
        _sort_target_modules(tmp)
        models.write_adapter_origin(tmp, base_dir)


def _check_adapter(folder: Path) -> None:
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file() or weights.stat().st_size < 1024:
        raise FinloraError(f"{weights}: the saved adapter is empty; nothing was written")


def _sort_target_modules(folder: Path) -> None:
    """peft keeps `target_modules` as a set and writes it in the set's order, which changes from
    process to process with Python's string hashing; sorted, the same training writes the same
    bytes, and DVC does not rerun evaluation for an adapter that did not change."""
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        path.write_text(json.dumps(config, indent=2, sort_keys=True))


def _open_live(live_dir: Path):
    from dvclive import Live

    return Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None)


def _progress(total: int, rank: int, initial: int = 0):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", disable=rank != 0)
