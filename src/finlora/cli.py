"""The `finlora` command. The pipeline itself runs through `dvc repro`; these commands help
around it."""

from __future__ import annotations

from pathlib import Path

import typer

from finlora.config import PARAMS_FILE, load_params
from finlora.errors import exit_on_error
from finlora.tasks import TASKS

app = typer.Typer(help="FinLoRA: LoRA/QLoRA fine-tuning for financial NLP, driven by DVC.",
                  no_args_is_help=True, add_completion=False)


@app.command()
def validate(params: Path = typer.Option(Path(PARAMS_FILE), help="params file to check")) -> None:
    """Check params.yaml the way every stage does, without running anything."""
    loaded = load_params(params)
    groups = ", ".join(f"{group} ({', '.join(tasks)})" for group, tasks in loaded.tasks.items())
    typer.echo(f"{params}: valid. groups: {groups}")


@app.command("tasks")
def list_tasks() -> None:
    """List the tasks this project knows, with their labels and public data sets."""
    for task in TASKS.values():
        typer.echo(f"{task.name:10} {task.family:10} {'/'.join(task.labels):32} {task.hub.path}")


def main() -> None:
    exit_on_error(app)


if __name__ == "__main__":
    main()
