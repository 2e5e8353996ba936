"""Running the real ``tradetrail`` command as a subprocess against the test database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).with_name("tradetrail")


def tt(env, *args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"tradetrail {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc
