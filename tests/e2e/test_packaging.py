"""crmflow installs one namespace: `crmflow.*`, nothing generic in site-packages."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("aggregates", "processes", "projections", "workers")


def python_files() -> list[Path]:
    roots = [REPO / "crmflow", *(REPO / f for f in FOLDERS), REPO / "tests", REPO / "benchmarks"]
    return [path for root in roots for path in root.rglob("*.py")]


def bare_imports(path: Path) -> list[str]:
    return [f"{path.relative_to(REPO)}: {name}" for name in imported_modules(path) if name.split(".")[0] in FOLDERS]


def test_no_code_imports_a_folder_by_its_bare_name() -> None:
    offenders = [line for path in python_files() for line in bare_imports(path)]
    assert not offenders, "import these as crmflow.<folder> (ruff TID251 says the same):\n" + "\n".join(offenders)


@pytest.mark.parametrize("module", ["crmflow.aggregates.lead", "crmflow.workers.cli"])
def test_outside_the_repository_only_the_crmflow_namespace_imports(module: str, tmp_path: Path) -> None:
    def imports(name: str) -> bool:
        return subprocess.run([sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True).returncode == 0

    assert imports(module)
    assert not any(imports(folder) for folder in FOLDERS)


def test_python_dash_m_crmflow_is_the_crmflow_command(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "crmflow", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and "usage: crmflow" in done.stdout


def test_a_built_wheel_holds_only_the_crmflow_package_and_its_definitions(tmp_path: Path) -> None:
    # From a copy of what the sdist holds (a build in the work tree would leave build/ behind), with pip's
    # isolated build environment (setuptools from PyPI), as a release would.
    source = tmp_path / "source"
    for folder in ("crmflow", *FOLDERS):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    (wheel,) = tmp_path.glob("crmflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"crmflow", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "crmflow/workers/kafka/relay.py" in names and "crmflow/processes/definitions/form-to-lead.yaml" in names
    # The schema the shipped definitions' modeline names (../crmflow.schema.json), for editors.
    assert "crmflow/processes/crmflow.schema.json" in names
    entry_points = zipfile.ZipFile(wheel).read(wheel.name.split("-py3")[0] + ".dist-info/entry_points.txt").decode()
    assert "crmflow = crmflow.workers.cli:entrypoint" in entry_points


def test_kafka_python_is_imported_only_by_the_kafka_wrapper() -> None:
    product = [p for folder in FOLDERS for p in (REPO / folder).rglob("*.py")]
    importers = {str(p.relative_to(REPO)) for p in product for line in imported_modules(p) if line.split(".")[0] == "kafka"}
    assert importers == {"workers/kafka/clients.py"}


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names] + [
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module]  # fmt: skip
