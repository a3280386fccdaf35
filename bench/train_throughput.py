"""Training throughput and peak memory: finlora's train step against a plain Hugging Face
Trainer + peft baseline, on the same model, data and settings.

    python bench/train_throughput.py [--base models/base] [--batch-size 8] [--bits 16] [--rank 8]

    # Llama-3.1-8B's architecture, random weights (no download), batch 4 x 512 tokens:
    python bench/train_throughput.py --shape llama-3.1-8b --bits 4 --rank 8 --batch-size 4 --seq-len 512
    python bench/train_throughput.py --shape llama-3.1-8b --layers 2 ...   # the same widths, 2 layers (CPU)
    python bench/train_throughput.py --shape llama-3.1-8b --liger ...      # also finlora with Liger's kernels (CUDA)
    python bench/train_throughput.py --profile FOLDER ...   # each side's torch.profiler table, in FOLDER

With --shape, `--base` only lends its tokenizer; the random model is built once (on the GPU when
there is one) into a folder under the temporary directory and reused by later runs.
Each side runs in its own process (peak memory is a per-process figure), one after the other,
in this one run; the script prints real tokens per second over the whole run and over a median
step (the mean tokens of a step over the median step time: the first step's warm-up and stray
stalls left out), peak memory and the ratios; for finlora's rows also the mean loss of the last
five steps, so a run with Liger's kernels can be checked against one without.
Peak memory: on a GPU, `torch.cuda.max_memory_allocated` from the end of model loading to the end
of training (the weights stay resident, the loader's transients do not count); on a CPU, the
process's peak RSS.
Baseline: `Trainer` with a peft LoRA model (bitsandbytes for 4/8 bits, prepared with
`prepare_model_for_kbit_training`), batches padded to their longest example in random order,
the model's own loss over full logits with the prompt masked. Same LoRA settings, learning rate,
batch size, optimizer (AdamW), gradient checkpointing setting and examples.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from finlora import models, runtime, training
from finlora.config import with_changes
from finlora.errors import FinloraError, exit_on_error
from finlora.prompts import build_context, training_ids
from finlora import samples
from finlora.tasks import TASKS

TASK_MIX = ["fpb", "tfns", "nwgi", "ner"]
NON_REENTRANT = {"use_reentrant": False}
WORKERS = ("baseline", "finlora", "finlora-liger")
LLAMA_31_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                   num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
                   rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)


def records(n_per_task: int) -> list[dict]:
    rows = []
    for task in TASK_MIX:
        for row in samples.generate(task, n_per_task, 1, seed=21)["splits"]["train"]:
            example = TASKS[task].example(row)
            rows.append({"context": build_context(example), "target": example.answer})
    return rows


def long_records(tokenizer, n: int, seq_len: int) -> list[dict]:
    """`n` examples of about `seq_len` tokens: sample sentences joined, a sentiment label as answer."""
    sentences = [row["sentence"] for row in samples.generate("fpb", 400, 1, seed=5)["splits"]["train"]]
    examples = []
    for i in range(n):
        text, start = "", i * 7
        while len(training_ids(tokenizer, build_context_for(text), "positive", True)[0]) < seq_len - 24:
            text += sentences[start % len(sentences)] + " "
            start += 1
        examples.append({"context": build_context_for(text.strip()), "target": "positive"})
    return examples


def build_context_for(text: str) -> str:
    return build_context(TASKS["fpb"].example({"sentence": text, "label": "positive"}))


def random_llama(tokenizer_base: Path, layers: int) -> Path:
    """Llama-3.1-8B's architecture with `layers` layers and random bf16 weights, as a base folder;
    built once into the temporary directory (2.1 GB + 0.44 GB per layer: 16 GB at 32) and reused."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    folder = Path(tempfile.gettempdir()) / f"finlora-bench-llama-3.1-8b-{layers}l"
    if (folder / "base" / models.BASE_INFO).is_file():
        return folder / "base"
    shutil.rmtree(folder, ignore_errors=True)
    building = folder.with_name(folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    tokenizer = models.load_tokenizer(tokenizer_base)
    config = LlamaConfig(**{**LLAMA_31_8B, "num_hidden_layers": layers}, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # random init is slow on a CPU
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(building / "weights")
    tokenizer.save_pretrained(building / "weights")
    del model
    torch.cuda.empty_cache()  # the workers measure their own memory; leave them the whole GPU
    (building / "base").mkdir()
    models.materialize_base(str(building / "weights"), building / "base")  # hard links
    building.rename(folder)
    return folder / "base"


def settings(args, liger: bool = False) -> dict:
    return {"tasks": {"bench": TASK_MIX}, "quant": {"bits": args.bits},
            "lora": {"rank": args.rank, "alpha": 32, "dropout": 0.1, "target_modules": ["q_proj", "k_proj", "v_proj"]},
            "train": {"lr": 1e-4, "batch_size": args.batch_size, "epochs": 1, "max_seq_len": args.seq_len + 32,
                      "gradient_checkpointing": args.gradient_checkpointing, "liger_kernel": liger}}


def run_finlora(args, data: list[dict]) -> dict:
    params = with_changes(settings(args, liger=args.worker == "finlora-liger"))
    runtime.check_environment(params, args.base)
    out = Path(tempfile.mkdtemp())
    metrics = training.train(params, data, args.base, out / "a", out / "m.json", live_dir=None)
    return {"tokens_per_s": metrics["tokens_per_s"], "steady_tokens_per_s": metrics["steady_tokens_per_s"],
            "peak_memory_gb": runtime.peak_memory_bytes() / 1e9, "final_loss": metrics["final_loss"],
            "steps": metrics["steps"], "padding_efficiency": metrics["padding_efficiency"]}


def run_baseline(args, data: list[dict]) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import Trainer, TrainerCallback, TrainingArguments

    params = with_changes(settings(args))
    tokenizer = models.load_tokenizer(args.base)
    model = models.load_base(args.base, args.bits)
    if args.bits != 16:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing,
                                                gradient_checkpointing_kwargs=NON_REENTRANT)
    lora = params.lora
    model = get_peft_model(model, LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                             target_modules=lora.target_modules, task_type="CAUSAL_LM"))
    encoded = [training_ids(tokenizer, r["context"], r["target"], True) for r in data]
    features = [{"input_ids": ids, "labels": labels} for ids, labels in encoded]

    def collate(batch):
        width = max(len(f["input_ids"]) for f in batch)
        pad = tokenizer.pad_token_id
        return {
            "input_ids": torch.tensor([f["input_ids"] + [pad] * (width - len(f["input_ids"])) for f in batch]),
            "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"]))
                                            for f in batch]),
            "labels": torch.tensor([f["labels"] + [-100] * (width - len(f["labels"])) for f in batch]),
        }

    arguments = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size,
                                  learning_rate=params.train.lr, num_train_epochs=1, report_to=[], save_strategy="no",
                                  logging_strategy="no", use_cpu=not torch.cuda.is_available(),
                                  dataloader_drop_last=True, seed=42, disable_tqdm=True,
                                  gradient_checkpointing=args.gradient_checkpointing,
                                  gradient_checkpointing_kwargs=NON_REENTRANT)

    def synchronize():  # finlora's steps end on a device sync (their loss); time the baseline's alike
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    class Clock(TrainerCallback):  # starts once the optimizer exists, as finlora's clock does
        def __init__(self):
            self.step_seconds: list[float] = []

        def on_train_begin(self, *_, **__):
            self.start = time.perf_counter()

        def on_step_begin(self, *_, **__):
            synchronize()
            self.step_start = time.perf_counter()

        def on_step_end(self, *_, **__):
            synchronize()
            self.step_seconds.append(time.perf_counter() - self.step_start)

    clock = Clock()
    trainer = Trainer(model=model, args=arguments, train_dataset=features, data_collator=collate, callbacks=[clock])
    loader = trainer.get_train_dataloader()
    real_tokens = sum(int(batch["attention_mask"].sum()) for batch in loader)
    padded = sum(batch["attention_mask"].numel() for batch in loader)
    runtime.reset_peak_memory()
    trainer.train()
    seconds = time.perf_counter() - clock.start
    return {"tokens_per_s": real_tokens / seconds,
            "steady_tokens_per_s": training.steady_tokens_per_s(real_tokens, clock.step_seconds),
            "peak_memory_gb": runtime.peak_memory_bytes() / 1e9, "steps": trainer.state.global_step,
            "padding_efficiency": real_tokens / padded}


