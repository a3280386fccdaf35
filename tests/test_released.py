"""FinLoRA's released data files through `data.source: finlora`: hand-written fixtures in today's
layout (tests/fixtures/finlora/data: one sentiment train file for four tasks with TFNS's labels as
FinLoRA publishes them, NWGI's seven levels, FiNER batched prompts, XBRL one-shot prompts with
doc_path in one train file with a formula question), and the sample generator's data written in
each older release's layout."""

import dataclasses
import json
import shutil

import pytest

from conftest import REPO, params_with
from finlora.errors import FinloraError
from finlora.prepare import prepare
from finlora.scoring import score
from finlora.sources import describe, fetch, hub, released
from finlora.sample_release import release_named, write_sample
from finlora.tasks import NWGI_LEVELS, TASKS

FIXTURE = REPO / "tests" / "fixtures" / "finlora"
DATA = FIXTURE / "data"
SENTIMENT = ("fpb", "fiqa", "tfns", "nwgi")
XBRL = ("xbrl_tags", "xbrl_value", "xbrl_formula")


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def finlora_data(folder, **data):
    return params_with({"data": {"source": "finlora", "local_dir": str(folder), "train_size": 100,
                                 "test_size": 100, "sizes": {}, **data}})


def load(task, folder=FIXTURE, **data):
    return fetch(TASKS[task], finlora_data(folder, **data).data)


# A TFNS record's label as FinLoRA publishes it (bullish "neutral", neutral "positive") and as the Hub set means it.
CORRECTED = {"negative": "negative", "neutral": "positive", "positive": "neutral"}

LATER_FILES = ("train/formula_train.jsonl", "train/xbrl_term_train.jsonl", "train/financebench_train.jsonl")
TODAYS_FILES = {  # task: (train file, test file), under data/
    "fpb": ("train/finlora_sentiment_train.jsonl", "test/fpb_test.jsonl"),
    "fiqa": ("train/finlora_sentiment_train.jsonl", "test/fiqa_test.jsonl"),
    "tfns": ("train/finlora_sentiment_train.jsonl", "test/tfns_test.jsonl"),
    "nwgi": ("train/finlora_sentiment_train.jsonl", "test/nwgi_test.jsonl"),
    "headline": ("train/headline_train.jsonl", "test/headline_test.jsonl"),
    "ner": ("train/ner_train.jsonl", "test/ner_test.jsonl"),
    "finer": ("train/finer_train_batched.jsonl", "test/finer_test_batched.jsonl"),
    "xbrl_tags": ("train/xbrl_extract_train.jsonl", "test/xbrl_extract_tags_test.jsonl"),
    "xbrl_value": ("train/xbrl_extract_train.jsonl", "test/xbrl_extract_value_test.jsonl"),
    "xbrl_formula": ("train/xbrl_extract_train.jsonl", "test/xbrl_extract_formula_test.jsonl"),
    "fnxl": (None, "test/fnxl_test_batched.jsonl"),  # FinLoRA publishes no FNXL train file
    "formula": ("train/formula_train.jsonl", "test/formula_test.jsonl"),
    "xbrl_term": ("train/xbrl_term_train.jsonl", "test/xbrl_term_test.jsonl"),
    "financebench": ("train/financebench_train.jsonl", "test/financebench_test.jsonl"),
}


