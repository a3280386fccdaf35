"""The machines around a training: the DeepSpeed launcher's arguments for this node, joining its
process group, and DeepSpeed's shared-memory buffers, which it never removes.

The train stage runs `python -m finlora.launch deepspeed --num_gpus N stages/train.py ...`, which
adds the launcher's rendezvous and node arguments and runs it:
  - one machine (train.hostfile: none): a free rendezvous port, since DeepSpeed's default, 29500,
    is taken by any other training on the machine (a second pipeline, a queued experiment, a test);
  - several machines over ssh/pdsh from this one (a hostfile): the hostfile and a free port;
  - one launcher per machine, started by a scheduler (FINLORA_NODE_RANK set on each): the hostfile,
    --no_ssh, the node's rank and the rendezvous every node shares (FINLORA_MASTER_ADDR and
    FINLORA_MASTER_PORT).
Started on its own, the launcher holds the machine's training lock (finlora.exclusive); under a
scheduler the scheduler owns the machines, and two simulated nodes on one machine must not wait
for each other.

DeepSpeed compiles its CPU communication op on first use. The build goes inside the environment
(TORCH_EXTENSIONS_DIR under sys.prefix, not ~/.cache, where every environment would share it), and
a build lock that a killed build left behind is reported before DeepSpeed starts: torch's build
waits on such a lock forever.
"""

from __future__ import annotations

import atexit
import glob
import os
import socket
import sys
import time
from pathlib import Path

from finlora.config import load_params
from finlora.errors import FinloraError, exit_on_error
from finlora.exclusive import run_exclusively

NODE_ENV = ("FINLORA_NODE_RANK", "FINLORA_MASTER_ADDR", "FINLORA_MASTER_PORT")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def extensions_dir() -> Path:
    """Where torch builds DeepSpeed's ops: TORCH_EXTENSIONS_DIR, set to the environment's own
    folder unless the user set it; child processes (the launcher's ranks) inherit it.

    The build runs the `ninja` first on PATH. Two ninja versions (the environment's, from pip,
    and the system's) keep logs that do not match, so each rebuilt the op (about 40 s) whenever
    the other had built it last; the environment's own goes first on PATH, for every process."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
    scripts = Path(sys.executable).parent
    path = os.environ.get("PATH", "")
    if (scripts / "ninja").is_file() and not path.startswith(f"{scripts}{os.pathsep}"):
        os.environ["PATH"] = f"{scripts}{os.pathsep}{path}"
    return Path(os.environ["TORCH_EXTENSIONS_DIR"])


def refuse_stale_build_locks() -> None:
    """Stop with one line when an op build was killed half-way. torch's build holds its lock file
    open while it runs; a lock that no process holds open was left by a build that died, and
    every later build would wait on it forever."""
    folder = extensions_dir().resolve()
    locks = {str(path) for path in folder.glob("*/lock")}
    stale = sorted(locks - _open_files(str(folder) + os.sep)) if locks else []
    if stale:  # a build that just finished closes its lock a moment before removing it
        time.sleep(0.5)
        stale = [path for path in stale if Path(path).exists()]
    if stale:
        raise FinloraError(f"{stale[0]}: a build of a DeepSpeed op was interrupted and left this lock, on which "
                           "every DeepSpeed start would wait forever",
                           hint=f"remove the folder {Path(stale[0]).parent} (the op is rebuilt on the next run, "
                           "about 30 s) and rerun")


def build_cpu_ops() -> None:
    """Compile DeepSpeed's CPU communication op now (install.sh), into extensions_dir()."""
    refuse_stale_build_locks()
    from deepspeed.comm.torch import build_shm_op

    build_shm_op()


