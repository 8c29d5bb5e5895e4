"""
Render docs/reliability.md from the records the reliability suite wrote. Nothing here is typed by hand.

The tests only record (``tests/reliability/results/<category>.json``, git-ignored); writing the page
is its own step, ``make reliability-report``. Each section of the page is rewritten only from new
records of its own, and kept as it is when there are none (a fresh clone has no records at all,
``make test`` records no distributed run) or when the records hold fewer cases than the page shows
(a run of part of a section): a section is never dropped for want of data.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "tests" / "reliability" / "results"
DOC = ROOT / "docs" / "reliability.md"

COMMANDS = {
    "fault_matrix": ".venv/bin/python -m pytest tests/reliability/test_fault_matrix.py",
    "bad_input": ".venv/bin/python -m pytest tests/reliability/test_bad_input.py",
    "secrets": ".venv/bin/python -m pytest tests/reliability/test_real_airflow.py -k key_appears_nowhere",
    "restarts": ".venv/bin/python -m pytest tests/reliability/test_real_airflow.py -k killed",
    "load": ".venv/bin/python -m pytest tests/reliability/test_real_airflow.py -k 200_jobs",
    "distributed": "make e2e-distributed",
}
TITLES = {
    "fault_matrix": "Fault matrix: every endpoint x every fault",
    "bad_input": "Bad input: operators, sensor, hook and connection",
    "secrets": "Secrets: the service key appears nowhere",
    "restarts": "Restarts: triggerer killed, task process killed",
    "load": "Load: concurrently deferred jobs in one triggerer",
    "distributed": "Distributed deployment: PostgreSQL, Celery, two schedulers, triggerers and workers",
}
HEADER = [
    "# Reliability",
    "",
    "Written by `make reliability-report` from the records of the reliability suite in `tests/reliability/` "
    "(run by `make test`) and of `make e2e-distributed`; do not edit by hand. Each section gives the run "
    "that measured it: a section is rewritten only from a newer passing run of its own tests, and kept as it "
    "is until there is one.",
    "",
    "Measure again with `make test` (or one section with the command under its heading, or "
    "`make e2e-distributed`), then `make reliability-report`.",
]

#: pytest's temporary folders (``/tmp/pytest-of-root/pytest-223/test_x0``) differ on every run: shown as <tmp>.
_PYTEST_TMP = re.compile(r"/[^\s'\"|]*?/pytest-of-[^/\s]+/pytest-\d+/[^/\s'\"|]+")
#: How a section counts its cases: "cells tried: **152**" or "cases tried: **51**".
_COUNT = re.compile(r"^- (?:cells|cases) tried: \*\*(\d+)\*\*", re.MULTILINE)
_MEASURED = re.compile(r"^Measured: ", re.MULTILINE)
#: The whole page's stamp of the format before sections carried their own.
_OLD_STAMP = re.compile(r"^Last written: (.+?)\.?$", re.MULTILINE)


def run_facts() -> dict[str, str]:
    """What the records of this run say about where and when they were measured."""
    return {
        "measured": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "host": platform.node() or "unknown",
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _load(results_dir: Path) -> dict[str, dict[str, Any]]:
    """Each category's records: ``{"cases": [...], "measured": ..., ...}`` (a bare list from older runs)."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, list):
            modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            data = {"cases": data, "measured": f"{modified:%Y-%m-%d %H:%M} UTC"}
        records[path.stem] = data
    return records


def _split(page: str) -> tuple[list[str], dict[str, str]]:
    """The page's section titles in order, and each section's text (its heading included)."""
    titles: list[str] = []
    sections: dict[str, str] = {}
    for block in re.split(r"(?m)^(?=## )", page)[1:]:
        title = block.splitlines()[0][3:].strip()
        titles.append(title)
        sections[title] = block.rstrip("\n")
    return titles, sections


def _cell(value: Any) -> str:
    return _PYTEST_TMP.sub("<tmp>", str(value)).replace("|", "\\|").replace("\n", " ")