@pytest.mark.parametrize("task", [name for name, task in TASKS.items() if task.in_finlora])
def test_every_task_trains_from_its_train_file_and_tests_on_its_test_file_unchanged(task):
    raw = load(task)  # a FinLoRA clone: the data/ folder is found below it
    train_file, test_file = TODAYS_FILES[task]
    assert (raw.origin["train_file"], raw.origin["test_file"]) == (train_file, test_file)
    releases = {"finer": ["2025-02", "2025-04", "2025-05"], "fnxl": ["2025-02", "2025-04", "2025-05"]}
    assert raw.origin["release"] == releases.get(task, ["2025-05"] if task in XBRL or train_file in LATER_FILES
                                                  else ["2025-04", "2025-05"])
    published = lines(DATA / test_file)
    if task == "tfns":
        published = [{**row, "target": CORRECTED[row["target"]]} for row in published]
    if train_file is None:  # a test file alone: half of it (seeded) trains, the other half tests
        assert "carved" in raw.origin and sorted(map(json.dumps, raw.splits["train"] + raw.splits["test"])) == \
            sorted(map(json.dumps, published))
        return
    assert "carved" not in raw.origin and raw.splits["test"] == published  # every record, in file order
    train_records = lines(DATA / train_file)
    assert raw.splits["train"] and all(row in train_records or task in ("tfns", "fiqa") for row in raw.splits["train"])
    records = prepare(TASKS[task], raw.splits["test"], DATA / test_file, finlora_data(FIXTURE), raw.tag_names).records
    # the published prompts, named by their task (model.task_marker: true)
    assert [r["context"] for r in records] == [f"Task: {task}\n{row['context']}" for row in raw.splits["test"]]


def inputs(rows) -> list[str]:
    return [row["context"].split("Input: ")[1].split("\n")[0] for row in rows]


SENTIMENT_FILE = DATA / "train" / "finlora_sentiment_train.jsonl"
# The fixture's sentiment file in FinLoRA's order: FPB's 4 PhraseBank sentences written twice (as
# FinLoRA's commented lines write a set k times), FiQA's 6 (headline first, posts with cashtags),
# TFNS's 4 tweets, NWGI's 4 seven-level records.
BLOCKS = {"fpb": (0, 8), "fiqa": (8, 14), "tfns": (14, 18), "nwgi": (18, 22)}


def test_the_sentiment_file_is_read_in_finlora_block_order_each_task_its_own_records():
    """FiQA's headlines carry FPB's instruction and its posts TFNS's, so no record's text says
    its task; the file's order does. FiQA's first record is a headline: FPB's set was written
    twice and FiQA's once, so the copies tell where FPB's block ends. Dealing the shared forms in
    turn among the tasks would give FPB and FiQA each other's headlines."""
    rows = lines(SENTIMENT_FILE)
    splits = {task: load(task).splits["train"] for task in SENTIMENT}
    for task, (start, end) in BLOCKS.items():
        published = rows[start:end]
        if task == "tfns":  # TFNS's own labels, read with the Hub set's meaning
            published = [{**row, "target": CORRECTED[row["target"]]} for row in published]
        assert splits[task] == published, task
    assert len(set(map(json.dumps, splits["fpb"]))) == 4  # its set, as many times as the file has it
    read = load("fiqa").origin["shared_file"]["train/finlora_sentiment_train.jsonl"]
    assert read == {"read by": "FinLoRA's block order (FPB, FiQA, TFNS, NWGI)",
                    "records": {"fiqa": 6, "fpb": 8, "nwgi": 4, "tfns": 4}, "written": {"fpb": 2}, "taken": 6}


