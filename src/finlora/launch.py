"""A free TCP port for the DeepSpeed launcher's rendezvous.

Its default, 29500, is taken by any other training on the machine (a second pipeline, a queued
experiment, a test), so the train stage asks for a free one each time it starts:
`deepspeed --master_port $(python -m finlora.launch) ...`.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    print(free_port())
