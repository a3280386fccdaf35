"""DVC stage preprocess@<group>: raw rows -> {"context", "target"} records in the paper's format."""

from pathlib import Path

import typer

from finlora.config import load_params
from finlora.errors import FinloraError, exit_on_error
from finlora.files import atomic_dir, read_jsonl, write_jsonl
from finlora.prompts import build_context
from finlora.tasks import Task, get_task


def to_record(task: Task, row: dict) -> dict:
    """One prompt record; rows already in FinLoRA's {"context", "target"} form pass through."""
    if "context" in row and "target" in row:
        target = str(row["target"]).strip().lower()
        if target not in task.labels:
            raise FinloraError(f"target {row['target']!r} is not a {task.name} label",
                               hint=f"valid labels: {', '.join(task.labels)}")
        return {"context": row["context"], "target": target}
    example = task.example(row)
    return {"context": build_context(example), "target": example.answer}


def prepare_file(task: Task, path: Path) -> list[dict]:
    records = []
    for line, row in enumerate(read_jsonl(path), start=1):
        try:
            records.append(to_record(task, row))
        except FinloraError as error:
            raise FinloraError(f"{path}:{line}: {error}") from None
    return records


def main(group: str = typer.Argument(help="task group from params.yaml `tasks`"),
         raw: Path = typer.Argument(help="raw data folder written by download"),
         out: Path = typer.Argument(help="folder to write <task>/{train,test}.jsonl into")) -> None:
    """Build the prompts of every task of GROUP."""
    params = load_params()
    with atomic_dir(out) as tmp:
        for name in params.group_tasks(group):
            for split in ("train", "test"):
                records = prepare_file(get_task(name), raw / name / f"{split}.jsonl")
                write_jsonl(tmp / name / f"{split}.jsonl", records)
            print(f"{name}: prompts written")


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