def written_in(tmp_path, rows: list[dict]):
    """The fixture's files with the sentiment train file replaced by `rows`."""
    shutil.copytree(DATA, tmp_path / "data")
    (tmp_path / "data" / "train" / "finlora_sentiment_train.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows))
    return tmp_path


def test_a_fiqa_post_at_the_edge_of_tfns_block_is_left_out_and_counted(tmp_path):
    """FiQA's last record a post with a cashtag, TFNS's first a plain tweet: a cashtag post after
    FiQA's last headline may be either task's (some TFNS tweets carry cashtags), so it is left out."""
    rows = lines(SENTIMENT_FILE)
    headline, post, post_2, headline_2, post_3, headline_3 = rows[8:14]
    fiqa = [headline, post, post_2, headline_2, headline_3, post_3]
    folder = written_in(tmp_path, rows[0:8] + fiqa + rows[14:22])
    raw = {task: load(task, folder) for task in SENTIMENT}
    assert inputs(raw["fiqa"].splits["train"]) == inputs(fiqa[:5])
    assert inputs(raw["tfns"].splits["train"]) == inputs(rows[14:18])
    read = raw["tfns"].origin["shared_file"]["train/finlora_sentiment_train.jsonl"]
    assert read["not told apart"] == {
        "posts with a cashtag after FiQA's last headline, before TFNS's first tweet without one: FiQA's or TFNS's": 1}
    assert raw["fiqa"].origin["tfns_labels_corrected"] == 0 and raw["tfns"].origin["tfns_labels_corrected"] == 3 + 2


def test_a_shuffled_file_gives_nwgi_its_records_and_the_rest_carve_their_test_files(tmp_path):
    """Shuffled, each set once: nothing but NWGI's instruction says a record's task. The others
    are counted and left out, and those tasks train on a carved part of their test files; no
    label is swapped outside TFNS's own records."""
    import random

    rows = lines(SENTIMENT_FILE)
    distinct = list({json.dumps(row): row for row in rows}.values())
    random.Random(3).shuffle(distinct)
    folder = written_in(tmp_path, distinct)
    raw = {task: load(task, folder) for task in SENTIMENT}
    assert sorted(map(json.dumps, raw["nwgi"].splits["train"])) == sorted(map(json.dumps, rows[18:22]))
    read = raw["fpb"].origin["shared_file"]["train/finlora_sentiment_train.jsonl"]
    assert read["read by"] == "neither block order nor copies: only NWGI's instruction is its own"
    assert read["records"] == {"nwgi": 4} and sum(read["not told apart"].values()) == 4 + 6 + 4
    for task in ("fpb", "fiqa", "tfns"):
        test_file = lines(DATA / "test" / f"{task}_test.jsonl")
        if task == "tfns":
            test_file = [{**row, "target": CORRECTED[row["target"]]} for row in test_file]
        assert "none of train/finlora_sentiment_train.jsonl's records told" in raw[task].origin["carved"]
        assert sorted(map(json.dumps, raw[task].splits["train"] + raw[task].splits["test"])) == \
            sorted(map(json.dumps, test_file))
    assert raw["fiqa"].origin["tfns_labels_corrected"] == 0


def test_the_papers_shuffled_file_is_read_by_how_often_each_set_was_written(tmp_path):
    """FinGPT's recipe behind the paper's fingpt_sentiment_train.jsonl: FPB 6 times, FiQA 21,
    TFNS 2, NWGI once, shuffled. Here 2, 3, 1, 1: the count headlines and posts share is FiQA's."""
    import random

    rows = lines(SENTIMENT_FILE)
    sets = {"fpb": rows[0:4], "fiqa": rows[8:14], "tfns": rows[14:18], "nwgi": rows[18:22]}
    written = [row for task, k in (("fpb", 2), ("fiqa", 3), ("tfns", 1), ("nwgi", 1)) for row in sets[task] * k]
    random.Random(5).shuffle(written)
    folder = written_in(tmp_path, written)
    raw = {task: load(task, folder) for task in SENTIMENT}
    for task, records in sets.items():
        assert sorted(set(map(json.dumps, raw[task].splits["train"]))) == sorted(map(
            json.dumps, records if task != "tfns" else [{**r, "target": CORRECTED[r["target"]]} for r in records]))
    read = raw["fiqa"].origin["shared_file"]["train/finlora_sentiment_train.jsonl"]
    assert read["read by"].startswith("copies") and read["written"] == {"fpb": 2, "fiqa": 3}
    assert "not told apart" not in read and len(raw["fiqa"].splits["train"]) == 18


def test_download_says_in_one_line_how_many_records_were_not_told_apart_and_why(tmp_path):
    import random
    import subprocess
    import sys

    import yaml
    from conftest import run_env

    distinct = list({json.dumps(row): row for row in lines(SENTIMENT_FILE)}.values())
    random.Random(3).shuffle(distinct)
    folder = written_in(tmp_path, distinct)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(source="finlora", local_dir=str(folder), sizes={})
    params["tasks"] = {"sentiment": list(SENTIMENT)}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, REPO / "stages" / "download.py", "sentiment", "raw"], cwd=tmp_path,
                            capture_output=True, text=True, env=run_env())
    assert result.returncode == 0, result.stderr
    told = [line for line in result.stdout.splitlines() if "not told apart" in line]
    assert told == ["train/finlora_sentiment_train.jsonl: 14 records not told apart, left out: 14 news or tweet in "
                    "a file in neither FinLoRA's block order nor copies: FPB's, FiQA's or TFNS's"]
    source = json.loads((tmp_path / "raw" / "fiqa" / "source.json").read_text())
    assert "14 not told apart and left out" in source["provenance"]