def init_distributed() -> tuple[int, int]:
    """Join the process group the launcher set up; a plain `python` run becomes rank 0 of 1."""
    refuse_stale_build_locks()
    import deepspeed
    import torch

    if "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(free_port()))
    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    atexit.register(_release_shared_memory)
    atexit.register(_leave_process_group)  # runs first (atexit is last in, first out)
    if os.environ.get("LOCAL_RANK", "0") == "0":  # every local rank's buffer exists by now
        remove_orphaned_shared_memory()
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def _leave_process_group() -> None:
    """Shut the process group's communication threads down before the interpreter does: left
    running, one of them can abort the process at exit ("terminate called without an active
    exception", exit code -6) after a training that succeeded, as rank 1 of the two-node test once did."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


SHARED_MEMORY_PREFIX = f"/dev/shm/deepspeed_allreduce_buffer_{os.getuid()}_"


def _release_shared_memory() -> None:
    """Remove this rank's all-reduce buffer that DeepSpeed's CPU communication op creates in
    /dev/shm and never removes: about 66 MB of RAM per training, named by the rendezvous port,
    so every run on a fresh port would leave another behind."""
    Path(f"{SHARED_MEMORY_PREFIX}{os.environ['MASTER_ADDR']}_{os.environ['MASTER_PORT']}_{os.environ['RANK']}"
         ).unlink(missing_ok=True)


def remove_orphaned_shared_memory() -> None:
    """Remove the all-reduce buffers of this user's runs that were killed before they could
    remove their own (SIGKILL, the out-of-memory killer): those that no process holds open."""
    leftovers = set(glob.glob(SHARED_MEMORY_PREFIX + "*"))
    if leftovers:
        for path in leftovers - _open_files(SHARED_MEMORY_PREFIX):
            Path(path).unlink(missing_ok=True)


def _open_files(prefix: str) -> set[str]:
    """The paths starting with `prefix` that a running process holds open or mapped, from /proc.
    DeepSpeed keeps its buffer's descriptor open from creation, and maps it."""
    held = set()
    for process in Path("/proc").glob("[0-9]*"):
        try:
            held.update(target for fd in (process / "fd").iterdir() if (target := os.readlink(fd)).startswith(prefix))
            held.update(line.split(maxsplit=5)[5] for line in (process / "maps").read_text().splitlines()
                        if prefix in line)
        except OSError:  # the process ended meanwhile, or is another user's
            continue
    return held


def launcher_args(hostfile: str, env: dict[str, str]) -> list[str]:
    """The DeepSpeed launcher's arguments for this node (see the module's description)."""
    if not env.get("FINLORA_NODE_RANK"):
        args = ["--master_port", env.get("FINLORA_MASTER_PORT") or str(free_port())]
        if env.get("FINLORA_MASTER_ADDR"):
            args += ["--master_addr", env["FINLORA_MASTER_ADDR"]]
        return (["--hostfile", hostfile] if hostfile != "none" else []) + args
    if hostfile == "none":
        raise FinloraError("FINLORA_NODE_RANK is set, but train.hostfile is none",
                           hint="name the hostfile that lists every node, the same file on each node")
    missing = [name for name in NODE_ENV[1:] if not env.get(name)]
    if missing:
        raise FinloraError(f"FINLORA_NODE_RANK is set, but {missing[0]} is not",
                           hint="every node needs the first node's address and one agreed free port: "
                           "FINLORA_MASTER_ADDR and FINLORA_MASTER_PORT")
    nodes = [line.split()[0] for line in Path(hostfile).read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    rank = env["FINLORA_NODE_RANK"]
    if not rank.isdigit() or int(rank) >= len(nodes):
        raise FinloraError(f"FINLORA_NODE_RANK = {rank!r} is not valid; valid: 0 to {len(nodes) - 1}, "
                           f"one per node of {hostfile}")
    return ["--hostfile", hostfile, "--no_ssh", "--node_rank", rank,
            "--master_addr", env["FINLORA_MASTER_ADDR"], "--master_port", env["FINLORA_MASTER_PORT"]]


def main(command: list[str]) -> None:
    if not command:
        raise FinloraError("usage: python -m finlora.launch deepspeed [ARGS...] SCRIPT [SCRIPT ARGS...]")
    full = command[:1] + launcher_args(load_params().train.hostfile, dict(os.environ)) + command[1:]
    refuse_stale_build_locks()  # also sets TORCH_EXTENSIONS_DIR for the launcher and its ranks
    if os.environ.get("FINLORA_NODE_RANK"):
        os.execvp(full[0], full)
    run_exclusively(full)


if __name__ == "__main__":
    exit_on_error(lambda: main(sys.argv[1:]))
