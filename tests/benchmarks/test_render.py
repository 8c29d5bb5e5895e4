"""benchmarks/render.py: it rewrites only the generated blocks of docs/benchmarks.md, and never drops one silently."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pytest

from benchmarks import render
from benchmarks.common import load_result
from benchmarks.render import MarkerError, render_blocks, splice

BEFORE = "# Title\n\nHand-written *prose*, trailing spaces  \nand a tab\tinside.\n\n"
AFTER = "\nMore prose: 1.5x, not generated.\r\nLast line without a newline"
PAGE = f"{BEFORE}<!-- generated: a -->\nstale | table\n<!-- end generated: a -->{AFTER}"


def real_results() -> dict:
    return {name: load_result(name) for name in render.STEPS}


def outside_markers(page: str) -> list[str]:
    """The page with every generated block cut out: what is written by hand."""
    return re.split(r"<!-- generated: \S+ -->.*?<!-- end generated: \S+ -->", page, flags=re.DOTALL)


def test_splice_replaces_the_block_and_keeps_the_text_around_it_byte_for_byte() -> None:
    page = splice(PAGE, {"a": "| fresh | table |"})

    assert page == f"{BEFORE}<!-- generated: a -->\n\n| fresh | table |\n\n<!-- end generated: a -->{AFTER}"
    assert page.startswith(BEFORE) and page.endswith(AFTER)
    assert "stale" not in page
    assert splice(page, {"a": "| fresh | table |"}) == page  # rendering again changes nothing


def test_a_missing_end_marker_is_an_error_naming_the_block() -> None:
    page = f"{BEFORE}<!-- generated: a -->\nstale\n{AFTER}"

    with pytest.raises(MarkerError, match=r"line 6: <!-- generated: a --> has no end marker"):
        splice(page, {"a": "fresh"})


@pytest.mark.parametrize(
    ("page", "message"),
    [
        # The end marker of another block: a's is missing.
        (
            "<!-- generated: a -->\n<!-- end generated: b -->\n",
            r"line 1: <!-- generated: a --> has no <!-- end generated: a --> before line 2",
        ),
        # A start marker inside an open block.
        ("<!-- generated: a -->\n<!-- generated: b -->\n", r"<!-- generated: a --> has no <!-- end generated: a -->"),
        ("text\n<!-- end generated: a -->\n", r"line 2: <!-- end generated: a --> has no start marker"),
        ("<!-- generated: zzz -->\n<!-- end generated: zzz -->\n", r"<!-- generated: zzz --> names no block"),
        # A block render.py makes but the page has no markers for: never dropped silently.
        ("<!-- generated: a -->\n<!-- end generated: a -->\n", r"has no markers for b\b"),
        (
            "<!-- generated: a -->\n<!-- end generated: a -->\n<!-- generated: a -->\n<!-- end generated: a -->\n",
            r"line 3: <!-- generated: a --> appears a second time",
        ),
    ],
)
def test_marker_errors_name_the_marker(page: str, message: str) -> None:
    with pytest.raises(MarkerError, match=message):
        splice(page, {"a": "fresh", "b": "fresh"})


def test_the_page_keeps_its_hand_written_text_and_renders_the_same_twice(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    shutil.copyfile(render.DOC, doc)
    before = doc.read_text()

    render.render(doc, real_results())
    once = doc.read_text()
    render.render(doc, real_results())

    assert doc.read_text() == once
    assert outside_markers(once) == outside_markers(before)
    assert "| OpusJobTrigger: CPU per poll, N=1,000 | within 1.5x the floor |" in once
    assert "{" not in "".join(re.findall(r"<!-- generated: \S+ -->(.*?)<!-- end", once, flags=re.DOTALL))


def test_a_page_without_a_block_is_left_as_it_was(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    page = render.DOC.read_text()
    doc.write_text(re.sub(r"<!-- end generated: upload\.memory -->\n", "", page))

    with pytest.raises(MarkerError, match=r"<!-- generated: upload\.memory --> has no"):
        render.render(doc, real_results())
    assert doc.read_text() == re.sub(r"<!-- end generated: upload\.memory -->\n", "", page)


def test_figures_a_run_lacks_are_left_out_and_reported() -> None:
    results = copy.deepcopy(real_results())
    del results["triggerer_scale"]["summary"]["1000"]["httpx_shared"]

    blocks, left_out = render_blocks(results)

    assert blocks["triggerer_scale.httpx"] == "Not measured in this run."
    assert any("httpx1k[cpu_ms_per_poll]" in template for template in left_out)
    at_1000 = blocks["triggerer_scale.tables"].split("### N = 1,000")[1].split("### N =")[0]
    assert "raw httpx" not in at_1000
    thread = results["triggerer_scale"]["summary"]["1000"]["to_thread"]
    expected = f"| sync OpusHook via asyncio.to_thread | 1 | {thread['cpu_ms_per_poll']:.3f} | "
    assert expected + f"{thread['cpu_ms_per_poll_vs_floor']:.2f}x |" in at_1000


def test_a_step_without_results_says_how_to_produce_them() -> None:
    results = real_results()
    results["upload"] = None

    blocks, _ = render_blocks(results)

    assert blocks["upload.table"] == "No results yet: run `.venv/bin/python -m benchmarks.upload --save`."
    assert "Upload 1 GiB" not in blocks["summary"]
    assert "| Import increment over `airflow.sdk`: operators |" in blocks["summary"]
