"""Each kind of answer (finlora.answers) is one object: the records it builds from raw rows and
from FinLoRA's released records agree, and its strict accuracy counts the answers it marks correct."""

from pathlib import Path

import pytest

from conftest import params_with, write_filings
from finlora.answers import kind, released_record
from finlora.scoring import most_common_answer, score
from finlora.prepare import prepare
from finlora import samples
from finlora.tasks import TASKS

PARAMS = params_with({})


def sample_records(name: str, folder: Path) -> list[dict]:
    """The sample generator's test rows of a task, prepared from the data set's own schema (the
    filings XBRL questions name written to `folder`)."""
    raw = samples.generate(name, 6, 6, seed=3)
    write_filings(raw, folder)
    return prepare(TASKS[name], raw["splits"]["test"], folder / "test.jsonl", PARAMS, raw.get("tag_names"),
                   folder, fits=lambda context, target: True).records


def scored_gold(record: dict):
    """What a record's answer is scored against: its label, its tags, or its target."""
    return record.get("tags", record.get("label", record["target"]))


@pytest.mark.parametrize("name", list(TASKS))
def test_raw_rows_and_released_records_give_the_same_scoring_fields(name, tmp_path):
    task = TASKS[name]
    records = sample_records(name, tmp_path)
    assert records
    for record in records:
        released = released_record(task, {"context": record["context"], "target": record["target"]})
        assert released["context"] == record["context"]
        assert scored_gold(released) == scored_gold(record)


@pytest.mark.parametrize("name", list(TASKS))
def test_gold_answers_score_one_and_strict_accuracy_counts_the_correct_ones(name, tmp_path):
    task = TASKS[name]
    records = sample_records(name, tmp_path)
    golds = [record["target"] for record in records]
    tag_names = [tag for record in records for tag in record.get("tags", [])]
    headline = "strict_accuracy" if kind(task).has_accuracy else "rouge_l"  # free text: scored by overlap
    perfect = score(task, records, golds, tag_names)
    assert perfect.metrics[headline] == 1.0

    wrong = "9" if task.answer == "value" else "unknown"  # a number never filed, or no label or tag
    answers = [gold if i % 2 == 0 else wrong for i, gold in enumerate(golds)]
    scored = score(task, records, answers, tag_names)
    # counted by hand: every entity of an even record right, every one of an odd record wrong
    entities = [len(r.get("tags", [None])) for r in records]
    expected = sum(n for i, n in enumerate(entities) if i % 2 == 0) / sum(entities)
    assert scored.metrics[headline] == round(expected, 4)
    flat = [c for cs in scored.correct for c in (cs if isinstance(cs, list) else [cs])]
    assert sum(flat) / len(flat) == pytest.approx(expected)


def test_which_tasks_have_f1_accuracy_label_sets_filings_and_tag_lists():
    assert {name for name, task in TASKS.items() if not kind(task).has_f1} == {
        "xbrl_value", "xbrl_formula", "formula", "xbrl_term", "financebench"}
    assert {name for name, task in TASKS.items() if not kind(task).has_accuracy} == {"xbrl_term", "financebench"}
    assert {name for name, task in TASKS.items() if task.labels} == {"fpb", "fiqa", "tfns", "nwgi", "headline", "ner", "yelp"}
    assert {name for name, task in TASKS.items() if task.reads_filings} == {"xbrl_tags", "xbrl_value", "xbrl_formula"}
    assert {name for name, task in TASKS.items() if task.lists_tag_names} == {"finer", "fnxl"}
    assert {name for name, task in TASKS.items() if kind(task).several_per_prompt} == {"finer", "fnxl"}


def records_of(golds: list, field: str = "target") -> list[dict]:
    return [{"context": "", "target": ",".join(g) if isinstance(g, list) else g, field: g} for g in golds]


@pytest.mark.parametrize("name, train, test, answer, correct", [
    # counted by hand: the training split's mode, given for every test record (FiNER: every entity)
    ("fpb", ["neutral", "neutral", "positive"], ["neutral", "positive", "negative", "neutral"], "neutral",
     [True, False, False, True]),
    ("finer", [["DebtInstrumentFaceAmount", "SharePrice"], ["SharePrice"], ["Revenues"]],
     [["SharePrice", "Revenues"], ["DebtInstrumentFaceAmount", "SharePrice", "SharePrice"]], "SharePrice",
     [[True, False], [False, True, True]]),
    ("xbrl_tags", ["us-gaap:NetIncomeLoss", "us-gaap:Revenues", "us-gaap:NetIncomeLoss"],
     ["us-gaap:Revenues", "us-gaap:NetIncomeLoss", "us-gaap:Assets"], "us-gaap:NetIncomeLoss", [False, True, False]),
    ("xbrl_value", ["100", "7", "100"], ["100", "5"], "100", [True, False]),
])
def test_most_common_answer_scores_the_training_mode_given_every_time(name, train, test, answer, correct):
    field = {"finer": "tags", "fpb": "label"}.get(name, "target")
    tag_names = ["DebtInstrumentFaceAmount", "Revenues", "SharePrice"]
    bar = most_common_answer(TASKS[name], records_of(train, field), records_of(test, field), tag_names)
    assert bar.answer == answer and bar.scored.correct == correct
    units = [c for record in correct for c in (record if isinstance(record, list) else [record])]
    assert bar.summary()["answer"] == answer
    assert bar.summary()["strict_accuracy"] == round(sum(units) / len(units), 4)  # 0.5, 0.6, 0.3333, 0.5