def _summary_fault_matrix(cases: list[dict[str, Any]]) -> list[str]:
    outcomes = Counter(case["observed"] for case in cases)
    duplicates = sum(max(0, case["jobs"] - 1) for case in cases)
    double_executions = sum(max(0, case["executions"] - 1) for case in cases)
    lines = [
        f"- cells tried: **{len(cases)}** ({len({c['endpoint'] for c in cases})} endpoint/client pairs x "
        f"{len({c['fault'] for c in cases})} faults); as expected: **{sum(c['passed'] for c in cases)}**",
        *(f"- {outcome}: {count}" for outcome, count in sorted(outcomes.items())),
        f"- jobs duplicated (more than one job for one logical run): **{duplicates}**",
        f"- executions duplicated (a job executed twice): **{double_executions}**",
        "",
        "| endpoint (client) | fault | expected | observed | jobs | executions |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {c['endpoint']} | {c['fault']} | {c['expected']} | {c['observed']} | {c['jobs']} | {c['executions']} |"
        for c in cases
    ]
    return lines


def _summary_generic(cases: list[dict[str, Any]]) -> list[str]:
    lines = [f"- cases tried: **{len(cases)}**; as expected: **{sum(bool(c.get('passed')) for c in cases)}**"]
    totals: Counter[str] = Counter()
    for case in cases:
        for key, value in case.get("figures", {}).items():
            totals[key] += value
    lines += [f"- {key}: **{value}**" for key, value in sorted(totals.items())]
    columns = [key for key in ("case", "expected", "observed", "detail") if any(key in c for c in cases)]
    if columns:
        lines += ["", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        for case in cases:
            lines.append("| " + " | ".join(_cell(case.get(key, "")) for key in columns) + " |")
    return lines


def _section(category: str, record: dict[str, Any]) -> str:
    cases = record["cases"]
    where = ", ".join(str(record[key]) for key in ("python", "machine") if record.get(key))
    measured = f"Measured: {record.get('measured', 'unknown')}"
    if record.get("host"):
        measured += f" on {record['host']}"
    lines = [
        f"## {TITLES.get(category, category)}",
        "",
        measured + (f" (Python {where})." if where else "."),
        "",
        f"Command: `{COMMANDS.get(category, 'make test')}`",
        "",
    ]
    lines += _summary_fault_matrix(cases) if category == "fault_matrix" else _summary_generic(cases)
    return "\n".join(lines)


def _kept(section: str, old_stamp: str | None) -> str:
    """A section kept as it is; one from before sections carried a date gets the old page's stamp."""
    if _MEASURED.search(section) or old_stamp is None:
        return section
    heading, _, rest = section.partition("\n")
    return f"{heading}\n\nMeasured: no later than {old_stamp}.\n{rest}"


def write_report(
    doc: Path = DOC, results_dir: Path = RESULTS_DIR, *, allow_fewer: bool = False
) -> tuple[list[str], list[str]]:
    """
    Rewrite ``doc``'s sections that have new records in ``results_dir``; keep every other section.

    :param allow_fewer: replace a section also with records of fewer cases than it shows (a case removed
        on purpose); otherwise such a section is kept and reported.
    :return: the categories rewritten, and warnings (sections kept although they had records).
    """
    page = doc.read_text() if doc.exists() else ""
    old_titles, old_sections = _split(page)
    stamp_match = _OLD_STAMP.search(page)
    old_stamp = stamp_match.group(1) if stamp_match else None
    records = _load(results_dir)

    written: list[str] = []
    warnings: list[str] = []
    new_sections: dict[str, str] = {}
    for category, record in records.items():
        title = TITLES.get(category, category)
        old = old_sections.get(title)
        shown = _COUNT.search(old) if old else None
        if shown and len(record["cases"]) < int(shown.group(1)) and not allow_fewer:
            warnings.append(
                f"{title}: kept; the records hold {len(record['cases'])} cases, the page shows {shown.group(1)} "
                f"(run the whole section: {COMMANDS.get(category, 'make test')}; or --allow-fewer)"
            )
            continue
        new_sections[title] = _section(category, record)
        written.append(category)

    order = [TITLES[c] for c in TITLES] + [t for t in old_titles if t not in TITLES.values()]
    order += sorted(t for t in new_sections if t not in order)
    lines = list(HEADER)
    for title in order:
        if title in new_sections:
            lines += ["", new_sections[title]]
        elif title in old_sections:
            lines += ["", _kept(old_sections[title], old_stamp)]
    doc.write_text("\n".join(lines) + "\n")
    return written, warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--allow-fewer", action="store_true", help="replace sections also with fewer cases")
    args = parser.parse_args(argv)
    written, warnings = write_report(allow_fewer=args.allow_fewer)
    print(f"{DOC.relative_to(ROOT)}: rewrote {', '.join(written) or 'no section'} from {RESULTS_DIR.relative_to(ROOT)}")
    for warning in warnings:
        print(f"warning: {warning}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
