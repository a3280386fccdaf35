"""Evaluate one model (the base, or the base plus a group's adapter) on a group's tasks.

Answers are appended to a progress file as they are generated, so an interrupted evaluation
resumes where it stopped (DVC deletes a stage's outputs before rerunning it, so the progress file
lives outside them, in .cache/finlora/, and is removed once the task is done).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from finlora import fewshot, head, models
from finlora.answers import kind
from finlora.bertscore import BertScorer
from finlora.config import Params
from finlora.errors import FinloraError
from finlora.files import read_json, read_jsonl, write_json, write_jsonl
from finlora.generation import answer_batches, first_line
from finlora.metrics import INVALID, TaskScores
from finlora.prompts import prompt_ids
from finlora.protocols import PROTOCOLS, answer_length, todays_answer
from finlora.runtime import peak_memory_bytes
from finlora.scoring import MostCommonAnswer, most_common_answer, score
from finlora.tasks import Task, get_task

PROGRESS_DIR = Path(".cache/finlora/eval")


def evaluate(params: Params, tasks: list[str], base_dir: Path, adapter_dir: Path | None, prepared_dir: Path,
             predictions_dir: Path, metrics_dir: Path, confusion_dir: Path, progress_key: str,
             shots: int = 0) -> dict[str, dict]:
    """Score one model on `tasks`; `shots` > 0: the base model with that many train examples
    before each test prompt (finlora.fewshot)."""
    for task in tasks:
        PROTOCOLS[params.eval.protocol].check_scores(task)
    tests = {task: load_test(prepared_dir / task / "test.jsonl", params.eval.limit) for task in tasks}
    examples = {task: fewshot.choose(get_task(task), read_jsonl(prepared_dir / task / "train.jsonl"), tests[task], shots,
                                  params.few_shot.seed) for task in tasks} if shots else {}
    tokenizer = models.load_tokenizer(base_dir, params.model.chat_template)
    model = models.load_model(base_dir, adapter_dir, params.eval.bits, split_layers=params.eval.device_map == "auto",
                              merge=params.eval.merge_adapter)
    labels = models.head_labels(adapter_dir)  # an adapter with a classification head answers with it
    fingerprint = _fingerprint(params, base_dir, adapter_dir, shots)

    results = {}
    bertscore = BertScoreOnce(params.eval.bertscore_model)
    for task, records in tests.items():
        records, prompts, skipped = _fitting_prompts(params, tokenizer, model, task, records, examples.get(task))
        if not prompts:  # every prompt too long with the shots before it: said, and nothing to score
            results[task] = {"n": 0, "skipped_too_long": skipped, "few_shot": examples[task].summary()}
            write_jsonl(predictions_dir / f"{task}.jsonl", [])
            write_json(metrics_dir / f"{task}.json", results[task])
            continue
        progress = Progress(PROGRESS_DIR / f"{progress_key}-{task}.jsonl", fingerprint)
        start = time.perf_counter()
        answers, new_tokens = _answers(params, model, tokenizer, task, prompts, progress, labels)
        seconds = time.perf_counter() - start
        spec = get_task(task)
        tags = tag_names(prepared_dir / task)
        protocol = PROTOCOLS[params.eval.protocol]
        scored = score(spec, records, [first_line(answer) for answer in answers], tags)
        metrics = {**scored.metrics, "protocol": protocol.name, **prepare_stats(prepared_dir / task)}
        if protocol.commit:
            metrics["protocol_finlora_commit"] = protocol.commit
        if task in examples:
            metrics["few_shot"] = examples[task].summary()
        bar = _most_common_answer(prepared_dir / task, spec, records, tags) if adapter_dir is None else None
        if bar is not None:
            metrics["most_common_answer"] = bar.summary()
        if protocol.score:  # FinLoRA's accuracy and F1 on the whole answers; strict_accuracy stays ours
            metrics.update(protocol.score(spec, kind(spec), records, answers))
        if not kind(spec).has_accuracy and (scorer := bertscore.scorer(task)):
            read = first_line if protocol.first_line_only else todays_answer
            per_example = scorer.f1([read(answer) for answer in answers], [r["target"] for r in records])
            metrics.update(bertscore_f1=round(sum(per_example) / len(per_example), 4), bertscore_model=scorer.name)
        generated = max(1, progress.generated)
        metrics.update(
            skipped_too_long=skipped,
            seconds_per_example=round(seconds / generated, 4),
            generated_tokens_per_s=round(new_tokens / seconds, 1) if seconds > 0 else 0.0,
            peak_memory_gb=round(peak_memory_bytes() / 1e9, 3),
            resumed=len(prompts) - progress.generated,
        )
        rows = [{"context": r["context"], "target": r["target"], "gold": g, "answer": a,
                 "parsed": None if p == INVALID else p, "correct": c}
                for r, g, a, p, c in zip(records, scored.golds, answers, scored.parsed, scored.correct)]
        if bar is not None:  # what `finlora compare most_common ...` and the report pair an adapter with
            for row, correct in zip(rows, bar.scored.correct):
                row["most_common_correct"] = correct
        write_jsonl(predictions_dir / f"{task}.jsonl", rows)
        write_json(metrics_dir / f"{task}.json", metrics)
        if scored.confusion is not None:
            write_json(confusion_dir / f"{task}.json", scored.confusion)
        progress.remove()
        results[task] = metrics
        shown = ", ".join(f"{name} {value:.3f}" for name, value in TaskScores.of(metrics).as_dict().items())
        print(f"{task}: {shown}, n {metrics['n']}")
    return results


def _most_common_answer(task_dir: Path, task: Task, records: list[dict],
                        tags: list[str] | None) -> MostCommonAnswer | None:
    """The bar, scored with the base model (it does not depend on the model): always giving the
    training split's most common answer; None where the group has no training split."""
    train = task_dir / "train.jsonl"
    if not train.is_file() or not (train_records := read_jsonl(train)):
        return None
    return most_common_answer(task, train_records, records, tags)


