"""DVC stage download@<group>: each task's raw train/test rows, in the data set's own schema."""

from pathlib import Path

import typer

from finlora import sources
from finlora.config import load_params
from finlora.errors import exit_on_error
from finlora.files import atomic_dir, write_json, write_jsonl
from finlora.tasks import get_task


def main(group: str = typer.Argument(help="task group from params.yaml `tasks`"),
         out: Path = typer.Argument(help="folder to write <task>/{train,test}.jsonl into")) -> None:
    """Fetch raw data from data.source (sample | hub | local) for every task of GROUP."""
    params = load_params()
    tasks = params.group_tasks(group)
    with atomic_dir(out) as tmp:
        for name in tasks:
            task = get_task(name)
            splits = sources.fetch(task, params.data)
            for split, rows in splits.items():
                write_jsonl(tmp / name / f"{split}.jsonl", rows)
            write_json(tmp / name / "source.json",
                       {**sources.describe(task, params.data), **{split: len(rows) for split, rows in splits.items()}})
            print(f"{name}: {len(splits['train'])} train, {len(splits['test'])} test from {params.data.source}")


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
