"""FiNER-139: tag names from the data set's features, highlighting, batching, scoring."""

import itertools
from pathlib import Path

import pytest

from conftest import params_with
from finlora.errors import FinloraError
from finlora.metrics import score_tag_lists
from finlora.finer import entities, finer_records
from finlora.prepare import prepare
from finlora.rows import BadRecords
from finlora import samples
from finlora.sources import hub
from finlora.tasks import TASKS

TAGS = ["Revenues", "LongTermDebt", "DebtInstrumentFaceAmount"]


def params(**overrides):
    return params_with({"tasks": {"finer": ["finer"]}, **overrides})


IDS = itertools.count()


def row(tokens: str, tags: str) -> dict:
    return {"id": str(next(IDS)), "tokens": tokens.split(), "ner_tags": tags.split()}


def always_fits(context, target):
    return True


def test_tag_names_come_from_the_classlabel_feature_not_positions():
    import datasets

    names = ["O", "B-LongTermDebt", "I-LongTermDebt", "B-Revenues", "I-Revenues"]  # not FiNER's order
    features = datasets.Features({"id": datasets.Value("string"),
                                  "tokens": datasets.List(datasets.Value("string")),
                                  "ner_tags": datasets.List(datasets.ClassLabel(names=names))})
    split = datasets.Dataset.from_list([{"id": "7", "tokens": ["debt", "of", "$", "12.5", "million"],
                                         "ner_tags": [0, 0, 0, 1, 0]}], features=features)
    loaded = datasets.DatasetDict({"train": split, "test": split})
    assert hub.tag_names(TASKS["finer"], loaded) == ["LongTermDebt", "Revenues"]
    rows = hub.splits_from_hub(TASKS["finer"], loaded, seed=0)["train"]
    assert rows[0]["ner_tags"] == ["O", "O", "O", "B-LongTermDebt", "O"]


def test_highlighting_merges_b_and_i_runs_into_entities():
    found = entities("revenue of 1.2 billion and debt of 300 400 500".split(),
                     "O O B-Revenues I-Revenues O O O B-LongTermDebt B-LongTermDebt I-LongTermDebt".split(), TAGS)
    assert found == [("1.2 billion", "Revenues"), ("300", "LongTermDebt"), ("400 500", "LongTermDebt")]
    assert entities(["7", "8"], ["I-Revenues", "I-LongTermDebt"], TAGS) == [("7", "Revenues"), ("8", "LongTermDebt")]


@pytest.mark.parametrize("tokens, tags, message", [
    ("a b c", "O O", "3 tokens but 2 ner_tags"),
    ("a b", "O B-Goodwill", "tag 'B-Goodwill' is not in the label set"),
    ("a b", "O X-Revenues", "tag 'X-Revenues' is not in the label set"),
])
def test_bad_rows_are_named(tokens, tags, message):
    with pytest.raises(FinloraError, match=message):
        entities(tokens.split(), tags.split(), TAGS)


def test_each_entity_is_a_question_quoting_the_sentence_and_prompts_batch_k():
    rows = [row("Revenues were $ 10 and debt was $ 20 and notes of $ 30 .",
                "O O O B-Revenues O O O O B-LongTermDebt O O O O B-DebtInstrumentFaceAmount O"),
            row("Debt of $ 40 .", "O O O B-LongTermDebt O")]
    prepared = prepare(TASKS["finer"], rows, Path("f.jsonl"), params(finer={"entities_per_sentence": 2,
                                                                               "questions_per_prompt": 2}),
                       TAGS, fits=always_fits)
    first, second = prepared.records
    assert first["tags"] == ["Revenues", "LongTermDebt"] and first["target"] == "Revenues, LongTermDebt"
    assert second["tags"] == ["LongTermDebt"]  # the third entity of sentence 1 is past N = 2
    assert ('1. What is best tag for entity "10" in sentence: "Revenues were $ 10 and debt was $ 20 and '
            'notes of $ 30 .?"\n2. What is best tag for entity "20"') in first["context"]
    assert "Choose from: Revenues, LongTermDebt, DebtInstrumentFaceAmount." in first["context"]
    assert "Answer with 2 tags in the order of the questions" in first["context"]
    assert first["context"].endswith("Answer: ")


