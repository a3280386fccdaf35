"""Run a command while holding this machine's training lock: `python -m finlora.exclusive CMD ...`.

The train stage runs its DeepSpeed launcher this way, so two trainings never share the machine's
GPUs (or CPU cores) at once: a second pipeline, or experiments from `dvc queue start -j 2`, wait
for the first instead of running out of memory. The lock is an flock on a file in the system's
temporary folder; the command inherits it through exec, and the kernel releases it when the
command ends, however it ends (SIGKILL included).
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from pathlib import Path


def lock_path() -> Path:
    return Path(tempfile.gettempdir()) / f"finlora-train-{os.getuid()}.lock"


def run_exclusively(command: list[str]) -> None:
    descriptor = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"finlora: another training holds {lock_path()}; waiting for it to finish", file=sys.stderr, flush=True)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
    os.set_inheritable(descriptor, True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m finlora.exclusive COMMAND [ARGS...]")
    run_exclusively(sys.argv[1:])
