import json

import pytest

from conftest import params_with
from finlora.errors import FinloraError
from finlora.sources import fetch, hub, local, sample, subsample
from finlora.tasks import TASKS


def test_sample_data_is_deterministic_balanced_and_disjoint():
    first = sample.generate("fpb", 60, 30, seed=7)["splits"]
    assert first == sample.generate("fpb", 60, 30, seed=7)["splits"]
    assert first != sample.generate("fpb", 60, 30, seed=8)["splits"]
    labels = [TASKS["fpb"].example(row).answer for row in first["train"] + first["test"]]
    assert {labels.count(label) for label in ("negative", "neutral", "positive")} == {30}
    train_texts = {row["sentence"] for row in first["train"]}
    assert not train_texts & {row["sentence"] for row in first["test"]}


@pytest.mark.parametrize("task", [name for name, task in TASKS.items() if task.to_example])
def test_every_sample_row_is_valid_for_its_task(task):
    splits = sample.generate(task, 40, 20, seed=1)["splits"]
    assert len(splits["train"]) == 40 and len(splits["test"]) == 20
    answers = {TASKS[task].example(row).answer for row in splits["train"]}
    assert answers == set(TASKS[task].labels)


def test_hub_rows_get_label_names_from_the_classlabel_feature():
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "neutral", "positive"])})
    rows = {"sentence": [f"s{i}" for i in range(8)], "label": [0, 1, 2, 2, 1, 0, 2, 2]}
    loaded = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)})
    splits = hub.splits_from_hub(TASKS["fpb"], loaded, seed=42)
    assert len(splits["test"]) == 2 and len(splits["train"]) == 6  # FinLoRA's 25 % test split
    by_text = {row["sentence"]: row["label"] for row in splits["train"] + splits["test"]}
    assert by_text == {f"s{i}": ["negative", "neutral", "positive"][v] for i, v in enumerate(rows["label"])}


def test_tfns_hub_schema_with_bare_int_labels():
    import datasets

    loaded = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["$A up", "$B down"], "label": [1, 0]}),
        "validation": datasets.Dataset.from_dict({"text": ["$C flat"], "label": [2]}),
    })
    splits = hub.splits_from_hub(TASKS["tfns"], loaded, seed=0)
    assert [TASKS["tfns"].example(r).answer for r in splits["train"]] == ["positive", "negative"]
    assert [TASKS["tfns"].example(r).answer for r in splits["test"]] == ["neutral"]


def test_hub_offline_fails_with_a_clear_message():
    with pytest.raises(FinloraError) as error:
        hub.load(TASKS["tfns"], seed=0)
    message = str(error.value)
    assert "cannot load 'zeroshot/twitter-financial-news-sentiment'" in message
    assert "data.source: sample" in message


def test_local_files_in_the_datasets_own_schema(tmp_path):
    folder = tmp_path / "tfns"
    folder.mkdir()
    (folder / "train.csv").write_text("text,label\n$A beats,1\n$B misses,0\n$C holds,2\n")
    (folder / "test.jsonl").write_text(json.dumps({"text": "$D rallies", "label": 1}) + "\n")
    data = params_with({"data": {"source": "local", "local_dir": str(tmp_path), "train_size": 2, "test_size": 5}}).data
    splits = fetch(TASKS["tfns"], data).splits
    assert len(splits["train"]) == 2 and len(splits["test"]) == 1
    assert TASKS["tfns"].example(splits["test"][0]).answer == "positive"


def test_local_missing_file_names_the_expected_path(tmp_path):
    with pytest.raises(FinloraError, match=r"fpb/train\.\*: file not found"):
        local.load(TASKS["fpb"], tmp_path)


def test_subsample_keeps_order_and_is_seeded():
    rows = [{"i": i} for i in range(100)]
    picked = subsample(rows, 10, seed=3)
    assert picked == subsample(rows, 10, seed=3)
    assert [r["i"] for r in picked] == sorted(r["i"] for r in picked)
    assert subsample(rows, 500, seed=3) == rows
