"""The sample generator's data written in FinLoRA's released layout, so that the released-files
path (`data.source: finlora`) runs offline and in the tests: `finlora write-sample OUT`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from finlora.answers import kind
from finlora.config import Params
from finlora.files import write_jsonl
from finlora.prepare import prepare
from finlora.prompts import Example, build_context, sentiment_instruction
from finlora.sources import sample
from finlora.tasks import TASKS


def write_sample(out: Path, params: Params, n_train: int, n_test: int) -> dict[str, int]:
    """The sample generator's data for every task, prompted as preprocess prompts it, written in
    FinLoRA's released layout (<out>/train/<name>, <out>/test/<name>): so the released-files path
    runs offline too. Returns the records written per file."""
    written = {}
    for task in TASKS.values():
        raw = sample.generate(task.name, n_train, n_test, params.data.seed)
        with tempfile.TemporaryDirectory() as filings:
            for name, content in raw.get("filings", {}).items():
                (Path(filings) / name).write_bytes(content)
            for split, names in (("train", task.released.train), ("test", task.released.test)):
                rows = raw["splits"][split]
                records = prepare(task, rows, Path(f"{task.name}/{split}"), params, raw.get("tag_names"),
                                  Path(filings), fits=lambda context, target: True).records
                if task.levels:  # FinLoRA's NWGI asks for, and answers with, the seven levels
                    instruction = sentiment_instruction(tuple(task.levels))
                    records = [{"context": build_context(Example(instruction, row["news"], "")), "target": row["label"]}
                               for row in rows]
                if kind(task).needs_filings:  # the filing a question came from, as FinLoRA records it
                    records = [{**r, "doc_path": row["filing"]} for r, row in zip(records, rows)]
                path = out / split / names[0]
                write_jsonl(path, [{key: r[key] for key in ("context", "target", "doc_path") if key in r}
                                   for r in records])
                written[str(path.relative_to(out))] = len(records)
    return written
