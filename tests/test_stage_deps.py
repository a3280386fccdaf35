"""dvc.yaml's deps cover the code each stage runs: every finlora module its command imports,
directly or through other modules, at the top of a file or inside a function. A module a stage
runs but does not list would let `dvc status` call stale outputs up to date."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO

SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """src/finlora/a/b.py or src/finlora/a/b/__init__.py for module `finlora.a.b`."""
    path = SRC.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def run_nodes(tree: ast.AST):
    """Every node of the tree but those under `if TYPE_CHECKING:`, which never run."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (inner for child in node.orelse for inner in [child, *run_nodes(child)])
            continue
        yield node
        yield from run_nodes(node)


def imported_modules(path: Path) -> set[str]:
    """The finlora modules a file imports anywhere in it, type-checking imports aside (`from
    finlora.x import y` counts y when y is itself a module)."""
    found = set()
    for node in run_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "finlora" and module_file(name)}


def closure(start: set[Path]) -> set[Path]:
    """Every file reached from `start` through finlora imports; importing a.b runs a/__init__.py."""
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            parts = name.split(".")
            todo += [module_file(".".join(parts[:n])) for n in range(1, len(parts) + 1) if module_file(".".join(parts[:n]))]
    return seen


def command_entry_points(command: str) -> set[Path]:
    """The files a stage's command runs: `python stages/x.py` and `python -m finlora.y`."""
    scripts = {REPO / script for script in re.findall(r"(stages/\w+\.py)", command)}
    modules = {module_file(name) for name in re.findall(r"-m (finlora[\w.]*)", command)}
    return scripts | {m for m in modules if m}


def stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(REPO)
    return any(relative == Path(dep) or Path(dep) in relative.parents for dep in deps)


@pytest.mark.parametrize("name", list(stages()))
def test_stage_deps_cover_every_module_it_runs(name):
    stage = stages()[name]
    body = stage.get("do", stage)
    files = closure(command_entry_points(body["cmd"]))
    assert len(files) > 2, f"found no code behind the command of {name}: {body['cmd']}"
    missing = sorted(str(path.relative_to(REPO)) for path in files if not covered(path, body["deps"]))
    assert not missing, f"stage {name} runs {missing} but does not list them in dvc.yaml deps"


def test_the_closure_follows_imports_inside_functions(tmp_path):
    """The check itself: preprocess imports finlora.models only inside a function; protocols
    imports finlora.answers only for type checking."""
    preprocess = closure({REPO / "stages" / "preprocess.py"})
    assert SRC / "finlora" / "models.py" in preprocess
    assert SRC / "finlora" / "training.py" not in preprocess
    assert SRC / "finlora" / "answers.py" not in closure({SRC / "finlora" / "protocols.py"})


def test_report_code_reruns_only_the_report():
    users = [name for name, stage in stages().items()
             if "src/finlora/report.py" in stage.get("do", stage)["deps"]]
    assert users == ["report"]


def test_scoring_code_never_reruns_the_data_stages():
    """Editing a scorer or a protocol reruns evaluation, never download or preprocessing."""
    scoring = {f"src/finlora/{name}.py" for name in ("metrics", "scoring", "protocols", "bertscore")}
    for name in ("download", "preprocess"):
        body = stages()[name]["do"]
        files = {str(path.relative_to(REPO)) for path in closure(command_entry_points(body["cmd"]))}
        assert not scoring & (files | set(body["deps"])), name


def test_no_data_source_imports_the_preparation_code():
    sources = (SRC / "finlora" / "sources").glob("*.py")
    assert SRC / "finlora" / "prepare.py" not in closure(set(sources))


def test_scoring_code_never_retrains():
    """Scoring lives in metrics.py and answers.py: editing it reruns evaluation, never training."""
    train = stages()["train"]
    files = {str(path.relative_to(REPO)) for path in closure(command_entry_points(train["cmd"]))}
    assert not {"src/finlora/metrics.py", "src/finlora/answers.py"} & (files | set(train["deps"]))


def test_the_train_stage_reads_every_train_param_but_the_seed_list():
    """Adding a seed adds trainings (the matrix); it must not retrain the seeds already trained."""
    from finlora.config import TrainParams

    listed = set(stages()["train"]["params"])
    assert {f"train.{name}" for name in TrainParams.__dataclass_fields__} - listed == {"train.seeds"}
    assert "train" not in listed
