"""The real `dvc repro`, `dvc exp run`, `dvc queue`, `dvc metrics diff` and `dvc push/pull` on a
tiny configuration, in a temporary copy of this repository (tiny random Llama, a few examples per
task). The tests run in order on one project, like a user's session."""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from conftest import REPO, run_env
from finlora.sweep import collect
from finlora.tasks import TASKS

pytestmark = pytest.mark.slow

FINLORA_FIXTURES = REPO / "tests" / "fixtures" / "finlora"  # FinLoRA's file layout, hand-written records

COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "data", "models", "metrics", "dvc.lock", "dvc_plots",  # outputs,
                                     "cache", ".cache", "tmp", "__pycache__", ".pytest_cache", "*.egg-info")  # caches


def dvc_env() -> dict:
    """The environment of a user's shell with the virtual environment activated."""
    env = run_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return env


def sh(workdir: Path, *command: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=dvc_env())
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def arithmetic(answer: str, gold: str) -> bool:
    """An XBRL formula answer against its gold formula, by value (a bare number at its decimals, at
    least two); both are arithmetic over numbers here (evaluation parsed them)."""
    def value(text):
        return eval(text.replace(",", ""), {"__builtins__": {}})  # noqa: S307 - digits and + - * / ( ) only

    places = max(2, len(answer.partition(".")[2])) if answer.replace(".", "").replace(",", "").isdigit() else None
    if places is None:
        return abs(value(answer) - value(gold)) <= 1e-9 * abs(value(gold))
    return round(value(answer), places) == round(value(gold), places)


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def assert_plots_load(workdir: Path, *command: str) -> str:
    """`dvc plots show` or `diff` renders every plot: nothing "failed to load". Returns the JSON."""
    rendered = sh(workdir, "dvc", "plots", *command, "-o", str(workdir.parent / "rendered"))
    assert "failed to load" not in (rendered.stdout + rendered.stderr).lower(), rendered.stdout + rendered.stderr
    shown = sh(workdir, "dvc", "plots", *command, "--json").stdout
    assert '"errors"' not in shown, shown[-2000:]
    return shown


def new_project(root: Path, tiny_model_dir: Path, tasks: dict, data: dict, train: dict, evaluation: dict) -> Path:
    """A copy of this repository under root/repo, committed to a new git repository, whose
    params.yaml trains the tiny model: `tasks` as the groups, the other arguments updating their
    sections over a tiny default (one epoch at lr 1e-3, seed 42, 3 new tokens an answer)."""
    workdir = root / "repo"
    shutil.copytree(REPO, workdir, ignore=COPY_IGNORE)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["model"]["base"] = str(tiny_model_dir)
    params["tasks"] = tasks
    params["data"].update(data)
    params["train"].update({"lr": 1e-3, "epochs": 1, "grad_accum": 1, "max_seq_len": 1024, "seeds": [42],
                            "by_group": {}, **train})  # tiny groups train at the shared batch, not by_group's
    params["eval"].update({"max_new_tokens": 3, "max_new_tokens_by_task": {}, **evaluation})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(workdir, "git", "init", "-q")
    sh(workdir, "git", "add", "-A")
    sh(workdir, "git", "commit", "-qm", "tiny project")
    return workdir


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model_dir) -> Path:
    # the validation path, through DVC
    return new_project(tmp_path_factory.mktemp("project"), tiny_model_dir,
                       {"sentiment": ["fpb", "tfns"], "xbrl": ["xbrl_value"]}, {"train_size": 8, "test_size": 4, "sizes": {}},
                       {"batch_size": 4, "validation_fraction": 0.05, "validate_every": 20, "keep_best": False}, {})