def test_tfns_labels_are_read_corrected_or_as_published():
    """FinLoRA's files call the bullish "Chipmaker upgraded to buy" neutral and the neutral
    "Utility to present at an industry conference" positive."""
    test_rows = {"corrected": load("tfns").splits["test"],
                 "published": load("tfns", tfns_labels="published").splits["test"]}
    labels = {setting: dict(zip(inputs(rows), (r["target"] for r in rows))) for setting, rows in test_rows.items()}
    assert labels["corrected"] == {"Chipmaker upgraded to buy at a regional broker": "positive",
                                   "Airline cuts capacity guidance on fuel costs": "negative",
                                   "Utility to present at an industry conference on Tuesday": "neutral"}
    assert labels["published"]["Chipmaker upgraded to buy at a regional broker"] == "neutral"
    assert labels["published"]["Utility to present at an industry conference on Tuesday"] == "positive"
    raw = load("tfns")  # the file's tweets read as TFNS's: their labels corrected
    assert dict(zip(inputs(raw.splits["train"]), (r["target"] for r in raw.splits["train"]))) == {
        "Chipmaker upgraded to buy at a regional broker": "positive",
        "Airline cuts capacity guidance on fuel costs": "negative",
        "Utility to present at an industry conference on Tuesday": "neutral",
        "Bank shares rally after stress test results": "positive"}
    assert raw.origin["tfns_labels_corrected"] == 3 + 2  # the train file's non-negative tweets and the test file's
    fiqa = load("fiqa")  # FiQA's posts carry TFNS's instruction, and their labels are right as published
    assert [r["target"] for r in fiqa.splits["train"]] == [r["target"] for r in lines(SENTIMENT_FILE)[8:14]]
    assert fiqa.origin["tfns_labels_corrected"] == 0


def test_the_xbrl_file_is_told_apart_by_what_each_answer_provably_is(tmp_path):
    tags, values = load("xbrl_tags"), load("xbrl_value")
    assert [r["target"] for r in tags.splits["train"]] == ["us-gaap:Assets", "us-gaap:EarningsPerShareDiluted"]
    assert [r["target"] for r in values.splits["train"]] == ["48200000000", "6120000000", "7350000000"]
    formulas = load("xbrl_formula")
    assert [r["target"] for r in formulas.splits["train"]] == ["(6120000000 / 48200000000) * 100"]
    assert values.origin["shared_file"]["train/xbrl_extract_train.jsonl"] == {
        "read by": "each record by its answer (tag, formula, the filing's fact, calculation)",
        "records": {"xbrl_formula": 1, "xbrl_tags": 2, "xbrl_value": 3}, "taken": 3}
    # a number that is none of the filing's facts, asked without a calculation: neither a value nor a result
    rows = lines(DATA / "train" / "xbrl_extract_train.jsonl")
    shutil.copytree(DATA, tmp_path / "data")
    (tmp_path / "data" / "train" / "xbrl_extract_train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in [
        *rows, {**rows[0], "target": "48200000001"},
        {**rows[0], "context": rows[0]["context"].replace("What is the value of", "Calculate"), "target": "12.7"}]))
    read = load("xbrl_value", tmp_path).origin["shared_file"]["train/xbrl_extract_train.jsonl"]
    assert read["records"] == {"xbrl_formula": 1, "xbrl_formula_calculation": 1, "xbrl_tags": 2, "xbrl_value": 3}
    assert read["not told apart"] == {
        "answer neither a tag, a formula, one of the filing's facts nor a calculation's result": 1}


