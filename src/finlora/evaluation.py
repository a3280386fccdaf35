"""Evaluate one model (the base, or the base plus a group's adapter) on a group's tasks."""

from __future__ import annotations

import time
from pathlib import Path

from finlora import models
from finlora.config import Params
from finlora.errors import FinloraError
from finlora.files import read_jsonl, write_json, write_jsonl
from finlora.generation import generate_answers
from finlora.metrics import parse_label, score
from finlora.prompts import prompt_ids
from finlora.tasks import get_task


def evaluate(params: Params, tasks: list[str], base_dir: Path, adapter_dir: Path | None,
             prepared_dir: Path, predictions_dir: Path, metrics_dir: Path) -> dict[str, dict]:
    tests = {task: load_test(prepared_dir / task / "test.jsonl", params.eval.limit) for task in tasks}
    tokenizer = models.load_tokenizer(base_dir)
    model = models.load_base(base_dir)
    if adapter_dir is not None:
        model = models.load_adapter(model, adapter_dir)
    model.eval()

    results = {}
    for task, records in tests.items():
        labels = get_task(task).labels
        prompts = [prompt_ids(tokenizer, r["context"], params.model.chat_template) for r in records]
        start = time.perf_counter()
        answers = generate_answers(model, tokenizer, prompts, params.eval.batch_size, params.eval.max_new_tokens)
        seconds = time.perf_counter() - start
        golds = [r["target"] for r in records]
        metrics = score(answers, golds, labels)
        metrics["seconds_per_example"] = round(seconds / len(records), 4)
        write_jsonl(predictions_dir / f"{task}.jsonl", [
            {"context": r["context"], "target": r["target"], "answer": a, "parsed": parse_label(a, labels)}
            for r, a in zip(records, answers)
        ])
        write_json(metrics_dir / f"{task}.json", metrics)
        results[task] = metrics
        print(f"{task}: accuracy {metrics['accuracy']:.3f}, strict {metrics['strict_accuracy']:.3f}, "
              f"F1 {metrics['f1_weighted']:.3f}, n {metrics['n']}")
    return results


def load_test(path: Path, limit: int) -> list[dict]:
    records = read_jsonl(path)
    if not records:
        raise FinloraError(f"{path}: the test split is empty", hint="raise data.test_size or check the source")
    return records[:limit] if limit else records
