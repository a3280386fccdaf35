"""The `finlora` command. The pipeline itself runs through `dvc repro`; these commands help
around it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from finlora import layout
from finlora.config import PARAMS_FILE, load_params
from finlora.errors import FinloraError, exit_on_error
from finlora.files import read_jsonl, write_jsonl
from finlora.answers import kind
from finlora.tasks import TASKS, get_task



def adapter_folder(params, group: str) -> Path:
    """The train stage's adapter of `group` for the first of train.seeds."""
    return layout.adapter(group, params.train.seeds[0])

app = typer.Typer(help="FinLoRA: LoRA/QLoRA fine-tuning for financial NLP, driven by DVC.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def validate(params: Path = typer.Option(Path(PARAMS_FILE), help="params file to check")) -> None:
    """Check params.yaml the way every stage does, and with data.source finlora that every file it
    will read is data (not a Git LFS pointer), without running anything."""
    loaded = load_params(params)
    from finlora.sources import source_of

    source_of(loaded.data).check(loaded)
    groups = ", ".join(f"{group} ({', '.join(tasks)})" for group, tasks in loaded.tasks.items())
    typer.echo(f"{params}: valid. groups: {groups}")


@app.command("tasks")
def list_tasks() -> None:
    """List the tasks this project knows, with their labels and public data sets."""
    for task in TASKS.values():
        labels = "/".join(task.labels) or kind(task).shown_as
        source = task.hub.path if task.hub else "FinLoRA's files, local files or the sample (no Hub copy)"
        typer.echo(f"{task.name:12} {task.family:15} {labels:32} {source}")


@app.command("predict")
def predict_command(
    text: Optional[str] = typer.Argument(None, help="the text to label (or use --input)"),
    task: Optional[str] = typer.Option(None, help="task whose labels and prompt to use, e.g. fpb; leave out with "
                                                  "--input records that each name their task"),
    entity: Optional[str] = typer.Option(None, help="ner: the entity in TEXT to type"),
    question: Optional[str] = typer.Option(None, help="headline: the yes/no question about TEXT"),
    input: Optional[Path] = typer.Option(None, help="JSONL file: one {text, entity?, question?} or {context} per line"),
    output: Optional[Path] = typer.Option(None, help="JSONL file for batch results (default: print them)"),
    adapter: Optional[Path] = typer.Option(None, help="adapter folder (default: the task group's, first training seed)"),
    base_only: bool = typer.Option(False, "--base-only", help="use the base model without an adapter"),
) -> None:
    """Label new text with the base model plus the task group's adapter; without --task, each
    --input record's own task with its group's adapter, every group's adapter on one base model."""
    from finlora.predict import group_of, predict, predict_mixed

    params = load_params()
    if (text is None) == (input is None):
        raise FinloraError("give either TEXT or --input FILE")
    if task is None and (input is None or adapter or base_only):
        raise FinloraError("--task is needed with TEXT, --adapter or --base-only",
                           hint="or give --input records that each name their task")
    records = read_jsonl(input) if input else [{"text": text, "entity": entity, "question": question}]
    if task is None:
        results = predict_mixed(params, records, layout.BASE, {group: adapter_folder(params, group) for group in params.tasks})
    else:
        get_task(task)
        adapter_dir = None if base_only else adapter or adapter_folder(params, group_of(params, task))
        results = predict(params, task, records, layout.BASE, adapter_dir)
    if output:
        write_jsonl(output, results)
        typer.echo(f"{len(results)} predictions -> {output}")
    elif input:
        for result in results:
            typer.echo(json.dumps(result))
    else:
        typer.echo(results[0]["label"] or f"(no {task} label in the answer {results[0]['answer']!r})")


@app.command()
def export(
    group: str = typer.Argument(help="task group whose adapter to merge"),
    out: Path = typer.Argument(help="folder to write the merged model into"),
    adapter: Optional[Path] = typer.Option(None, help="adapter folder (default: the group's, first training seed)"),
) -> None:
    """Merge an adapter into the base model; the folder loads with AutoModelForCausalLM alone."""
    from finlora.predict import export_merged

    params = load_params()
    params.group_tasks(group)
    export_merged(layout.BASE, adapter or adapter_folder(params, group), out)
    typer.echo(f"merged model -> {out}")


@app.command("write-sample")
def write_sample_command(
    out: Path = typer.Argument(help="folder to write train/ and test/ into (FinLoRA's data/ layout)"),
    train: int = typer.Option(16, min=1, help="training examples per task (FiNER: sentences)"),
    test: int = typer.Option(8, min=1, help="test examples per task (FiNER: sentences)"),
    release: str = typer.Option("2025-05", help="whose layout: 2025-05 (today's) | 2025-04 | 2025-02 | 2025-01 (the "
                                "paper's; its classification tests are read from the Hub)"),
) -> None:
    """Write the offline sample data as FinLoRA's released files, for data.source: finlora."""
    from finlora.sample_release import release_named, write_sample

    written = write_sample(out, load_params(), train, test, release_named(release))
    typer.echo(f"{sum(written.values())} records in {len(written)} files -> {out}; use them with\n"
               f"dvc exp run -S data.source=finlora -S data.local_dir={out}")


@app.command()
def profile(name: str = typer.Argument(help="a file in profiles/ without .yaml, e.g. paper-4bit-r4")) -> None:
    """Print a profile as `-S key=value` overrides: dvc exp run $(finlora profile NAME)."""
    import yaml

    from finlora.config import parse_params
    from finlora.profiles import apply, load_profile, overrides

    settings = load_profile(name)
    parse_params(apply(yaml.safe_load(Path(PARAMS_FILE).read_text()), settings), source=f"profiles/{name}.yaml")
    typer.echo(" ".join(f"-S {override}" for override in overrides(settings)))


@app.command("compare")
def compare_command(
    run_a: str = typer.Argument(help="A: a commit, an experiment, workspace, base (the base model; base@REV), "
                                     "most_common (always the training split's most common answer; most_common@REV) "
                                     "or shots-K (the base model shown K train examples, few_shot.shots; shots-K@REV)"),
    run_b: str = typer.Argument(help="B: the same kinds as A"),
    seed: Optional[int] = typer.Option(None, help="the training seed whose adapters to compare (default: the "
                                                  "first both runs trained)"),
) -> None:
    """Is B better than A? Per task: B - A in strict accuracy with a paired bootstrap 95 % interval
    and McNemar's exact test, on the same test examples."""
    from finlora.compare import compare, table

    typer.echo(table(compare(load_params(), run_a, run_b, seed), run_a, run_b), nl=False)


@app.command()
def sweep(names: Optional[list[str]] = typer.Argument(None, help="experiments to compare (default: all, and the "
                                                                  "workspace and commits they are based on)"),
          csv: Path = typer.Option(Path("sweep.csv"), help="CSV to write: one row per experiment and task"),
          plots: Path = typer.Option(Path("sweep"), help="folder for the plot data: accuracy and trainable "
                                                         "parameters against lora.rank"),
          all_commits: bool = typer.Option(False, help="include experiments based on older commits")) -> None:
    """Compare experiments: each task's adapter accuracy against the params the experiments vary.

    Prints a table, writes a CSV, and where lora.rank varies the data of the LoRA vs QLoRA study's
    plots, one file per quantisation and target set; draw them with the printed commands.
    """
    import pandas as pd

    from finlora.files import write_text
    from finlora.sweep import experiments, markdown, rows, varied, write_plot_data

    found = experiments(all_commits)
    if names:
        unknown = sorted(set(names) - {exp["name"] for exp in found})
        if unknown:
            raise FinloraError(f"no finished experiment named {unknown[0]}",
                               hint="dvc exp show lists them; --all-commits includes older commits")
        found = [exp for exp in found if exp["name"] in names]
    table = rows(found)
    if not table:
        raise FinloraError("no experiment with metrics yet", hint="run dvc repro or dvc exp run first")
    write_text(csv, pd.DataFrame(table).to_csv(index=False))
    typer.echo(markdown(table, varied(found)) + f"\n{len(table)} rows -> {csv}")
    for path in write_plot_data(table, plots):
        x, y = ("lora.rank", "trainable_params") if path.stem == "trainable-params" else ("lora.rank", "accuracy")
        typer.echo(f"dvc plots show {path} --template scatter -x {x} -y {y}")


@app.command("estimate")
def estimate_command(
    group: Optional[str] = typer.Option(None, help="task group whose train settings to use (default: the first)"),
    config: Optional[Path] = typer.Option(None, help="the model's config.json (default: models/base's, a local "
                                                     "model.base's, or the Hub's)"),
    dtype: str = typer.Option("bf16", help="compute dtype: bf16 (GPUs) | fp32 (this pipeline on CPUs)"),
    answer_tokens: int = typer.Option(8, help="answer tokens per example (where the LM head runs)"),
    available_gb: Optional[float] = typer.Option(None, help="memory per process to check the training against"),
) -> None:
    """Peak memory of training and inference for params.yaml's model, bits, rank, targets, batch,
    sequence length, ZeRO stage and processes, from the model's config alone (no weights)."""
    from finlora import estimate

    if dtype not in ("bf16", "fp32"):
        raise FinloraError(f"--dtype {dtype}: unknown", hint="bf16 or fp32")
    params = load_params()
    group = group or next(iter(params.tasks))
    params = params.for_group(group)
    shape = estimate.Shape.from_config(estimate.read_config(config) if config else estimate.model_config(params.model.base))
    setting = estimate.setting_for(params, 2 if dtype == "bf16" else 4, answer_tokens)
    typer.echo(f"training, group {group}: {params.quant.bits}-bit, r{setting.rank} on {', '.join(setting.targets)}, "
               f"batch {setting.batch_size} x {setting.seq_len} tokens, checkpointing "
               f"{'on' if setting.gradient_checkpointing else 'off'}, ZeRO {setting.zero_stage}, "
               f"{setting.processes} process(es), {dtype}; per process:")
    trainable = estimate.trainable_params(shape, setting.rank, setting.targets, setting.head_labels)
    everything = estimate.base_params(shape, setting.head_labels) + trainable
    head = f", a {setting.head_labels}-label classification head included" if setting.head_labels else ""
    typer.echo(f"  trainable parameters: {trainable:,} ({100 * trainable / everything:.4f} % of {everything:,}{head})")
    typer.echo(estimate.table(estimate.training(shape, setting)))
    new_tokens = params.eval.max_new_tokens
    rows = max(1, min(params.eval.batch_size, params.eval.batch_tokens // setting.seq_len))  # as generation batches
    typer.echo(f"inference: {params.eval.bits}-bit, batch {rows} x ({setting.seq_len} prompt + "
               f"{new_tokens} new) tokens:")
    typer.echo(estimate.table(estimate.inference(shape, params.eval.bits, setting.rank, setting.targets,
                                                 rows, setting.seq_len, new_tokens, setting.dtype_bytes)))
    if available_gb is not None:
        estimate.refuse_if_too_big(shape, setting, available_gb * estimate.GB, "--available-gb")
        typer.echo(f"fits in {available_gb} GB")


def main() -> None:
    exit_on_error(run_app)


def run_app() -> None:
    """The app, with a mistyped command line reported like every other user error: one line
    and a hint (click would print a usage block and a boxed message)."""
    import sys

    if len(sys.argv) == 1:  # `finlora` alone: its help
        sys.argv.append("--help")
    try:
        app(standalone_mode=False)
    except typer.TyperException as error:  # typer's own copy of click's usage errors
        context = getattr(error, "ctx", None)
        command = " ".join(["finlora", *(context.command_path.split()[1:] if context else []), "--help"])
        raise FinloraError(" ".join(error.format_message().split()), hint=f"see {command}") from None


if __name__ == "__main__":
    main()
