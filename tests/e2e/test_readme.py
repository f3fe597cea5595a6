"""A newcomer copies the README's code blocks into a shell: each one that needs no server works as written.

The blocks run in order, in one folder holding the repository's `processes/`
and `examples/`, against one private store, as a reader going down the page
would. A block that needs a server or installs crmflow says so in an HTML
comment just above it (`<!-- not run by tests/e2e/test_readme.py: why -->`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
NOT_RUN = re.compile(r"<!-- not run by tests/e2e/test_readme\.py: (?P<why>.+?) -->\s*$")
FENCE = re.compile(r"^```(?P<language>\w*)\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    code: str
    not_run_because: str | None


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for fence in FENCE.finditer(text):
        before = text[: fence.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.search(before)
        blocks.append(Block(text.count("\n", 0, fence.start()) + 1, fence["language"], fence["code"],
                            marker["why"] if marker else None))  # fmt: skip
    return blocks


RUNNABLE = [b for b in readme_blocks() if b.language in ("bash", "python") and b.not_run_because is None]


def test_every_shell_block_the_readme_test_skips_says_why() -> None:
    shell = [b for b in readme_blocks() if b.language == "bash"]
    assert len(RUNNABLE) >= 4, "the sales story, the designers' and analysts' commands and the Python API run"
    unexplained = [b.line for b in shell if b not in RUNNABLE and not (b.not_run_because or "").strip()]
    assert not unexplained, f"README.md blocks at lines {unexplained} are skipped without a reason"


@pytest.fixture(scope="module")
def reader_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    for shipped in ("processes", "examples"):
        (folder / shipped).symlink_to(ROOT / shipped, target_is_directory=True)
    return folder


def test_the_readme_code_blocks_run_as_written_one_after_another(reader_folder: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("the README's sales story reads ids with jq, which is not installed")
    bin_dir = str(Path(sys.executable).parent)  # the `crmflow` script of this installation
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200",
           "CRMFLOW_DATABASE_URL": str(reader_folder / "store" / "crm.db")}  # fmt: skip
    (reader_folder / "store").mkdir()
    outputs = []
    for block in RUNNABLE:
        argv = ["bash", "-euo", "pipefail", "-c", block.code] if block.language == "bash" else [sys.executable, "-c", block.code]
        done = subprocess.run(argv, cwd=reader_folder, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"README.md block at line {block.line} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    everything = "\n".join(outputs)
    # The sales story converts Ada's lead into a 9,000 pilot; the analysts' block rebuilds the read
    # models and the pipeline shows it.
    assert "LeadConverted" in everything
    assert "9000.00" in everything, "the pipeline report shows the story's opportunity"
    assert (reader_folder / "crmflow.schema.json").is_file(), "`process schema --output` wrote the schema"