def test_prompts_hold_fewer_questions_where_k_would_not_fit():
    questions = [(f"question {i}", TAGS[i % 3]) for i in range(7)]
    fits = lambda context, target: context.count("question ") <= 3  # noqa: E731
    records = finer_records(questions, TAGS, 4, fits, BadRecords(Path("f"), "error"))
    assert [len(r["tags"]) for r in records] == [3, 3, 1]
    assert all("Choose from: Revenues, LongTermDebt, DebtInstrumentFaceAmount." in r["context"] for r in records)


def test_a_question_that_never_fits_stops_or_is_skipped():
    questions = [("short", "Revenues"), ("x" * 50, "Goodwill"), ("short", "Revenues")]
    fits = lambda context, target: "x" * 50 not in context  # noqa: E731
    with pytest.raises(FinloraError, match="^f: question 2: even alone"):
        finer_records(questions, TAGS, 4, fits, BadRecords(Path("f"), "error"))
    counted = BadRecords(Path("f"), "skip")
    records = finer_records(questions, TAGS, 4, fits, counted)
    assert [r["tags"] for r in records] == [["Revenues"], ["Revenues"]] and counted.skipped == 1


def test_the_real_tokenizer_keeps_prompts_within_max_seq_len(tokenizer_dir):
    from transformers import AutoTokenizer

    from finlora.prepare import fits_in
    from finlora.prompts import training_ids

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    raw = samples.generate("finer", 24, 1, seed=0)
    for max_seq_len in (1024, 400):
        fits = fits_in(tokenizer, max_seq_len, chat_template=True)
        prepared = prepare(TASKS["finer"], raw["splits"]["train"], Path("f"), params(), raw["tag_names"], fits=fits)
        lengths = [len(training_ids(tokenizer, r["context"], r["target"], True)[0]) for r in prepared.records]
        assert max(lengths) <= max_seq_len  # with the task marker (model.task_marker) each prompt starts with
        assert all(r["context"].startswith("Task: finer\nInstruction: ") for r in prepared.records)
        sizes = [len(r["tags"]) for r in prepared.records]
        assert (max(sizes) == 4) == (max_seq_len == 1024)  # 4 questions do not fit in 400 tokens


def test_sample_is_in_finer_schema_deterministic_and_disjoint():
    raw = samples.generate("finer", 40, 20, seed=1)
    assert raw == samples.generate("finer", 40, 20, seed=1)
    assert raw["tag_names"][:2] == ["Revenues", "LongTermDebt"] and len(raw["tag_names"]) == 16
    train = {" ".join(r["tokens"]) for r in raw["splits"]["train"]}
    assert not train & {" ".join(r["tokens"]) for r in raw["splits"]["test"]}
    for r in raw["splits"]["train"]:
        assert set(r) == {"id", "tokens", "ner_tags"} and 1 <= len(entities(r["tokens"], r["ner_tags"], raw["tag_names"])) <= 3


def test_bad_rows_in_a_split_name_file_and_line_or_are_skipped():
    rows = [row("a $ 1", "O O B-Revenues"), row("a b", "O"), row("c $ 2", "O O B-Goodwill")]
    with pytest.raises(FinloraError, match=r"f\.jsonl:2: 2 tokens but 1 ner_tags"):
        prepare(TASKS["finer"], rows, Path("f.jsonl"), params(), TAGS, fits=always_fits)
    prepared = prepare(TASKS["finer"], rows, Path("f.jsonl"), params(data={"on_bad_record": "skip"}), TAGS,
                       fits=always_fits)
    assert prepared.skipped_bad_records == 2 and prepared.records[0]["tags"] == ["Revenues"]


def test_scoring_is_per_entity_aligned_by_position():
    gold_lists = [["Revenues", "LongTermDebt", "DebtInstrumentFaceAmount"], ["Revenues"]]
    answers = ["us-gaap:Revenues,  longtermdebt", "Goodwill"]  # third tag missing; unknown tag
    scored = score_tag_lists(answers, gold_lists, TAGS)
    assert scored.metrics["n"] == 4 and scored.metrics["prompts"] == 2
    assert scored.metrics["strict_accuracy"] == 0.5
    assert scored.metrics["invalid_rate"] == 0.5  # the missing answer and the unknown tag
    assert scored.parsed == [["Revenues", "LongTermDebt", "invalid"], ["invalid"]]
    assert {"actual": "Revenues", "predicted": "invalid"} in scored.confusion
    assert score_tag_lists(["Revenues, Revenues"], [["Revenues", "LongTermDebt"]], TAGS).metrics["f1_weighted"] < 1
