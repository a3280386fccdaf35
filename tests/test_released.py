"""FinLoRA's released data files through `data.source: finlora`: hand-written fixtures in the
published formats (tests/fixtures/finlora/data: classification prompts, NWGI's seven levels, FiNER
batched prompts, XBRL one-shot prompts with doc_path and one shared XBRL train file, a task with a
test file only), and the sample generator's data written in the same layout."""

import json
import shutil

import pytest

from conftest import REPO, params_with
from finlora.errors import FinloraError
from finlora.answers import kind
from finlora.prepare import prepare
from finlora.sources import fetch
from finlora.sources.sample_released import write_sample
from finlora.tasks import NWGI_LEVELS, TASKS

FIXTURE = REPO / "tests" / "fixtures" / "finlora"


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def finlora_data(folder, **data):
    return params_with({"data": {"source": "finlora", "local_dir": str(folder), "train_size": 100,
                                 "test_size": 100, "sizes": {}, **data}})


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_loads_the_published_files_unchanged(task):
    params = finlora_data(FIXTURE)  # a FinLoRA clone: the data/ folder is found below it
    raw = fetch(TASKS[task], params.data)
    test_file = FIXTURE / "data" / "test" / next(n for n in TASKS[task].released.test
                                                 if (FIXTURE / "data" / "test" / n).is_file())
    if task == "fiqa":  # a test file only: half of it (seeded) trains, the rest tests
        assert len(raw.splits["train"]) == len(raw.splits["test"]) == 3
        assert sorted(map(json.dumps, raw.splits["train"] + raw.splits["test"])) == \
            sorted(map(json.dumps, lines(test_file)))
        assert "carved" in raw.origin and raw.origin["train_file"] is None
    else:
        assert raw.splits["test"] == lines(test_file)  # every record, as published, in file order
    records = prepare(TASKS[task], raw.splits["test"], test_file, params, raw.tag_names).records
    # the published prompts, named by their task (model.task_marker: true)
    assert [r["context"] for r in records] == [f"Task: {task}\n{row['context']}" for row in raw.splits["test"]]


def test_a_shared_train_file_is_split_by_the_form_of_its_targets():
    params = finlora_data(FIXTURE / "data")
    tags = fetch(TASKS["xbrl_tags"], params.data).splits["train"]
    values = fetch(TASKS["xbrl_value"], params.data).splits["train"]
    shared = lines(FIXTURE / "data" / "train" / "xbrl_extract_train.jsonl")
    assert [r["target"] for r in tags] == ["us-gaap:Assets", "us-gaap:EarningsPerShareDiluted"]
    assert [r["target"] for r in values] == ["48200000000", "6120000000", "7350000000"]
    assert len(tags) + len(values) == len(shared)


def test_nwgi_trains_on_seven_levels_and_is_scored_on_three():
    params = finlora_data(FIXTURE)
    rows = fetch(TASKS["nwgi"], params.data).splits["test"]
    records = prepare(TASKS["nwgi"], rows, FIXTURE, params).records
    assert [(r["target"], r["label"]) for r in records] == [
        ("strong positive", "positive"), ("moderately negative", "negative"), ("moderately positive", "positive")]
    answers = ["mildly positive", "neutral", "Positive."]
    scored = kind(TASKS["nwgi"]).score(TASKS["nwgi"], records, answers)
    assert scored.parsed == ["positive", "neutral", "positive"]
    assert scored.metrics["strict_accuracy"] == round(2 / 3, 4)


def test_finer_batches_are_scored_per_entity_with_the_listed_tag_names():
    params = finlora_data(FIXTURE)
    raw = fetch(TASKS["finer"], params.data)
    assert raw.tag_names[:3] == ["Revenues", "DebtInstrumentFaceAmount", "LongTermDebt"]
    assert len(raw.tag_names) == 11  # the list's leading empty item is not a tag
    records = prepare(TASKS["finer"], raw.splits["test"], FIXTURE, params, raw.tag_names).records
    assert [r["tags"] for r in records] == [
        ["CommonStockSharesAuthorized", "EffectiveIncomeTaxRateContinuingOperations", "AmortizationOfIntangibleAssets"],
        ["DebtInstrumentFaceAmount"]]
    answers = ["CommonStockSharesAuthorized, Revenues,AmortizationOfIntangibleAssets", "LongTermDebt"]
    scored = kind(TASKS["finer"]).score(TASKS["finer"], records, answers, raw.tag_names)
    assert scored.metrics["n"] == 4 and scored.metrics["strict_accuracy"] == 0.5


@pytest.mark.parametrize("task, line, bad, message", [
    ("fpb", 2, {"context": "Instruction: x\nAnswer: ", "target": "bullish"}, "target 'bullish' is not a fpb label"),
    ("nwgi", 1, {"context": "Instruction: x\nAnswer: ", "target": "very negative"}, "one of the 7 levels"),
    ("xbrl_value", 1, {"context": "Question: x\nAnswer:", "target": "about 4 billion"}, "is not a number"),
    ("fpb", 3, {"target": "neutral"}, "record has no 'context' prompt text"),
])
def test_a_bad_record_names_its_file_and_line_or_is_skipped_and_counted(tmp_path, task, line, bad, message):
    shutil.copytree(FIXTURE / "data", tmp_path / "data")
    name = TASKS[task].released.test[0]
    path = tmp_path / "data" / "test" / name
    rows = lines(path)
    rows.insert(line - 1, bad)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(FinloraError, match=f"(?s){name}:{line}: .*{message}"):
        fetch(TASKS[task], finlora_data(tmp_path).data)
    raw = fetch(TASKS[task], finlora_data(tmp_path, on_bad_record="skip").data)
    assert raw.origin["skipped_bad_records"] == {name: 1} and bad not in raw.splits["test"]


def test_a_folder_without_finlora_data_is_named():
    with pytest.raises(FinloraError, match="no FinLoRA data folder"):
        fetch(TASKS["fpb"], finlora_data(REPO / "src").data)


def test_the_sample_data_written_in_the_released_layout_loads_for_every_task(tmp_path):
    params = finlora_data(tmp_path)
    written = write_sample(tmp_path, params, n_train=6, n_test=4)
    assert written["train/fpb_train.jsonl"] == 6 and written["test/ner-test.jsonl"] == 4
    for task in TASKS.values():
        raw = fetch(task, params.data)
        assert raw.origin["train_file"] is not None and raw.splits["train"] and raw.splits["test"]
        prepared = prepare(task, raw.splits["test"], tmp_path, params, raw.tag_names)
        assert len(prepared.records) == len(raw.splits["test"]) and prepared.skipped_bad_records == 0
    nwgi = lines(tmp_path / "train" / "nwgi_train.jsonl")
    assert {r["target"] for r in nwgi} <= set(NWGI_LEVELS) and "mildly" in nwgi[0]["context"]
