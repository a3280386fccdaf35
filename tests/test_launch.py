"""finlora.launch: the DeepSpeed launcher's arguments for each way a training is started, and the
folder where DeepSpeed's ops are built, with a lock left by a killed build reported, not waited on."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_env
from finlora import launch
from finlora.errors import FinloraError


@pytest.fixture
def hostfile(tmp_path) -> str:
    path = tmp_path / "hosts"
    path.write_text("# two nodes\nnode-a slots=8\n\nnode-b slots=8\n")
    return str(path)


def test_one_machine_gets_a_free_port_and_no_hostfile():
    args = launch.launcher_args("none", {})
    assert args[0] == "--master_port" and args[1].isdigit() and len(args) == 2
    assert launch.launcher_args("none", {"FINLORA_MASTER_PORT": "29700"}) == ["--master_port", "29700"]


def test_a_hostfile_run_from_this_machine_names_it(hostfile):
    assert launch.launcher_args(hostfile, {"FINLORA_MASTER_PORT": "1234", "FINLORA_MASTER_ADDR": "node-a"}) == \
        ["--hostfile", hostfile, "--master_port", "1234", "--master_addr", "node-a"]


def test_a_node_under_a_scheduler_gets_its_rank_and_the_shared_rendezvous(hostfile):
    env = {"FINLORA_NODE_RANK": "1", "FINLORA_MASTER_ADDR": "node-a", "FINLORA_MASTER_PORT": "29600"}
    assert launch.launcher_args(hostfile, env) == ["--hostfile", hostfile, "--no_ssh", "--node_rank", "1",
                                                   "--master_addr", "node-a", "--master_port", "29600"]


@pytest.mark.parametrize("hosts, env, message", [
    ("none", {"FINLORA_NODE_RANK": "0"}, "FINLORA_NODE_RANK is set, but train.hostfile is none"),
    ("file", {"FINLORA_NODE_RANK": "0", "FINLORA_MASTER_PORT": "29600"}, "FINLORA_MASTER_ADDR is not"),
    ("file", {"FINLORA_NODE_RANK": "0", "FINLORA_MASTER_ADDR": "node-a"}, "FINLORA_MASTER_PORT is not"),
    ("file", {"FINLORA_NODE_RANK": "2", "FINLORA_MASTER_ADDR": "a", "FINLORA_MASTER_PORT": "1"},
     "FINLORA_NODE_RANK = '2' is not valid; valid: 0 to 1, one per node of"),
    ("file", {"FINLORA_NODE_RANK": "one", "FINLORA_MASTER_ADDR": "a", "FINLORA_MASTER_PORT": "1"},
     "FINLORA_NODE_RANK = 'one' is not valid"),
])
def test_a_node_rank_without_what_it_needs_is_named(hostfile, hosts, env, message):
    with pytest.raises(FinloraError, match=message):
        launch.launcher_args(hostfile if hosts == "file" else "none", env)


def test_ops_are_built_inside_the_environment(monkeypatch):
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    assert launch.extensions_dir() == Path(sys.prefix) / "torch_extensions"
    assert os.environ["TORCH_EXTENSIONS_DIR"] == str(Path(sys.prefix) / "torch_extensions")  # for the ranks too
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", "/opt/ops")
    assert launch.extensions_dir() == Path("/opt/ops")  # the user's choice stays


def test_ops_build_with_the_environments_own_ninja(monkeypatch):
    """Two ninja versions read each other's build log as stale: every switch rebuilt the op."""
    import shutil

    scripts = Path(sys.executable).parent
    if not (scripts / "ninja").is_file():
        pytest.skip("this environment has no ninja of its own")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    launch.extensions_dir()
    assert shutil.which("ninja") == str(scripts / "ninja")
    launch.extensions_dir()
    assert os.environ["PATH"] == f"{scripts}{os.pathsep}/usr/bin:/bin"  # added once


def test_a_lock_left_by_a_killed_build_is_named_and_one_in_use_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    launch.refuse_stale_build_locks()  # nothing built yet
    lock = tmp_path / "deepspeed_shm_comm" / "lock"
    lock.parent.mkdir()
    descriptor = os.open(lock, os.O_CREAT | os.O_EXCL)  # as torch's FileBaton holds it while it builds
    try:
        launch.refuse_stale_build_locks()
    finally:
        os.close(descriptor)
    with pytest.raises(FinloraError, match=f"{lock}: a build of a DeepSpeed op was interrupted") as raised:
        launch.refuse_stale_build_locks()
    assert f"remove the folder {lock.parent}" in raised.value.hint


def test_a_training_with_a_stale_build_lock_ends_in_one_line_instead_of_hanging(tmp_path):
    lock = tmp_path / "ops" / "deepspeed_shm_comm" / "lock"
    lock.parent.mkdir(parents=True)
    lock.touch()
    env = dict(run_env(), TORCH_EXTENSIONS_DIR=str(tmp_path / "ops"))
    script = "from finlora.errors import exit_on_error; from finlora.launch import init_distributed; " \
             "exit_on_error(init_distributed)"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0] == f"finlora: error: {lock}: a build of a DeepSpeed op was interrupted and " \
                                             "left this lock, on which every DeepSpeed start would wait forever"