def compressed(how: str) -> bytes:
    """The fixture's XBRL train file as a real compressed file (what a download saved unopened)."""
    import bz2
    import gzip
    import io
    import zipfile

    data = (DATA / "train" / "xbrl_extract_train.jsonl").read_bytes()
    if how == "zip":
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("xbrl_extract_train.jsonl", data)
        return archive.getvalue()
    return {"gzip": gzip.compress, "bzip2": bz2.compress}[how](data)


@pytest.mark.parametrize("stub, message", [
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 138234567\n",
     r"a Git LFS pointer, not the data \(138234567 bytes kept in Git LFS\)"),
    (b"<!DOCTYPE html>\n<html><body>Sign in</body></html>\n", "a web page, not JSON lines"),
    ("gzip", "gzip-compressed, not JSON lines"), ("zip", "a zip archive, not JSON lines"),
    ("bzip2", "bzip2-compressed, not JSON lines"),
])
def test_a_file_that_is_not_data_is_refused_in_one_line_before_any_task_loads(tmp_path, stub, message):
    shutil.copytree(DATA, tmp_path / "data")
    (tmp_path / "data" / "train" / "xbrl_extract_train.jsonl").write_bytes(
        stub if isinstance(stub, bytes) else compressed(stub))
    params = finlora_data(tmp_path)
    with pytest.raises(FinloraError, match=f"xbrl_extract_train.jsonl: {message}") as error:
        released.check_files(params)  # the download stage's first step, for every group
    assert "\n" not in error.value.args[0]
    if "LFS" in message:
        assert "git lfs pull" in error.value.hint
    with pytest.raises(FinloraError, match=message):
        fetch(TASKS["xbrl_tags"], params.data)


def test_validate_checks_every_groups_files(tmp_path, cli):
    import yaml

    shutil.copytree(DATA, tmp_path / "data")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(source="finlora", local_dir=str(tmp_path))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert cli(tmp_path, "validate").returncode == 0
    (tmp_path / "data" / "train" / "xbrl_extract_train.jsonl").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 9\n")
    result = cli(tmp_path, "validate")
    assert result.returncode != 0
    assert "xbrl_extract_train.jsonl: a Git LFS pointer, not the data (9 bytes kept in Git LFS)" in result.stderr
    assert "git lfs pull" in result.stderr


def test_a_task_without_a_train_file_carves_its_test_file(tmp_path):
    shutil.copytree(DATA / "test", tmp_path / "test")  # a folder of test files only, as the development data
    raw = load("fiqa", tmp_path)
    assert len(raw.splits["train"]) == len(raw.splits["test"]) == 3
    assert sorted(map(json.dumps, raw.splits["train"] + raw.splits["test"])) == \
        sorted(map(json.dumps, lines(DATA / "test" / "fiqa_test.jsonl")))
    assert raw.origin["train_file"] is None and "no train file: 3" in raw.origin["carved"]


@pytest.mark.parametrize("name, files", [
    ("2025-04", {"fpb": ("train/finlora_sentiment_train.jsonl", "test/fpb_test.jsonl"),
                 "finer": ("train/finer_train_batched.jsonl", "test/finer_test_batched.jsonl"),
                 "xbrl_tags": ("train/xbrl_train.jsonl", "test/xbrl_xbrl_tags_test.jsonl"),
                 "xbrl_value": ("train/xbrl_train.jsonl", "test/xbrl_value_test.jsonl")}),
    ("2025-01", {"headline": ("train/fingpt_headline_train.jsonl", None),
                 "finer": ("train/finer_train.jsonl", "test/finer_test.jsonl"),
                 "xbrl_tags": (None, "xbrl/xbrl_xbrl_tags_test.jsonl")}),
])
def test_each_release_layout_loads_from_its_own_files(tmp_path, name, files):
    params = finlora_data(tmp_path)
    written = write_sample(tmp_path, params, n_train=6, n_test=4, release=release_named(name))
    assert set(written) == set(release_named(name).train.values()) | set(release_named(name).test.values())
    for task, (train_file, test_file) in files.items():
        if test_file is None:  # the paper's release: FinLoRA's code read the test split from the Hub
            with pytest.raises(FinloraError, match=f"no test file of task {task} .*Hub data set.*cannot reach"):
                fetch(TASKS[task], params.data)
            continue
        raw = fetch(TASKS[task], params.data)
        assert (raw.origin["train_file"], raw.origin["test_file"]) == (train_file, test_file)
        assert name in raw.origin["release"]
        tested = raw.splits["test"] + (raw.splits["train"] if train_file is None else [])  # carved
        assert len(tested) == len(lines(tmp_path / test_file))


