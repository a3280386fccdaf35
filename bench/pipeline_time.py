"""Time the default pipeline: run `dvc repro` (forced, so every stage runs) and print each
stage's wall time and the total against the 15-minute budget.

    python bench/pipeline_time.py            # in an installed, activated checkout
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

BUDGET_S = 15 * 60


def main() -> None:
    command = ["dvc", "repro", "--force", *sys.argv[1:]]
    start = last = time.perf_counter()
    current, times = None, {}
    # Unbuffered, so each "Running stage" line arrives when the stage starts.
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in process.stdout:
        match = re.match(r"Running stage '([^']+)'", line)
        if match:
            now = time.perf_counter()
            if current:
                times[current] = now - last
            current, last = match.group(1), now
    if process.wait() != 0:
        sys.exit(f"{' '.join(command)} failed")
    end = time.perf_counter()
    if current:
        times[current] = end - last
    total = end - start
    print("| stage | wall (s) |\n|---|---|")
    for stage, seconds in times.items():
        print(f"| {stage} | {seconds:.1f} |")
    print(f"| **total** | **{total:.0f}** |")
    print(f"total / 15-minute budget = {total / BUDGET_S:.2f}")


if __name__ == "__main__":
    main()
