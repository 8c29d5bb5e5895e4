"""
``make test-min-deps``: pin every runtime dependency of the provider to the floor pyproject.toml declares.

Prints a pip constraints file: ``name==floor`` for each entry of ``[project] dependencies`` but
Apache Airflow, which stays at the release pip picks in the declared range (the floors must work
with the Airflow users install). The floors are written once, in pyproject.toml; a dependency
declared without a ``>=`` floor is an error, since there would be nothing to test.

Usage: ``python -m scripts.min_constraints [pyproject.toml] > constraints.txt`` (Python 3.11+ for tomllib);
``--check`` instead says which versions are installed and fails unless each is its floor.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import tomllib

#: Left at the version pip resolves: the floors are tested against the current Airflow.
UNPINNED = {"apache-airflow"}

_FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*(?:;.*)?$")


def floors(pyproject: Path) -> dict[str, str]:
    """Return ``{name: floor}`` of the runtime dependencies of ``pyproject``, but the unpinned ones."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    result: dict[str, str] = {}
    for requirement in dependencies:
        match = _FLOOR.match(requirement)
        if match is None:
            raise SystemExit(f"{pyproject}: cannot read the dependency {requirement!r}")
        name, specifiers = match.group(1).lower(), match.group(2)
        if name in UNPINNED:
            continue
        floor = re.search(r">=\s*([^,\s]+)", specifiers)
        if floor is None:
            raise SystemExit(f"{pyproject}: the dependency {requirement!r} declares no floor (>=): add one")
        result[name] = floor.group(1)
    return result


def check_installed(pinned: dict[str, str]) -> None:
    """Print the installed version of each pinned dependency; exit non-zero unless each is its floor."""
    from packaging.version import Version  # installed with the package; a fresh venv has none yet

    wrong = []
    for name, floor in pinned.items():
        installed = metadata.version(name)
        print(f"{name} {installed} (floor {floor})")
        if Version(installed) != Version(floor):
            wrong.append(name)
    if wrong:
        raise SystemExit(f"not at their floor: {', '.join(wrong)}; remove .venv-min/ and run make test-min-deps again")


def main(argv: list[str]) -> None:
    args = [arg for arg in argv if arg != "--check"]
    pinned = floors(Path(args[0] if args else "pyproject.toml"))
    if "--check" in argv:
        check_installed(pinned)
        return
    for name, floor in pinned.items():
        print(f"{name}=={floor}")


if __name__ == "__main__":
    main(sys.argv[1:])
