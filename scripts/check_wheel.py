"""
``make test-airflow``: the built wheel next to this virtualenv's Airflow.

Two checks, with the interpreter of the virtualenv under test:

1. pip accepts the wheel's requirements next to the installed Airflow and the minor's pins
   (``pip install --dry-run``): the declared range admits this Airflow, and nothing it needs
   conflicts with the pins.
2. Every module of the package imports from the wheel, unpacked outside the source tree
   (``pip install --no-deps --target``), and from nowhere else.

``tests/dist`` installs and exercises the wheel in a fresh virtualenv with the newest Airflow.

Usage: ``python -m scripts.check_wheel WHEEL CONSTRAINTS WORKDIR``
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
import airflow_provider_opus as package
site = sys.argv[1]
names = [package.__name__] + [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
outside = []
for name in names:
    module = importlib.import_module(name)
    if not module.__file__.startswith(site):
        outside.append(f"{name}: {module.__file__}")
assert not outside, "imported from outside the wheel: " + ", ".join(outside)
from airflow import __version__
print(f"{len(names)} modules imported from the wheel with Airflow {__version__}")
"""


def main(wheel: Path, constraints: Path, workdir: Path) -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--dry-run", "-c", str(constraints), str(wheel)], check=True)
    site = workdir / "site"
    subprocess.run([*pip, "--no-deps", "--upgrade", "--target", str(site), str(wheel)], check=True)
    env = {**os.environ, "PYTHONPATH": str(site), "AIRFLOW_HOME": str(workdir / "airflow-home")}
    # cwd outside the source tree, so nothing is imported from it.
    subprocess.run([sys.executable, "-c", _IMPORT_EVERY_MODULE, str(site)], cwd=workdir, env=env, check=True)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*(Path(arg).resolve() for arg in sys.argv[1:]))
