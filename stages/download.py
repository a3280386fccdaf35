"""DVC stage download@<group>: each task's raw train/test rows, in the data set's own schema."""

import hashlib
from pathlib import Path

import typer

from finlora import sources
from finlora.config import load_params
from finlora.errors import exit_on_error
from finlora.files import atomic_dir, write_json, write_jsonl
from finlora.tasks import get_task


def main(group: str = typer.Argument(help="task group from params.yaml `tasks`"),
         out: Path = typer.Argument(help="folder to write <task>/{train,test}.jsonl into")) -> None:
    """Fetch raw data from data.source (sample | hub | local) for every task of GROUP.

    Beside the rows: FiNER's tag names (tags.json) and the XBRL filings the questions name
    (filings/), and source.json with where the data came from and how much there is.
    """
    params = load_params()
    tasks = params.group_tasks(group)
    sources.source_of(params.data).check(params)  # every group's files, so a bad one stops the first download
    announced: set[str] = set()
    with atomic_dir(out) as tmp:
        for name in tasks:
            task = get_task(name)
            raw = sources.fetch(task, params.data)
            for split, rows in raw.splits.items():
                write_jsonl(tmp / name / f"{split}.jsonl", rows)
            if raw.tag_names is not None:
                write_json(tmp / name / "tags.json", raw.tag_names)
            for filing, content in raw.filings.items():
                (tmp / name / "filings").mkdir(parents=True, exist_ok=True)
                (tmp / name / "filings" / filing).write_bytes(content)
            counts = {split: len(rows) for split, rows in raw.splits.items()}
            write_json(tmp / name / "source.json", {**sources.describe(task, params.data, raw), **counts,
                                                    "filings": len(raw.filings), "sha256": file_hashes(tmp / name)})
            print(f"{name}: {counts['train']} train, {counts['test']} test from {params.data.source}"
                  + (f", {len(raw.filings)} filings" if raw.filings else ""))
            for file, read in raw.origin.get("shared_file", {}).items():
                if read.get("not told apart") and file not in announced:
                    announced.add(file)
                    print(f"{file}: {sum(read['not told apart'].values())} records not told apart, left out: "
                          + "; ".join(f"{n} {why}" for why, n in read["not told apart"].items()))


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file written for a task: what exactly was trained and tested on."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
