"""The machine around a training: joining the launcher's process group on a free rendezvous port,
and DeepSpeed's shared-memory buffers, which it never removes.

The rendezvous port: DeepSpeed's default, 29500, is taken by any other training on the machine (a
second pipeline, a queued experiment, a test), so the train stage asks for a free one each time it
starts: `deepspeed --master_port $(python -m finlora.launch) ...`.
"""

from __future__ import annotations

import atexit
import glob
import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def init_distributed() -> tuple[int, int]:
    """Join the process group the launcher set up; a plain `python` run becomes rank 0 of 1."""
    import deepspeed
    import torch

    if "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(free_port()))
    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    atexit.register(_release_shared_memory)
    if os.environ.get("LOCAL_RANK", "0") == "0":  # every local rank's buffer exists by now
        remove_orphaned_shared_memory()
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


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


if __name__ == "__main__":
    print(free_port())
