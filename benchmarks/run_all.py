"""Runs every benchmark behind the README's figures, one after the other (`make benchmark`).

Each script prints its own table and method; expect about 15 minutes on a 2-core machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_features.py",
    "bench_backtest.py",
    "bench_permutation.py",
    "bench_models.py",
    "bench_monitoring.py",
    "bench_cli_and_serving.py",
    # Not the fault sweep (hours for every point): bench_fault_sweep.py is run on its own.
    "bench_serving_load.py",
)


def main() -> int:
    failed = []
    for script in SCRIPTS:
        print(f"\n=== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], check=False).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