def test_repro_runs_every_stage_and_writes_the_metrics(project):
    result = sh(project, "dvc", "repro")
    expected = {"base_model", "report"} | {f"{stage}@{group}" for group in ("sentiment", "xbrl")
                                           for stage in ("download", "preprocess", "evaluate_base")} \
        | {f"{stage}@{group}-42" for group in ("sentiment", "xbrl") for stage in ("train", "evaluate")}
    assert stages_run(result.stdout) == expected
    summary = json.loads((project / "metrics" / "summary.json").read_text())
    for task in ("fpb", "tfns", "xbrl_value"):
        for model in ("base", "lora"):
            keys = {"accuracy", "strict_accuracy", "invalid_rate"} | ({"f1_weighted"} if task != "xbrl_value" else set())
            assert set(summary[task][model]) == keys
            group = "xbrl" if task == "xbrl_value" else "sentiment"
            folder = project / "metrics" / "eval" / model / (group if model == "base" else f"{group}/seed-42")
            scores = json.loads((folder / f"{task}.json").read_text())
            assert scores["n"] == 4 and scores["accuracy"] == summary[task][model]["accuracy"]
    trained = json.loads((project / "metrics" / "train" / "sentiment" / "seed-42.json").read_text())
    assert trained["examples"] == 14 and trained["val_examples"] == 2  # 5 % of each task's 8, at least one, held out
    report = (project / "metrics" / "report.md").read_text()
    assert "| base |" in report and "LoRA r4, 16-bit" in report and "sample data" in report and "Values" in report
    assert "## Is the gain real?" in report and "| xbrl_value | 4 |" in report
    assert "A = the training split's most common answer, every time, B = LoRA r4, 16-bit, seed 42" in report
    assert (project / "data" / "raw" / "xbrl" / "xbrl_value" / "filings").is_dir()
    predictions = (project / "data" / "predictions" / "lora" / "xbrl" / "seed-42" / "xbrl_value.jsonl").read_text().splitlines()
    assert len(predictions) == 4 and {"context", "target", "answer", "parsed"} <= set(json.loads(predictions[0]))
    # `dvc metrics show` in a 120-column terminal: a row a task, each row inside the width
    table = subprocess.run(["dvc", "metrics", "show"], cwd=project, capture_output=True, text=True,
                           env={**dvc_env(), "COLUMNS": "120"}).stdout.splitlines()
    assert table[0].split() == ["Path", "base", "f1", "gain", "lora", "most_common", "strict", "trainable"]
    assert [line.split()[0] for line in table[1:]] == [f"metrics/tasks/{task}.json" for task in ("fpb", "tfns", "xbrl_value")]
    assert max(map(len, table)) <= 120
    fpb = json.loads((project / "metrics" / "tasks" / "fpb.json").read_text())
    assert fpb["lora"] == summary["fpb"]["lora"]["accuracy"] and fpb["base"] == summary["fpb"]["base"]["accuracy"]
    assert fpb["gain"] == round(fpb["lora"] - fpb["base"], 4) and fpb["most_common"] == summary["fpb"]["most_common"]["accuracy"]
    # the report stage logs where the report is and a line a task, not the report itself
    assert "metrics/report.md: the report" in result.stdout and "| base |" not in result.stdout
    assert [line.split()[0] for line in result.stdout.splitlines() if " -> adapter " in line] == ["fpb", "tfns", "xbrl_value"]
    shown = assert_plots_load(project, "show")
    # the groups of this project's params.yaml, which dvc.yaml does not name, get their curves
    assert "metrics/plots/train/xbrl/seed-42/loss.tsv" in shown and "metrics/plots/confusion/lora/tfns.json" in shown
    assert "metrics/plots/train/sentiment/seed-42/val_accuracy.tsv" in shown


def test_second_repro_does_nothing(project):
    result = sh(project, "dvc", "repro")
    assert stages_run(result.stdout) == set()
    assert "Data and pipelines are up to date" in result.stdout


def test_lora_rank_experiment_reruns_only_what_depends_on_lora(project):
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-qm", "baseline results")
    result = sh(project, "dvc", "exp", "run", "-S", "lora.rank=8")
    assert stages_run(result.stdout) == {"train@sentiment-42", "train@xbrl-42", "evaluate@sentiment-42", "evaluate@xbrl-42",
                                         "report"}
    weights = load_file(project / "models" / "adapters" / "sentiment" / "seed-42" / "adapter_model.safetensors")
    ranks = {tuple(w.shape) for name, w in weights.items() if "lora_A" in name}
    assert ranks == {(8, 32)}  # rank 8 x the tiny model's width 32, in every adapted layer

    diff = json.loads(sh(project, "dvc", "metrics", "diff", "--all", "--json").stdout)
    assert set(diff) == {f"metrics/tasks/{task}.json" for task in ("fpb", "tfns", "xbrl_value")}  # a file a task
    for task in ("fpb", "tfns"):
        assert {"lora", "gain", "strict", "f1"} <= set(diff[f"metrics/tasks/{task}.json"])
    assert "f1" not in diff["metrics/tasks/xbrl_value.json"]  # numbers have no F1
    trainable = diff["metrics/tasks/fpb.json"]["trainable"]
    assert trainable["new"] == 2 * trainable["old"]  # rank 4 -> 8
    summary = json.loads((project / "metrics" / "summary.json").read_text())  # beside them: every score
    assert summary["train"]["sentiment"]["lora_rank"] == 8
    assert_plots_load(project, "diff", "HEAD")


