"""benchmarks/charts.py: the page's SVG charts come from the results JSON, are valid SVG, and are stable."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from benchmarks import charts, render
from benchmarks.common import load_result

SVG = "{http://www.w3.org/2000/svg}"


def real_results() -> dict:
    return {name: load_result(name) for name in render.STEPS}


def parsed(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    return root


def test_every_chart_is_written_as_valid_svg_and_drawing_again_changes_nothing(tmp_path: Path) -> None:
    written = charts.write_charts(real_results(), tmp_path)
    first = {path.name: path.read_text() for path in written}
    charts.write_charts(real_results(), tmp_path)

    assert sorted(first) == sorted(charts.CHARTS)
    assert {path.name: path.read_text() for path in written} == first
    for text in first.values():
        parsed(text)


def test_the_scale_chart_draws_one_line_per_variant_through_the_medians_of_the_json() -> None:
    results = real_results()
    summary = results["triggerer_scale"]["summary"]
    root = parsed(charts.scale_cpu_chart(results))

    sizes = [rows for name, rows in summary.items() if name in ("100", "1000", "5000")]
    measured = {variant for rows in sizes for variant, row in rows.items() if not row["killed_runs"]}
    assert len(root.findall(f"{SVG}polyline")) == len(measured)
    tips = [title.text or "" for title in root.iter(f"{SVG}title")]
    trigger_5k = summary["5000"]["trigger"]["cpu_ms_per_poll"]
    assert f"OpusJobTrigger, N=5,000: {trigger_5k:.3f} ms per poll" in tips


def test_changed_figures_move_the_points() -> None:
    results = real_results()
    before = charts.scale_lag_chart(results)
    changed = copy.deepcopy(results)
    changed["triggerer_scale"]["summary"]["1000"]["trigger"]["lag_p99_ms"] *= 10

    after = charts.scale_lag_chart(changed)

    assert after != before
    assert re.findall(r"<title>.*?</title>", after) != re.findall(r"<title>.*?</title>", before)


def test_the_poll_economy_chart_ends_at_the_requests_of_a_day() -> None:
    results = real_results()
    root = parsed(charts.poll_requests_chart(results))

    assert len(root.findall(f"{SVG}polyline")) == len(results["poll_economy"]["request_curves"])
    legend = [text.text for text in root.iter(f"{SVG}text")]
    assert "fixed 30 s (default)" in legend and "max_poll_interval 1 h" in legend


def test_a_chart_without_results_says_so_and_is_still_written(tmp_path: Path) -> None:
    results = real_results()
    results["triggerer_scale"] = None
    results["poll_economy"] = None

    written = charts.write_charts(results, tmp_path)

    for path in written:
        root = parsed(path.read_text())
        assert "No results yet: run make bench." in [text.text for text in root.iter(f"{SVG}text")]


def test_render_draws_the_charts_next_to_the_page(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(render.DOC.read_text())

    render.render(doc, real_results())

    assert sorted(path.name for path in (tmp_path / "images").iterdir()) == sorted(charts.CHARTS)
    page = doc.read_text()
    for name in charts.CHARTS:
        assert f"images/{name}" in page  # the hand-written page shows every chart