@contextlib.contextmanager
def profiled(folder: Path | None, worker: str):
    """With a folder, run the body under torch.profiler and write there the worker's operators,
    sorted by their own time on the device (on a CPU: on the host)."""
    if folder is None:
        yield
        return
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    start = time.perf_counter()
    with profile(activities=activities) as profiler:
        yield
    seconds = time.perf_counter() - start
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"profile-{worker}.txt").write_text(
        f"{worker}: {seconds:.1f} s for the whole side (model load, setup, training); the footer gives "
        f"the operators' own time in all\n"
        + profiler.key_averages().table(sort_by=sort, row_limit=40, max_name_column_width=60) + "\n")


def liger_usable(args) -> bool:
    """Whether finlora can train with Liger's kernels here; says why not (checked before its run)."""
    try:
        runtime.check_environment(with_changes(settings(args, liger=True)), args.base)
        return True
    except FinloraError as error:
        print(f"finlora-liger skipped: {error}", file=sys.stderr)
        return False


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--examples-per-task", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bits", type=int, default=16, choices=(4, 8, 16))
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--shape", choices=("llama-3.1-8b",), help="a random-weight model of this architecture")
    parser.add_argument("--layers", type=int, default=32, help="with --shape: decoder layers (32 is the full model)")
    parser.add_argument("--seq-len", type=int, default=512, help="with --shape: tokens per example")
    parser.add_argument("--steps", type=int, default=8, help="with --shape: optimizer steps")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="on both sides")
    parser.add_argument("--liger", action="store_true", help="also run finlora with train.liger_kernel (CUDA)")
    parser.add_argument("--profile", type=Path, metavar="FOLDER",
                        help="write each side's torch.profiler table (profile-SIDE.txt) to this folder")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.shape and not args.worker:  # build the model once; both workers load it from disk
        args.base = random_llama(args.base, args.layers)
        sys.argv += ["--base", str(args.base)]
    data = (long_records(models.load_tokenizer(args.base), args.steps * args.batch_size, args.seq_len) if args.shape
            else records(args.examples_per_task))
    if args.worker:
        with profiled(args.profile, args.worker):
            result = (run_baseline if args.worker == "baseline" else run_finlora)(args, data)
        print("RESULT " + json.dumps(result))
        return

    results, missing = {}, []
    for worker in WORKERS if args.liger else WORKERS[:2]:
        if worker == "finlora-liger" and not liger_usable(args):
            missing.append(worker)
            continue
        command = [sys.executable, __file__, "--worker", worker, *sys.argv[1:]]
        output = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
        if output.returncode != 0 or not lines:
            print(f"{worker} failed:\n{output.stderr[-3000:]}", file=sys.stderr)
            if worker == "baseline":
                sys.exit(1)
            missing.append(worker)  # the other sides still run and are reported
            continue
        results[worker] = json.loads(lines[-1][len("RESULT "):])
    base = results.pop("baseline")
    what = f"{args.shape} ({args.layers} layers, random weights)" if args.shape else models.base_info(args.base)["base"]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"{len(data)} examples, batch {args.batch_size}, LoRA r{args.rank} q/k/v, {args.bits}-bit, "
          f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}, model {what}, device {device}")
    print("| | steps | real tokens/s | median-step tokens/s | padding efficiency | peak memory (GB) | final loss |\n"
          "|---|---|---|---|---|---|---|")
    for name, result in (("HF Trainer + peft", base), *results.items()):
        print(f"| {name} | {result['steps']} | {result['tokens_per_s']:.0f} | {result['steady_tokens_per_s']:.0f} "
              f"| {result['padding_efficiency']:.3f} | {result['peak_memory_gb']:.2f} "
              f"| {result.get('final_loss', '-')} |")
    for name, ours in results.items():
        print(f"tokens/s {name} / baseline = {ours['tokens_per_s'] / base['tokens_per_s']:.2f}x "
              f"(median step: {ours['steady_tokens_per_s'] / base['steady_tokens_per_s']:.2f}x); "
              f"peak memory {name} / baseline = {ours['peak_memory_gb'] / base['peak_memory_gb']:.2f}")
    if missing:
        sys.exit(f"no result from {', '.join(missing)} (why: above)")


if __name__ == "__main__":
    exit_on_error(main)
