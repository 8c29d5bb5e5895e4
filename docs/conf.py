"""Sphinx configuration for the airflow-provider-opus documentation (built by ``make docs``)."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

# Autodoc imports the provider, which imports Airflow: give Airflow a throwaway home so the
# build never writes ~/airflow, and keep Airflow's example DAGs out of it.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="opus-docs-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from airflow_provider_opus import __version__  # noqa: E402

project = "airflow-provider-opus"
author = "airflow-provider-opus developers"
copyright = "airflow-provider-opus developers"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_default_options = {
    "members": True,
    "undoc-members": False,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autoclass_content = "class"

# Nitpicky mode (-n) stays on for the provider's own references. Types from other packages and
# the standard library cannot be resolved without intersphinx (the build has no network access),
# so only those are ignored here.
nitpick_ignore_regex = [
    (r"py:.*", r"(airflow|aiohttp|requests|tenacity|pendulum|pytest|_pytest|uvicorn|starlette|fastapi|jinja2)(\..*)?"),
    (r"py:.*", r"(collections\.abc|os|enum|typing|types|datetime|asyncio|ssl)\..*"),
    # Airflow types the provider imports only under TYPE_CHECKING, so annotations name them bare.
    (r"py:class", r"Context|Connection|BaseOperator|TaskInstanceKey|TriggerEvent"),
    # OpenLineage types, imported only under TYPE_CHECKING (the openlineage extra may be missing).
    (r"py:class", r"OperatorLineage|RunFacet|Dataset|openlineage(\..*)?"),
    # Type variables of generic signatures (RetryPolicy.call returns what its attempt returns).
    (r"py:class", r"T"),
    # A type alias (audit.AuditLog: the trail's list or the node-level object), spelled out in its docstrings.
    (r"py:class", r"AuditLog"),
    # The emulator's internal base classes, documented through OpusEmulator.
    (r"py:class", r"airflow_provider_opus\.emulator\.listeners\.\w+"),
    # Private helper types in signatures (status._WarningLog): private names have no page.
    (r"py:class", r"airflow_provider_opus(\.\w+)*\._\w+"),
]

# furo comes with the docs extra; a bare Sphinx falls back to its default theme.
html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_title = f"airflow-provider-opus {release}"
html_static_path: list[str] = []


def _drop_private_bases(app: Any, name: str, obj: Any, options: Any, bases: list[type]) -> None:
    """Leave private base classes out of the "Bases:" line: they have no page."""
    bases[:] = [base for base in bases if not base.__name__.startswith("_")]


def _resolve_provider_short_names(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """
    Resolve a bare name such as ``:class:`OpusRequestError``` to the one provider object of that name.

    A docstring may name a class its module imports; Sphinx looks for it in the docstring's own module only.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or "." in target:
        return None
    domain = env.get_domain("py")
    matches = [
        name
        for name in domain.objects
        if name.startswith("airflow_provider_opus.") and name.rsplit(".", 1)[-1] == target
    ]
    if len(matches) != 1:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], matches[0], node, contnode)


def setup(app: Any) -> None:
    """Connect the two helpers above."""
    app.connect("autodoc-process-bases", _drop_private_bases)
    app.connect("missing-reference", _resolve_provider_short_names)
