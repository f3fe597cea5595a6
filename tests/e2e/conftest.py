"""Run the installed `crmflow` command as a user would, against a private store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Crmflow = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def crmflow(tmp_path: Path) -> Crmflow:
    env = {**os.environ, "CRMFLOW_DATABASE_URL": str(tmp_path / "crm.db"), "COLUMNS": "200", "USER": "ada"}

    def invoke(*args: str, check: bool = True, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        # `python -m crmflow` is the same entry point as the `crmflow` script.
        done = subprocess.run([sys.executable, "-m", "crmflow", *args], env={**env, **(extra_env or {})}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"crmflow {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    return invoke