def tag_names(task_dir: Path) -> list[str] | None:
    """FiNER's tag names, written by preprocess beside the prompts."""
    return read_json(task_dir / "tags.json") if (task_dir / "tags.json").is_file() else None


def prepare_stats(task_dir: Path) -> dict:
    """Test rows preprocess skipped as bad or dropped as over the prompt budget: they count too."""
    if not (task_dir / "stats.json").is_file():
        return {}
    test = read_json(task_dir / "stats.json")["test"]
    return {"skipped_bad_records": test["skipped_bad_records"], "dropped_over_budget": test["dropped_over_budget"]}


def load_test(path: Path, limit: int) -> list[dict]:
    records = read_jsonl(path)
    if not records:
        raise FinloraError(f"{path}: the test split is empty", hint="raise data.test_size or check the source")
    return records[:limit] if limit else records


def _fitting_prompts(params: Params, tokenizer, model, task: str, records: list[dict], shots: fewshot.Shots | None):
    """Prompts (`shots` before each, where given) that fit the model's context with room for the
    answer; the rest are skipped and counted (data.on_bad_record: skip; always where the shots make
    a prompt too long, said in one line, none left included) or stop the stage (error). Never truncated."""
    context = getattr(model.config, "max_position_embeddings", None) or 10**9
    budget = context - answer_length(params.eval, task)
    kept, prompts, skipped = [], [], 0
    for number, record in enumerate(records, start=1):
        ids = prompt_ids(tokenizer, shots.prompt(record["context"]) if shots else record["context"],
                         params.model.chat_template)
        if len(ids) > budget:
            if params.data.on_bad_record == "error" and not shots:
                raise FinloraError(
                    f"task {task}, test record {number}: the prompt has {len(ids)} tokens, more than the "
                    f"model's context of {context} minus {answer_length(params.eval, task)} answer tokens",
                    hint="set data.on_bad_record: skip to skip and count such records")
            skipped += 1
            continue
        kept.append(record)
        prompts.append(ids)
    if not prompts and not shots:
        raise FinloraError(f"task {task}: no test prompt fits the model's context of {context} tokens")
    if shots and skipped:
        print(f"{task}: {skipped} of {len(records)} test prompts with {len(shots.examples)} examples before them "
              f"exceed the model's context of {context} tokens: left out, counted as skipped_too_long", file=sys.stderr)
    return kept, prompts, skipped


def _answers(params: Params, model, tokenizer, task: str, prompts: list[list[int]], progress: "Progress",
             labels: tuple[str, ...] = ()):
    """Answers for every prompt, generated or (`labels`: a classification head) the head's label,
    reusing the ones a previous, interrupted run already wrote; each batch's answers are written
    to the progress file as soon as they exist."""
    keys = [_prompt_key(p) for p in prompts]
    answers = {i: progress.done[key] for i, key in enumerate(keys) if key in progress.done}
    new_tokens = 0
    if labels:
        batches = head.answer_batches(model, prompts, head.allowed(task, labels), labels, params.eval.batch_size,
                                      params.eval.batch_tokens, tokenizer.pad_token_id, done=frozenset(answers))
    else:
        batches = answer_batches(model, tokenizer, prompts, params.eval.batch_size, answer_length(params.eval, task),
                                 batch_tokens=params.eval.batch_tokens,
                                 first_line_only=PROTOCOLS[params.eval.protocol].first_line_only,
                                 prefix_cache=params.eval.prefix_cache, done=frozenset(answers))
    for batch in batches:
        new_tokens += batch.new_tokens
        answers.update(zip(batch.rows, batch.answers))
        progress.append({keys[i]: answers[i] for i in batch.rows})
    return [answers[i] for i in range(len(prompts))], new_tokens


class BertScoreOnce:
    """The BERTScore scorer, loaded at the first free-text task; one that cannot be loaded is said
    once, in one line, and its score left out."""

    def __init__(self, model: str):
        self.model, self.loaded, self.failed = model, None, not model

    def scorer(self, task: str):
        if self.loaded is None and not self.failed:
            try:
                self.loaded = BertScorer(self.model)
            except FinloraError as error:
                self.failed = True
                print(f"{task}: {error.args[0]}; reporting ROUGE-L only", file=sys.stderr)
        return self.loaded


def _prompt_key(ids: list[int]) -> str:
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:24]


def _fingerprint(params: Params, base_dir: Path, adapter_dir: Path | None, shots: int) -> str:
    adapter = ""
    if adapter_dir is not None:
        adapter = hashlib.sha256((adapter_dir / "adapter_model.safetensors").read_bytes()).hexdigest()
    settings = {**asdict(params.eval), "chat_template": params.model.chat_template,
                "few_shot": [shots, params.few_shot.seed] if shots else None}
    settings.pop("limit")
    for batching in ("batch_size", "batch_tokens", "prefix_cache"):
        settings.pop(batching)  # answers do not depend on them (tested)
    return hashlib.sha256(json.dumps([models.base_fingerprint(base_dir), adapter, settings],
                                     sort_keys=True).encode()).hexdigest()


class Progress:
    """Answers written so far for one task, valid only for the same model and settings."""

    def __init__(self, path: Path, fingerprint: str):
        self.path, self.fingerprint, self.generated = path, fingerprint, 0
        self.done: dict[str, str] = {}
        if path.is_file():
            lines = path.read_text().splitlines()
            header = json.loads(lines[0]) if lines else {}
            if header.get("fingerprint") == fingerprint:
                for line in lines[1:]:
                    try:
                        self.done.update(json.loads(line))
                    except json.JSONDecodeError:
                        break  # a line cut short by the interruption: regenerate from there
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.done:
            path.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")

    def append(self, answers: dict[str, str]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(answers) + "\n")
            handle.flush()
        self.generated += len(answers)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
