import json

import pytest

from conftest import params_with
from finlora.errors import FinloraError
from finlora import samples
from finlora.sources import fetch, hub, local, subsample
from finlora.tasks import TASKS


def test_sample_data_is_deterministic_disjoint_and_in_the_real_label_shares():
    first = samples.generate("fpb", 100, 40, seed=7)["splits"]
    assert first == samples.generate("fpb", 100, 40, seed=7)["splits"]
    assert first != samples.generate("fpb", 100, 40, seed=8)["splits"]
    train = [TASKS["fpb"].example(row).answer for row in first["train"]]
    test = [TASKS["fpb"].example(row).answer for row in first["test"]]
    # FPB's real test file: 65 % neutral, 26 % positive, 9 % negative (largest remainders per split)
    assert [train.count(label) for label in ("negative", "neutral", "positive")] == [9, 65, 26]
    assert [test.count(label) for label in ("negative", "neutral", "positive")] == [4, 26, 10]
    nwgi = [row["label"] for row in samples.generate("nwgi", 100, 1, seed=1)["splits"]["train"]]
    assert nwgi.count("moderately positive") == 38 and nwgi.count("strong positive") == 1
    train_texts = {row["sentence"] for row in first["train"]}
    assert not train_texts & {row["sentence"] for row in first["test"]}


@pytest.mark.parametrize("task", [name for name, task in TASKS.items() if task.to_example])
def test_every_sample_row_is_valid_for_its_task(task):
    splits = samples.generate(task, 40, 20, seed=1)["splits"]
    assert len(splits["train"]) == 40 and len(splits["test"]) == 20
    answers = {TASKS[task].example(row).answer for row in splits["train"]}
    assert answers == set(TASKS[task].labels)


def test_sample_ner_names_do_not_give_their_type_away():
    rows = samples.generate("ner", 400, 0, seed=1)["splits"]["train"]
    types: dict[str, set] = {}
    for row in rows:
        entity = row["instruction"].split("'")[1]
        assert row["input"].count(entity) == 1  # one mention, not inside another name
        types.setdefault(entity, set()).add(row["output"])
    words = {label: {word for name, labels in types.items() if label in labels for word in name.split()}
             for label in ("location", "organization", "person")}
    assert any(len(labels) > 1 for labels in types.values())  # one name, two types ("Victoria")
    assert words["person"] & words["location"] and words["organization"] & words["person"]


def test_sample_news_is_hedged_mixed_or_plain_figures_as_real_news_is():
    rows = samples.generate("fpb", 400, 0, seed=1)["splits"]["train"]
    mixed = [row for row in rows if row["sentence"].startswith("Despite") or ", but " in row["sentence"]]
    hedged = [row for row in rows if " expects " in row["sentence"] or " could " in row["sentence"]
              or " is likely to " in row["sentence"]]
    figures = [row for row in rows if "EUR" in row["sentence"]]
    # a concession against the label, an outlook of either direction, figures without a direction
    assert {row["label"] for row in mixed} == {"positive", "negative"}
    assert {"positive", "negative"} <= {row["label"] for row in hedged}
    assert {row["label"] for row in figures} == {"neutral"} and len(figures) > 20


def test_hub_rows_get_label_names_from_the_classlabel_feature():
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "neutral", "positive"])})
    rows = {"sentence": [f"s{i}" for i in range(8)], "label": [0, 1, 2, 2, 1, 0, 2, 2]}
    loaded = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)})
    splits = hub.splits_from_hub(TASKS["fpb"], loaded, seed=42)
    finlora_test = loaded["train"].train_test_split(seed=42)["test"]  # FinLoRA's own call
    assert [row["sentence"] for row in splits["test"]] == finlora_test["sentence"] and len(splits["train"]) == 6
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
        hub.load(TASKS["fpb"], seed=0)
    message = str(error.value)
    assert "cannot reach 'financial_phrasebank' revision refs/convert/parquet (its parquet conversion)" in message
    assert "data.source: finlora" in message and "sample" in message


def test_fiqa_test_split_is_drawn_as_finlora_draws_it():
    import datasets

    parts = {name: datasets.Dataset.from_dict({"sentence": [f"{name}{i}" for i in range(n)],
                                               "sentiment_score": [0.5] * n, "format": ["post"] * n})
             for name, n in (("train", 40), ("validation", 10), ("test", 12))}
    splits = hub.splits_from_hub(TASKS["fiqa"], datasets.DatasetDict(parts), seed=42)
    pooled = datasets.concatenate_datasets([parts["train"], parts["validation"], parts["test"]])
    expected = pooled.train_test_split(0.226, seed=42)  # FinLoRA's evaluation code
    assert [r["sentence"] for r in splits["test"]] == expected["test"]["sentence"]
    assert len(splits["train"]) + len(splits["test"]) == 62


def test_a_loading_script_data_set_is_read_from_its_parquet_copy(tmp_path, monkeypatch):
    """The Hub's parquet conversion lays a config's splits out as <config>/<split>/NNNN.parquet,
    with the ClassLabel features in the files' metadata."""
    import dataclasses

    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "neutral", "positive"])})
    rows = datasets.Dataset.from_dict({"sentence": [f"s{i}" for i in range(12)], "label": [i % 3 for i in range(12)]},
                                      features=features)
    (tmp_path / "sentences_50agree" / "train").mkdir(parents=True)
    rows.to_parquet(tmp_path / "sentences_50agree" / "train" / "0000.parquet")
    task = dataclasses.replace(TASKS["fpb"], hub=dataclasses.replace(TASKS["fpb"].hub, path=str(tmp_path)))
    monkeypatch.setattr(hub, "resolve_commit", lambda task, revision: "0123abc")
    loaded = hub.load(task, seed=42)
    assert loaded["origin"] == {"dataset": str(tmp_path), "config": "sentences_50agree",
                                "revision": "refs/convert/parquet", "commit": "0123abc", "parquet_copy": True}
    assert len(loaded["splits"]["test"]) == 3
    names = ["negative", "neutral", "positive"]
    assert all(row["label"] == names[int(row["sentence"][1:]) % 3] for row in loaded["splits"]["train"])


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
