"""One LoRA adapter's training, as a recipe in torchtune's sense: `Recipe.setup` builds the data
schedule, the model and the DeepSpeed engine, `Recipe.train` runs the loop, `Recipe.save` writes
the adapter and the metrics. Read `train` and the recipe's three methods top to bottom.

    encode -> length-grouped micro-batches -> DeepSpeed engine -> answer-only loss
           -> validate every N steps -> save the adapter (of the best validated step, or the last)

With `model.head: classify` the same recipe trains a classification head instead (finlora.head):
its `Objective` swaps what is encoded, collated and scored; the loop, schedule, engine,
checkpoints and outputs are the same.

Launched through the `deepspeed` launcher (one process per GPU; gloo on CPU, NCCL on CUDA); only
rank 0 writes outputs. The pieces live beside it: finlora.batching (data to micro-batches),
finlora.loss, finlora.validation (held-out scoring, the best step), finlora.checkpoints,
finlora.runtime (memory, kernels, sums over ranks, clear errors).
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from finlora import head, models
from finlora import packing
from finlora.batching import answer_tokens, collate, encode, micro_batches, padding_efficiency, to_device
from finlora.checkpoints import Checkpoints, run_fingerprint
from finlora.config import Params
from finlora.dropout import use_uniform_mask_dropout
from finlora.errors import FinloraError
from finlora.files import atomic_dir, write_json
from finlora.launch import init_distributed
from finlora.loss import answer_loss_sum
from finlora.runtime import (all_reduce, apply_liger_kernel, attention_without_cudnn, clear_training_errors,
                             peak_memory_bytes, reset_peak_memory)
from finlora.validation import BestStep, Validated, validate


def train(params: Params, records: list[dict], base_dir: Path, adapter_out: Path,
          metrics_out: Path, live_dir: Path | None, checkpoint_dir: Path | None = None,
          validation: list[dict] = (), last_adapter_out: Path | None = None) -> dict | None:
    """Train one adapter on `records`; rank 0 writes the adapter, metrics and (unless `live_dir`
    is None) dvclive logs, and gets the metrics back.

    `validation` (examples held out of `records`: finlora.mixing.hold_out) is scored every
    `train.validate_every` steps and at the last; with `train.keep_best` the adapter saved is the
    one of the step with the best validation accuracy; `last_adapter_out`, where given, gets the
    last step's adapter as well (bench/dev_real.py compares the two).

    With `train.checkpoint_every` > 0 a resumable DeepSpeed checkpoint goes to `checkpoint_dir`
    every N optimizer steps; a rerun with the same data and settings continues from the last one.
    """
    recipe = Recipe(params, base_dir, checkpoint_dir, live_dir)
    recipe.setup(records, validation)
    recipe.train()
    return recipe.save(adapter_out, metrics_out, last_adapter_out)


class Recipe:
    """A training's state: settings, data schedule, engine, history of (loss, lr) per optimizer
    step, validations and the best step."""

    def __init__(self, params: Params, base_dir: Path, checkpoint_dir: Path | None, live_dir: Path | None):
        self.params, self.base_dir = params, base_dir
        self.checkpoint_dir, self.live_dir = checkpoint_dir, live_dir
        self.history: list[tuple[float, float]] = []
        self.validations: list[Validated] = []
        self.best = BestStep(keep_weights=params.train.keep_best)
        self.tokens = 0  # of every example this rank trained on, padding aside: what tokens/s counts
        self.step_seconds: list[float] = []
        self.seconds = 0.0

    def setup(self, records: list[dict], validation: list[dict]) -> None:
        """Join the run, tokenise, lay out every optimizer step, build the engine, resume."""
        self.rank, self.world = init_distributed()
        torch.manual_seed(self.params.train.seed)
        random.seed(self.params.train.seed)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        self.tokenizer = models.load_tokenizer(self.base_dir, self.params.model.chat_template)
        self.objective = objective(self.params, self.tokenizer)
        self._schedule(records, validation)
        self._engine()
        self.checkpoints = Checkpoints(self.checkpoint_dir, run_fingerprint(
            self.params, self.base_dir, self.encoded + self.held_out, self.world)) \
            if self.checkpoint_dir is not None and self.params.train.checkpoint_every > 0 else None
        if self.checkpoints:
            self.history, self.validations = self.checkpoints.resume(self.engine, self.best)
        self.resumed_from = len(self.history)
        self.live = _open_live(self.live_dir) if self.rank == 0 and self.live_dir is not None else None
        for step, (loss, lr) in enumerate(self.history):  # a resumed run's curve starts where the first run's did
            _log(self.live, loss, lr, next((v for v in self.validations if v.step == step + 1), None))

    def train(self) -> None:
        """Every optimizer step left: step, validate when due, log, checkpoint when due."""
        progress = _progress(self.total_steps, self.rank, initial=len(self.history))
        start = time.perf_counter()
        with clear_training_errors(self.params), attention_without_cudnn():
            for step in range(len(self.history), self.total_steps):
                step_start = time.perf_counter()
                self._optimizer_step(step)
                self.step_seconds.append(time.perf_counter() - step_start)  # the step ends on a device sync
                validated = self._validate_if_due(step)
                _log(self.live, *self.history[-1], validated)
                progress.update(1)
                progress.set_postfix(loss=f"{self.history[-1][0]:.3f}", **(
                    {"val_acc": f"{self.validations[-1].accuracy:.3f}"} if self.validations else {}))
                if self.checkpoints and (step + 1) % self.params.train.checkpoint_every == 0 \
                        and step + 1 < self.total_steps:
                    self.checkpoints.save(self.engine, step + 1, self.history, self.validations, self.best)
        self.seconds = time.perf_counter() - start
        progress.close()

    def save(self, adapter_out: Path, metrics_out: Path, last_adapter_out: Path | None = None) -> dict | None:
        """Write the adapter (the best validated step's with train.keep_best) and, on rank 0, the
        metrics; clear the checkpoints."""
        model = self.engine.module
        if last_adapter_out is not None and self.rank == 0:
            _save_adapter(model, last_adapter_out, self.base_dir, self.objective.labels)
        keep_best = self.params.train.keep_best and self.best.best is not None
        if keep_best:
            self.best.restore(model)
        kept = self.best.best if keep_best else (self.validations[-1] if self.validations else None)
        all_tokens, peak_memory = all_reduce(
            torch.tensor([self.tokens, peak_memory_bytes()], dtype=torch.float64)).tolist()  # sums over ranks
        if self.rank == 0:
            _save_adapter(model, adapter_out, self.base_dir, self.objective.labels)
        if self.checkpoints:
            self.checkpoints.clear()
        if self.rank != 0:
            return None
        metrics = self._metrics(all_tokens, peak_memory, kept, models.adapter_bytes(adapter_out))
        write_json(metrics_out, metrics)
        if self.live is not None:
            self.live.end()
        return metrics

    def _schedule(self, records: list[dict], validation: list[dict]) -> None:
        train = self.params.train
        self.encoded, self.dropped = self.objective.encode(records)
        if not self.encoded:
            raise FinloraError(f"no training example fits train.max_seq_len = {train.max_seq_len}")
        steps = micro_batches(self.encoded, self.params, self.world)
        self.steps = steps[:len(steps) // train.grad_accum * train.grad_accum]
        if not self.steps:
            raise FinloraError(
                f"{len(self.encoded)} examples are too few for one global batch of {train.batch_size} x {self.world} "
                f"processes x {train.grad_accum} accumulation steps", hint="lower train.batch_size or add data")
        self.total_steps = len(self.steps) // train.grad_accum
        self.held_out, _ = self.objective.encode(list(validation))

    def _engine(self) -> None:
        """The base model with its LoRA adapter, AdamW and the warm-up cosine schedule in DeepSpeed."""
        import deepspeed

        labels = self.objective.labels
        base = models.load_base(self.base_dir, self.params.quant.bits, labels=labels)
        if self.params.train.liger_kernel:
            apply_liger_kernel(base)
        model = models.add_lora(base, self.params.lora, self.params.train.gradient_checkpointing, classify=bool(labels))
        if not torch.cuda.is_available():
            use_uniform_mask_dropout(model)
        reset_peak_memory()  # the peak while training, weights resident; not the loader's transients
        self.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=self.params.train.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(self.total_steps, max(1, self.total_steps // 10)))
        self.engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=schedule,
                                                    config=deepspeed_config(self.params, self.world))
        self.engine.train()

    def _optimizer_step(self, step: int) -> None:
        """One optimizer step over its accumulation window; (loss, lr) goes to the history."""
        accumulation = self.params.train.grad_accum
        window = self.steps[step * accumulation:(step + 1) * accumulation]
        window_tokens = sum(self.objective.targets(self.encoded[i]) for micro in window for ranks in micro for i in ranks)
        engine = self.engine
        loss_sum = torch.zeros((), dtype=torch.float64, device=engine.device)  # read once, at the step's end
        for micro in window:
            examples = [self.encoded[i] for i in micro[self.rank]]
            passes = self.objective.passes(examples)
            for number, batch in enumerate(passes, 1):
                summed = self.objective.loss_sum(engine.module, to_device(batch, engine.device))
                # DeepSpeed divides by the accumulation steps and averages over ranks; scaling back makes
                # the gradient the mean over every answer token (head: example) of the window, whatever the layout.
                with nullcontext() if number == len(passes) else engine.no_sync():  # one reduction a micro-batch
                    engine.backward(summed * self.world * accumulation / window_tokens)
                loss_sum += summed.detach()
            engine.step()
            self.tokens += sum(len(e.input_ids) for e in examples)
        self.history.append((float(all_reduce(loss_sum)) / window_tokens, engine.get_lr()[0]))

    def _validate_if_due(self, step: int) -> Validated | None:
        if not self.held_out or ((step + 1) % self.params.train.validate_every and step + 1 != self.total_steps):
            return None
        validated = Validated(step + 1, *self.objective.validate(self.engine.module, self.held_out,
                                                                 self.params.train.batch_size, self.rank, self.world))
        self.validations.append(validated)
        self.best.offer(validated, self.engine.module)
        return validated

    def _metrics(self, all_tokens: float, peak_memory: float, kept: Validated | None, adapter_bytes: int) -> dict:
        params, losses = self.params, [loss for loss, _ in self.history]
        return {
            "final_loss": round(sum(losses[-5:]) / len(losses[-5:]), 4),
            "steps": self.total_steps,
            "resumed_from_step": self.resumed_from,
            "examples": len(self.encoded),
            "dropped_too_long": self.dropped,
            "epochs": params.train.epochs,
            "batch_size_per_device": params.train.batch_size,
            "world_size": self.world,
            "zero_stage": self.engine.zero_optimization_stage(),  # as DeepSpeed's engine ran it
            "wall_s": round(self.seconds, 1),
            "device_hours": round(self.seconds * self.world / 3600, 4),
            "tokens_per_s": round(all_tokens / self.seconds, 1) if self.seconds > 0 else 0.0,
            "steady_tokens_per_s": steady_tokens_per_s(all_tokens, self.step_seconds),
            # packed passes hold no padding
            "padding_efficiency": 1.0 if params.train.prefix_packing else padding_efficiency(self.encoded, self.steps),
            "prefix_packing": params.train.prefix_packing,
            "peak_memory_gb": round(peak_memory / 1e9, 3),
            "peak_memory_kind": "cuda_allocated_sum" if torch.cuda.is_available() else "cpu_rss_sum",
            "trainable_params": self.trainable,
            "adapter_bytes": adapter_bytes,
            "quant_bits": params.quant.bits,
            "head": params.model.head,
            "lora_rank": params.lora.rank,
            "seed": params.train.seed,
            "val_examples": len(self.held_out),
            "kept_step": kept.step if kept else self.total_steps,  # the step whose adapter was saved
            "val_loss": round(kept.loss, 4) if kept else None,  # of the saved adapter
            "val_accuracy": round(kept.accuracy, 4) if kept else None,
        }


class NextToken:
    """Generation's objective: prompt and answer tokens in, cross-entropy on the answer tokens
    alone (finlora.loss), packed by shared prefix where train.prefix_packing asks."""

    labels: tuple[str, ...] = ()

    def __init__(self, params: Params, tokenizer):
        self.params, self.tokenizer = params, tokenizer

    def encode(self, records: list[dict]):
        return encode(self.tokenizer, records, self.params.train.max_seq_len, self.params.model.chat_template)

    @staticmethod
    def targets(example) -> int:
        return answer_tokens(example)

    def passes(self, examples: list) -> list[dict[str, torch.Tensor]]:
        """A micro-batch's forward and backward passes: one, or one per prefix group when packing."""
        if self.params.train.prefix_packing:
            return packing.packed_passes(examples, self.tokenizer.pad_token_id)
        return [collate(examples, self.tokenizer.pad_token_id)]

    @staticmethod
    def loss_sum(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return answer_loss_sum(model, batch)[0]

    def validate(self, model, examples: list, batch_size: int, rank: int, world: int) -> tuple[float, float]:
        return validate(model, examples, batch_size, self.tokenizer.pad_token_id, rank, world)


class Classify(NextToken):
    """The classification head's objective (finlora.head): prompts in, cross-entropy of the head's
    logits on each prompt's gold label; an example counts once, as an answer token does above."""

    def __init__(self, params: Params, tokenizer, tasks: list[str]):
        super().__init__(params, tokenizer)
        self.labels = head.label_space(tasks)

    def encode(self, records: list[dict]):
        return head.encode(self.tokenizer, records, self.params.train.max_seq_len, self.params.model.chat_template,
                           self.labels)

    @staticmethod
    def targets(example) -> int:
        return 1

    def passes(self, examples: list) -> list[dict[str, torch.Tensor]]:
        return [head.collate(examples, self.tokenizer.pad_token_id)]

    @staticmethod
    def loss_sum(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return head.loss_sum(model, batch)

    def validate(self, model, examples: list, batch_size: int, rank: int, world: int) -> tuple[float, float]:
        return head.validate(model, examples, batch_size, self.tokenizer.pad_token_id, rank, world)


def objective(params: Params, tokenizer) -> NextToken:
    """What the recipe trains: generation's answer tokens, or (model.head: classify) a head over
    the labels of the group's tasks (`Params.for_group` leaves only that group in params.tasks)."""
    if params.model.head == "classify":
        return Classify(params, tokenizer, params.all_tasks)
    return NextToken(params, tokenizer)


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


def _log(live, loss: float, lr: float, validated: Validated | None = None) -> None:
    if live is not None:
        live.log_metric("train/loss", loss)
        live.log_metric("train/lr", lr)
        if validated is not None:
            live.log_metric("val/loss", validated.loss)
            live.log_metric("val/accuracy", validated.accuracy)
        live.next_step()


def steady_tokens_per_s(real_tokens: float, step_seconds: list[float]) -> float:
    """Tokens per second of a typical step: the mean tokens of a step over the median step time,
    so the first step's warm-up (kernel loading, allocator growth) and stray stalls do not count."""
    if not step_seconds:
        return 0.0
    return round(real_tokens / len(step_seconds) / statistics.median(step_seconds), 1)


def _save_adapter(model, folder: Path, base_dir: Path, labels: tuple[str, ...] = ()) -> None:
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp)
        _check_adapter(tmp)
        _sort_target_modules(tmp)
        models.write_adapter_origin(tmp, base_dir, labels)


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