def test_the_papers_release_tests_on_the_hub_data_set(tmp_path, monkeypatch):
    """A local folder in the Hub set's own schema stands in for the Hub (as in test_sources)."""
    params = finlora_data(tmp_path)
    write_sample(tmp_path, params, n_train=6, n_test=4, release=release_named("2025-01"))
    hub_folder = tmp_path / "hub"
    hub_folder.mkdir()
    (hub_folder / "train.jsonl").write_text("".join(json.dumps({"text": f"$T{i} rallies", "label": i % 3}) + "\n"
                                                    for i in range(5)))
    (hub_folder / "validation.jsonl").write_text("".join(json.dumps({"text": f"$V{i} slips", "label": 1}) + "\n"
                                                         for i in range(3)))
    task = dataclasses.replace(TASKS["tfns"], hub=dataclasses.replace(TASKS["tfns"].hub, path=str(hub_folder)))
    monkeypatch.setattr(hub, "resolve_commit", lambda task, revision: "0123abc")
    raw = released.load(task, params.data)
    assert raw["origin"]["train_file"] == "train/fingpt_sentiment_train.jsonl"
    assert raw["origin"]["test_from_hub"]["commit"] == "0123abc"
    assert [row["text"] for row in raw["splits"]["test"]] == [f"$V{i} slips" for i in range(3)]
    # the Hub set's 1 is Bullish: positive
    assert [r["target"] for r in prepare(task, raw["splits"]["test"], hub_folder, params).records] == ["positive"] * 3


def test_nwgi_trains_on_seven_levels_and_is_scored_on_three():
    params = finlora_data(FIXTURE)
    rows = load("nwgi").splits["test"]
    records = prepare(TASKS["nwgi"], rows, FIXTURE, params).records
    assert [(r["target"], r["label"]) for r in records] == [
        ("strong positive", "positive"), ("moderately negative", "negative"), ("moderately positive", "positive")]
    answers = ["mildly positive", "neutral", "Positive."]
    scored = score(TASKS["nwgi"], records, answers)
    assert scored.parsed == ["positive", "neutral", "positive"]
    assert scored.metrics["strict_accuracy"] == round(2 / 3, 4)


def test_finer_batches_are_scored_per_entity_with_the_listed_tag_names():
    params = finlora_data(FIXTURE)
    raw = load("finer")
    assert raw.tag_names[:3] == ["Revenues", "DebtInstrumentFaceAmount", "LongTermDebt"]
    assert len(raw.tag_names) == 11  # the list's leading empty item is not a tag
    records = prepare(TASKS["finer"], raw.splits["test"], FIXTURE, params, raw.tag_names).records
    assert [r["tags"] for r in records] == [
        ["CommonStockSharesAuthorized", "EffectiveIncomeTaxRateContinuingOperations", "AmortizationOfIntangibleAssets"],
        ["DebtInstrumentFaceAmount"]]
    answers = ["CommonStockSharesAuthorized, Revenues,AmortizationOfIntangibleAssets", "LongTermDebt"]
    scored = score(TASKS["finer"], records, answers, raw.tag_names)
    assert scored.metrics["n"] == 4 and scored.metrics["strict_accuracy"] == 0.5