def experiments(project: Path) -> list[dict]:
    """(name, params, tasks) of every finished experiment, read as `finlora sweep` reads them."""
    return collect(json.loads(sh(project, "dvc", "exp", "show", "--json").stdout))


def test_queued_experiments_finish_with_separate_results(project):
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-qm", "rank 8 results")
    sh(project, "dvc", "exp", "run", "--queue", "-S", "lora.rank=2,16")
    sh(project, "dvc", "queue", "start", "-j", "1")
    deadline = time.time() + 900
    while time.time() < deadline:
        status = sh(project, "dvc", "queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(5)
    assert "Failed" not in status, status
    found = {e["params"]["lora"]["rank"]: e for e in experiments(project) if e["params"]["lora"]["rank"] in (2, 16)}
    trainable = {rank: e["tasks"]["fpb"]["trainable"] for rank, e in found.items()}
    assert set(trainable) == {2, 16} and trainable[16] == 8 * trainable[2]  # counted on each experiment's model
    compared = sh(project, sys.executable, "-m", "finlora.cli", "compare", found[2]["name"], found[16]["name"]).stdout
    rows = {line.split("|")[1].strip(): line for line in compared.splitlines() if line.startswith("| ") and "---" not in line}
    assert set(rows) == {"task", "fpb", "tfns", "xbrl_value"}
    fpb = found[16]["tasks"]["fpb"]["strict"] - found[2]["tasks"]["fpb"]["strict"]
    assert f"| {100 * fpb:+.1f} |" in rows["fpb"]  # B - A from the experiments' own predictions
    against_bar = sh(project, sys.executable, "-m", "finlora.cli", "compare", "most_common", found[16]["name"]).stdout
    fpb_row = next(line for line in against_bar.splitlines() if line.startswith("| fpb |")).split("|")
    bar, adapter = (found[16]["tasks"]["fpb"][column] for column in ("most_common", "strict"))  # the bar is a label: strict
    assert [cell.strip() for cell in fpb_row[3:5]] == [f"{100 * bar:.1f}", f"{100 * adapter:.1f}"]


def test_a_second_seed_trains_only_that_seed_and_the_report_gives_the_spread(project):
    result = sh(project, "dvc", "exp", "run", "-S", "train.seeds=[42,7]")
    assert stages_run(result.stdout) == {"train@sentiment-7", "train@xbrl-7", "evaluate@sentiment-7", "evaluate@xbrl-7",
                                         "report"}
    summary = json.loads((project / "metrics" / "summary.json").read_text())
    by_seed = [json.loads((project / "metrics" / "eval" / "lora" / "sentiment" / f"seed-{seed}" / "fpb.json").read_text())
               for seed in (42, 7)]
    accuracies = [scores["accuracy"] for scores in by_seed]
    seeds = summary["fpb"]["seeds"]["accuracy"]
    assert seeds["n"] == 2 and seeds["mean"] == round(statistics.mean(accuracies), 4)
    assert summary["fpb"]["lora"]["accuracy"] == round(statistics.mean(accuracies), 4)
    # the spread of every score, worked out here from each seed's own metrics file (on 4 test
    # examples the seeds may tie: a spread over unequal scores is made below)
    for group, task in (("sentiment", "fpb"), ("sentiment", "tfns"), ("xbrl", "xbrl_value")):
        per_seed = [json.loads((project / "metrics" / "eval" / "lora" / group / f"seed-{seed}" / f"{task}.json").read_text())
                    for seed in (42, 7)]
        for metric, spread in summary[task]["seeds"].items():
            values = [scores[metric] for scores in per_seed]
            sd = statistics.stdev(values)
            assert spread["sd"] == pytest.approx(sd, abs=1e-4), (task, metric)
            assert spread["ci95_high"] - spread["mean"] == pytest.approx(12.7062 * sd / 2 ** 0.5, abs=2e-4)  # t(0.975, 1)
    # the seeds trained differently, and the summary's training figures are their mean
    losses = [json.loads((project / "metrics" / "train" / "sentiment" / f"seed-{seed}.json").read_text())["final_loss"]
              for seed in (42, 7)]
    assert losses[0] != losses[1]
    assert summary["train"]["sentiment"]["final_loss"] == round(statistics.mean(losses), 4)
    report = (project / "metrics" / "report.md").read_text()
    assert "## Seeds" in report and "| seed 42 | seed 7 | mean | sd | 95 % interval |" in report
    shown = [e for e in experiments(project) if e["params"]["train"]["seeds"] == [42, 7]]  # as dvc exp show has it
    assert shown and (shown[0]["tasks"]["fpb"]["lora"], shown[0]["tasks"]["fpb"]["sd"]) == (seeds["mean"], seeds["sd"])
    # a spread over unequal scores, through the report stage: seed 7's FPB accuracy made to differ
    path = project / "metrics" / "eval" / "lora" / "sentiment" / "seed-7" / "fpb.json"
    original = path.read_text()
    made = 1.0 if accuracies[0] != 1.0 else 0.0
    path.write_text(json.dumps({**by_seed[1], "accuracy": made}))
    sh(project, "dvc", "repro", "--single-item", "report")
    spread = json.loads((project / "metrics" / "summary.json").read_text())["fpb"]["seeds"]["accuracy"]
    sd = statistics.stdev([accuracies[0], made])
    assert sd > 0 and spread["sd"] == pytest.approx(sd, abs=1e-4)
    assert spread["ci95_high"] - spread["mean"] == pytest.approx(12.7062 * sd / 2 ** 0.5, abs=2e-4)
    path.write_text(original)
    sh(project, "dvc", "repro", "--single-item", "report")


def test_few_shot_runs_only_its_own_stages_and_the_report(project):
    result = sh(project, "dvc", "exp", "run", "-S", "few_shot.shots=[1]")
    assert stages_run(result.stdout) == {"evaluate_few_shot@sentiment-1", "evaluate_few_shot@xbrl-1", "report"}
    folder = project / "metrics" / "eval" / "few_shot" / "sentiment" / "k-1"
    fpb = json.loads((folder / "fpb.json").read_text())
    (line,) = fpb["few_shot"]["train_lines"]
    train = (project / "data" / "prepared" / "sentiment" / "fpb" / "train.jsonl").read_text().splitlines()
    test = (project / "data" / "prepared" / "sentiment" / "fpb" / "test.jsonl").read_text().splitlines()
    assert json.loads(train[line - 1])["context"] not in {json.loads(row)["context"] for row in test}
    report = (project / "metrics" / "report.md").read_text()
    assert "| base, 1-shot |" in report and "### Does the adapter beat the base model shown 1 train example?" in report
    compared = sh(project, sys.executable, "-m", "finlora.cli", "compare", "shots-1", "workspace").stdout
    fpb_row = next(row for row in compared.splitlines() if row.startswith("| fpb |")).split("|")
    assert [cell.strip() for cell in fpb_row[2:4]] == [str(fpb["n"]), f"{100 * fpb['strict_accuracy']:.1f}"]


def test_forgetting_scores_the_base_and_each_adapter_in_the_report(project):
    result = sh(project, "dvc", "exp", "run", "-S", "forgetting.tasks=[finance_basics]", "-S", "forgetting.limit=4")
    assert stages_run(result.stdout) == {"forgetting_base@finance_basics", "report"} | {
        f"forgetting@{group}-{seed}-finance_basics" for group in ("sentiment", "xbrl") for seed in (42, 7)}
    folder = project / "metrics" / "eval" / "forgetting"
    base = json.loads((folder / "base" / "finance_basics.json").read_text())
    by_seed = [json.loads((folder / "lora" / "sentiment" / f"seed-{seed}" / "finance_basics.json").read_text())
               for seed in (42, 7)]
    assert base["n"] == 4 and base["lm_eval_version"]
    row = next(line for line in (project / "metrics" / "report.md").read_text().splitlines()
               if line.startswith("| finance_basics | acc | 4 | sentiment |"))
    adapter = statistics.mean(scores["acc"] for scores in by_seed)  # the mean over the two seeds
    assert row.split("|")[5:8] == [f" {100 * base['acc']:.2f} ", f" {100 * adapter:.2f} ",
                                    f" {100 * (adapter - base['acc']):+.2f} "]


def test_push_and_pull_through_a_local_remote(project, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    sh(project, "dvc", "remote", "add", "-d", "store", str(remote))
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-qm", "results and a remote")
    sh(project, "dvc", "push")
    clone = tmp_path_factory.mktemp("teammate") / "repo"
    sh(project.parent, "git", "clone", "-q", str(project), str(clone))
    sh(clone, "dvc", "pull")
    assert (clone / "models" / "adapters" / "sentiment" / "seed-42" / "adapter_model.safetensors").is_file()
    assert "Data and pipelines are up to date" in sh(clone, "dvc", "status").stdout
    assert_plots_load(clone, "show")
    assert stages_run(sh(clone, "dvc", "repro").stdout) == set()


PLANTED = "positive"


@pytest.fixture(scope="module")
def planted_model_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny model taught, in full, to answer "positive" to the fixtures' sentiment, headline and
    NER prompts: a base whose right answers are known before the pipeline runs it (20 s)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finlora.prompts import prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    answer = tokenizer(PLANTED, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    rows = [(prompt_ids(tokenizer, json.loads(line)["context"], False), answer)
            for task in ("fpb", "fiqa", "tfns", "nwgi", "headline", "ner")
            for line in (FINLORA_FIXTURES / "data" / "test" / f"{task}_test.jsonl").read_text().splitlines()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for _ in range(20):  # 20 passes over the prompts: "positive" and the end token (12 miss the end)
        for prompt, target in rows:
            ids = torch.tensor([prompt + target])
            labels = torch.tensor([[-100] * len(prompt) + target])
            model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    out = tmp_path_factory.mktemp("planted")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def first_label(answer: str, labels: tuple[str, ...]) -> str | None:
    """The first word of the answer that is one of the (one-word) labels, case and punctuation ignored."""
    return next((word for word in re.findall(r"[a-z0-9]+", answer.lower()) if word in labels), None)


def test_repro_on_finlora_released_files_for_every_task(tmp_path_factory, planted_model_dir):
    """FinLoRA's published formats (hand-written fixtures) of all its fourteen tasks through every stage
    on the tiny model taught to answer "positive"; the metrics agree with a re-scoring of the
    predictions files done here, from the answers' text, and the base's with the gold answers
    counted from the fixtures alone."""
    # every task in one group: each file format through every stage, without many groups' stage starts
    workdir = new_project(tmp_path_factory.mktemp("released"), planted_model_dir,
                          {"all": [name for name, task in TASKS.items() if task.in_finlora]},
                          {"source": "finlora", "local_dir": str(FINLORA_FIXTURES), "sizes": {}},
                          {"batch_size": 2, "validation_fraction": 0}, {})
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    result = sh(workdir, "dvc", "repro")
    assert {f"evaluate@{group}-42" for group in params["tasks"]} <= stages_run(result.stdout)
    summary = json.loads((workdir / "metrics" / "summary.json").read_text())
    for group, tasks in params["tasks"].items():
        for task in tasks:
            for model in ("base", "lora"):
                folder = workdir / "data" / "predictions" / model / (group if model == "base" else f"{group}/seed-42")
                rows = [json.loads(line) for line in (folder / f"{task}.jsonl").read_text().splitlines()]
                batched = task in ("finer", "fnxl")
                golds = [tag for row in rows for tag in row["gold"]] if batched else [row["gold"] for row in rows]
                parsed = [tag for row in rows for tag in row["parsed"]] if batched else [row["parsed"] for row in rows]
                if task in ("xbrl_term", "financebench"):  # free text: per-example ROUGE-L, no accuracy
                    assert summary[task][model]["rouge_l"] == round(sum(r["correct"] for r in rows) / len(rows), 4)
                    assert "bertscore_f1" not in summary[task][model]  # offline: FinBERT cannot load
                    continue
                if task == "xbrl_value":
                    strict = sum(p is not None and float(p) == float(g) for p, g in zip(parsed, golds))
                elif task == "formula":
                    strict = sum(p is not None and round(float(p), 2) == float(g) for p, g in zip(parsed, golds))
                elif task == "xbrl_formula":
                    strict = sum(p is not None and arithmetic(p, g) for p, g in zip(parsed, golds))
                elif task in ("finer", "fnxl", "xbrl_tags"):
                    strict = sum(p.lower().removeprefix("us-gaap:") == g.lower().removeprefix("us-gaap:")
                                 for p, g in zip(parsed, golds) if p is not None)
                else:  # a label: read from the answer's text here, not from the pipeline's `parsed`
                    labels = tuple(label.lower() for label in TASKS[task].labels)
                    strict = sum(first_label(row["answer"], labels) == row["gold"].lower() for row in rows)
                assert summary[task][model]["strict_accuracy"] == round(strict / len(golds), 4), (task, model)
    # the planted base answers "positive" to FPB's prompts: its accuracy is FPB's share of positive
    # gold answers, counted in FinLoRA's test file
    base_fpb = [json.loads(line) for line in
                (workdir / "data" / "predictions" / "base" / "all" / "fpb.jsonl").read_text().splitlines()]
    assert [row["answer"] for row in base_fpb] == [PLANTED] * len(base_fpb)
    golds = [json.loads(line)["target"] for line in (FINLORA_FIXTURES / "data" / "test" / "fpb_test.jsonl").read_text().splitlines()]
    assert 0 < golds.count(PLANTED) < len(golds)
    assert summary["fpb"]["base"]["strict_accuracy"] == round(golds.count(PLANTED) / len(golds), 4)
    nwgi = [json.loads(line) for line in
            (workdir / "data" / "predictions" / "lora" / "all" / "seed-42" / "nwgi.jsonl").read_text().splitlines()]
    assert [(row["target"], row["gold"]) for row in nwgi] == [
        ("strong positive", "positive"), ("moderately negative", "negative"), ("moderately positive", "positive")]
    source = json.loads((workdir / "data" / "raw" / "all" / "fiqa" / "source.json").read_text())
    assert source["source"] == "finlora" and source["train_file"] == "train/finlora_sentiment_train.jsonl"
    assert source["train"] == 6 and source["shared_file"]["train/finlora_sentiment_train.jsonl"] == {
        "read by": "FinLoRA's block order (FPB, FiQA, TFNS, NWGI)", "records": {"fiqa": 6, "fpb": 8, "nwgi": 4, "tfns": 4},
        "written": {"fpb": 2}, "taken": 6}
    assert source["tfns_labels_corrected"] == 0  # FiQA's posts carry TFNS's instruction, not its swapped labels
    assert "data source `finlora`" in (workdir / "metrics" / "report.md").read_text()

    # the same files under FinLoRA's evaluation code of today: only the evaluations and the report rerun
    sh(workdir, "git", "add", "-A")
    sh(workdir, "git", "commit", "-qm", "strict results")
    rerun = stages_run(sh(workdir, "dvc", "exp", "run", "-S", "eval.protocol=finlora-2025-08").stdout)
    assert rerun == {"report"} | {f"evaluate_base@{group}" for group in params["tasks"]} \
        | {f"evaluate@{group}-42" for group in params["tasks"]}
    assert "Evaluation protocol `finlora-2025-08`" in (workdir / "metrics" / "report.md").read_text()
    finlora = json.loads((workdir / "metrics" / "summary.json").read_text())

    def first_gold_found(answer, golds):  # test_dataset.py's rule, written out here
        text = answer.split("Answer:")[-1].strip().lower()
        found = sorted((text.find(g.lower()), -len(g), g.lower()) for g in golds if g.lower() in text)
        return found[0][2] if found else None

    for task in ("fpb", "nwgi", "formula"):
        rows = [json.loads(line) for line in
                (workdir / "data" / "predictions" / "lora" / "all" / "seed-42" / f"{task}.jsonl").read_text().splitlines()]
        golds = {str(r["target"]) for r in rows}
        expected = sum(first_gold_found(r["answer"], golds) == str(r["target"]).lower() for r in rows) / len(rows)
        assert finlora[task]["lora"]["accuracy"] == round(expected, 4)
        assert finlora[task]["lora"]["strict_accuracy"] == round(sum(r["correct"] for r in rows) / len(rows), 4)
