"""Every `finlora` command on the default task set (all nine tasks): it works, or it ends a user
error with one line and at most one hint, exit 2, no traceback. The commands run in this process
(the `cli` fixture); the first test also runs the installed entry point in a new one."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_env
from finlora.config import load_params
from finlora.sweep import collect, markdown, rows, varied
from finlora.tasks import TASKS


def finlora_process(workdir, *args):
    return subprocess.run([str(Path(sys.executable).parent / "finlora"), *args], cwd=workdir, capture_output=True,
                          text=True, env=run_env(), timeout=120)


def assert_user_error(result, fragment):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("finlora: error:") and fragment in lines[0], result.stderr
    assert len(lines) <= 2 and all(line.startswith("  hint:") for line in lines[1:]), result.stderr


@pytest.fixture
def fresh_clone(tmp_path):
    """The project's files as a clone has them before `dvc repro`: no models, no data."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    return tmp_path


def test_validate_and_tasks_describe_the_default_nine_tasks(fresh_clone, cli):
    validated = finlora_process(fresh_clone, "validate")  # the console script pip installed
    assert validated.returncode == 0, validated.stderr
    assert "groups: sentiment (fpb, fiqa, tfns, nwgi), headline (headline), ner (ner), finer (finer), " \
           "xbrl (xbrl_tags, xbrl_value)" in validated.stdout
    assert_user_error(finlora_process(fresh_clone, "nosuch"), "No such command 'nosuch'.")
    listed = cli(fresh_clone, "tasks")
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(TASKS)


def test_predict_and_export_before_repro_say_to_run_it(fresh_clone, cli):
    assert_user_error(cli(fresh_clone, "predict", "--task", "fpb", "Sales rose."), "models/base/finlora_base.json: not found")
    assert_user_error(cli(fresh_clone, "export", "sentiment", "out"), "models/base/finlora_base.json: not found")
    assert not (fresh_clone / "out").exists()


@pytest.mark.parametrize("args, fragment", [
    (("predict", "--task", "nosuch", "x"), "unknown task 'nosuch'"),
    (("predict", "--task", "fpb"), "give either TEXT or --input FILE"),
    (("predict", "--task", "finer", "x"), "finlora predict labels classification tasks"),
    (("export", "nosuch", "out"), "unknown task group 'nosuch'"),
    (("profile", "paper-2bit"), "no such profile"),
    (("sweep",), "`dvc exp show --json` failed"),
    (("validate", "--params", "missing.yaml"), "missing.yaml: file not found"),
    (("nosuch",), "No such command 'nosuch'."),
    (("predict", "--task", "fpb", "--bogus", "1", "x"), "No such option: --bogus"),
    (("write-sample", "out", "--train", "0"), "Invalid value for '--train'"),
    (("compare", "HEAD"), "Missing argument 'run_b'."),
])
def test_user_errors_end_in_one_line(fresh_clone, args, fragment, cli):
    assert_user_error(cli(fresh_clone, *args), fragment)


def test_profile_prints_overrides_for_dvc_exp_run(fresh_clone, cli):
    result = cli(fresh_clone, "profile", "paper-4bit-r4")
    assert result.returncode == 0, result.stderr
    assert "-S quant.bits=4" in result.stdout and "-S lora.rank=4" in result.stdout


def test_sweep_table_covers_every_task_kind_of_the_default_results():
    """The repository's own results (all nine tasks; XBRL values have no F1) as `dvc exp show`
    reports them: metrics/tasks/, checked against metrics/summary.json beside it."""
    summary = json.loads((REPO / "metrics" / "summary.json").read_text())
    metrics = {f"metrics/tasks/{path.name}": {"data": json.loads(path.read_text())}
               for path in sorted((REPO / "metrics" / "tasks").glob("*.json"))}
    shown = [{"rev": "workspace", "name": "workspace",
              "data": {"rev": "workspace", "params": {"params.yaml": {"data": {"lora": {"rank": 4}, "quant": {"bits": 16}}}},
                       "metrics": metrics}}]
    table = rows(collect(shown))
    default_tasks = load_params(REPO / "params.yaml").all_tasks
    assert sorted(row["task"] for row in table) == sorted(task for task in summary if task != "train") \
        == sorted(default_tasks)
    values = next(row for row in table if row["task"] == "xbrl_value")
    assert values["f1_weighted"] is None and values["accuracy"] == summary["xbrl_value"]["lora"]["accuracy"]
    mean = sum(summary[task]["lora"]["accuracy"] for task in default_tasks) / len(default_tasks)
    assert markdown(table, varied(collect(shown))).splitlines()[2].endswith(f"| {100 * mean:.2f} |")


def test_estimate_prints_both_breakdowns_and_refuses_what_does_not_fit(fresh_clone, cli):
    config = REPO / "tests" / "fixtures" / "configs" / "llama-3.1-8b.json"
    result = cli(fresh_clone, "estimate", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "training, group sentiment: 16-bit, r4 on q_proj, k_proj, v_proj, batch 8 x 1024 tokens" in result.stdout
    assert "linear layers (16-bit)                                13.959 GB" in result.stdout
    assert "KV cache" in result.stdout
    assert "inference: 16-bit, batch 16 x (1024 prompt + 8 new) tokens" in result.stdout
    xbrl = cli(fresh_clone, "estimate", "--config", str(config), "--group", "xbrl")
    assert "inference: 16-bit, batch 2 x (8192 prompt + 8 new) tokens" in xbrl.stdout  # eval.batch_tokens 16384
    assert_user_error(cli(fresh_clone, "estimate", "--config", str(config), "--available-gb", "8"),
                      "more than the 8.0 GB of --available-gb")
    assert_user_error(cli(fresh_clone, "estimate"), "cannot read its config.json")