@pytest.mark.parametrize("task, line, bad, message", [
    ("fpb", 2, {"context": "Instruction: x\nAnswer: ", "target": "bullish"}, "target 'bullish' is not a fpb label"),
    ("nwgi", 1, {"context": "Instruction: x\nAnswer: ", "target": "very negative"}, "one of the 7 levels"),
    ("xbrl_value", 1, {"context": "Question: x\nAnswer:", "target": "about 4 billion"}, "is not a number"),
    ("fpb", 3, {"target": "neutral"}, "record has no 'context' prompt text"),
])
def test_a_bad_record_names_its_file_and_line_or_is_skipped_and_counted(tmp_path, task, line, bad, message):
    shutil.copytree(DATA, tmp_path / "data")
    name = TODAYS_FILES[task][1].split("/")[1]
    path = tmp_path / "data" / "test" / name
    rows = lines(path)
    rows.insert(line - 1, bad)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(FinloraError, match=f"(?s){name}:{line}: .*{message}"):
        load(task, tmp_path)
    raw = load(task, tmp_path, on_bad_record="skip")
    assert raw.origin["skipped_bad_records"] == {name: 1} and bad not in raw.splits["test"]


def test_a_folder_without_finlora_data_is_named():
    with pytest.raises(FinloraError, match="no FinLoRA data folder"):
        load("fpb", REPO / "src")


def test_the_sample_data_in_todays_layout_loads_for_every_task_with_its_own_labels(tmp_path):
    params = finlora_data(tmp_path)
    written = write_sample(tmp_path, params, n_train=6, n_test=4)
    assert written["train/finlora_sentiment_train.jsonl"] == 4 * 6 and written["test/ner_test.jsonl"] == 4
    for task in (task for task in TASKS.values() if task.in_finlora):
        raw = fetch(task, params.data)
        assert (raw.origin["train_file"] is None) == (task.name == "fnxl")  # FNXL: a test file only, carved
        assert raw.splits["train"] and raw.splits["test"]
        prepared = prepare(task, raw.splits["test"], tmp_path, params, raw.tag_names)
        assert len(prepared.records) == len(raw.splits["test"]) and prepared.skipped_bad_records == 0
    from finlora import samples
    generated = samples.generate("tfns", 6, 4, params.data.seed)["splits"]["test"]
    tfns = fetch(TASKS["tfns"], params.data).splits["test"]
    assert [r["target"] for r in tfns] == [TASKS["tfns"].example(row).answer for row in generated]
    nwgi = [r for r in lines(tmp_path / "train" / "finlora_sentiment_train.jsonl") if "mildly" in r["context"]]
    assert len(nwgi) == 6 and {r["target"] for r in nwgi} <= set(NWGI_LEVELS)


def test_the_provenance_names_the_release_and_what_was_made_of_a_shared_file():
    origin = {"folder": "data/finlora", "train_file": "train/finlora_sentiment_train.jsonl",
              "test_file": "test/tfns_test.jsonl", "release": ["2025-04", "2025-05"],
              "shared_file": {"train/finlora_sentiment_train.jsonl": {
                  "read by": "FinLoRA's block order (FPB, FiQA, TFNS, NWGI)", "records": {"fiqa": 3, "tfns": 5},
                  "written": {"fiqa": 21}, "not told apart": {"posts at the edge": 2}, "taken": 5}},
              "tfns_labels_corrected": 9}
    assert released.FinloraSource().provenance(origin) == (
        "FinLoRA files train/finlora_sentiment_train.jsonl + test/tfns_test.jsonl in data/finlora; release 2025-04 or "
        "2025-05; train/finlora_sentiment_train.jsonl read by FinLoRA's block order (FPB, FiQA, TFNS, NWGI): fiqa 3 "
        "(written 21 times), tfns 5; 5 taken; 2 not told apart and left out (2 posts at the edge); "
        "9 TFNS labels corrected to the Hub set's meaning")
    raw = load("tfns")  # what download records in source.json: the same sentence, of this fixture
    described = describe(TASKS["tfns"], finlora_data(FIXTURE).data, raw)
    assert described["provenance"].startswith(f"FinLoRA files train/finlora_sentiment_train.jsonl + "
                                              f"test/tfns_test.jsonl in {FIXTURE}; release 2025-04 or 2025-05")
