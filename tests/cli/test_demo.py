"""``lstmfpga demo`` end to end at toy sizes: every stage runs, the report holds every section,
golden and RTL agree, and a second run skips the stages whose results exist."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lstmfpga.cli.main import main

pytest.importorskip("torch")
pytest.importorskip("cocotb")

TINY = ["--videos", "16", "--temporal-videos", "16", "--trials", "3", "--epochs", "2", "--qat-epochs", "1",
        "--image-size", "32", "--verify-sequences", "2", "--lanes", "16", "--no-performance-reference"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """The images and tables of a page: every ``<img src>``, and each table's first row's cell tags."""

    def __init__(self):
        super().__init__()
        self.images, self.tables = [], []
        self._row = None

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "table":
            self.tables.append([])
            self._row = 0
        elif tag == "tr" and self._row is not None:
            self._row += 1
        elif tag in ("th", "td") and self._row == 1:
            self.tables[-1].append(tag)

    def handle_endtag(self, tag):
        if tag == "table":
            self._row = None


def _check_page(out: Path) -> _Page:
    """Every image the page shows is a PNG that opens; every table starts with a header row."""
    from matplotlib.image import imread

    page = _Page()
    page.feed((out / "index.html").read_text())
    assert page.images and page.tables
    for src in page.images:
        path = out / src
        assert path.is_file() and path.stat().st_size > 0, src
        assert path.read_bytes()[:8] == PNG_MAGIC, src
        assert imread(path).ndim == 3, src
    for cells in page.tables:
        assert cells and set(cells) == {"th"}, cells
    return page


@pytest.mark.slow
def test_demo_runs_every_stage_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "[15/15] plan zcu104: done" in printed
    assert "golden vs RTL: identical" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["golden_vs_rtl"]["hidden_identical"] and summary["golden_vs_rtl"]["logits_identical"]
    for key in ("float_lstm", "frame_average", "golden", "rtl"):
        assert 0.0 <= summary[key]["accuracy"] <= 1.0, key
    temporal = summary["temporal_only_set"]
    assert sum(map(sum, temporal["lstm"]["confusion_matrix"])) == 8
    assert temporal["frame_average"]["confusion_matrix"]
    page = (out / "index.html").read_text()
    for section in ("Detection", "Temporal-only fakes: LSTM vs frame average", "Hardware (zcu104)", "Plots",
                    "Performance: one sequence at batch 1", "<td>binding limit</td>", "<th>planner limit</th>"):
        assert section in page
    assert "<pre>" not in page
    images = _check_page(out).images
    for image in ("performance.png", "search/history.png", "search/parallel.png", "search/importance.png",
                  "search/best/roc.png", "temporal/lstm/roc.png", "temporal/frame-avg/roc.png"):
        assert image in images, image
    kinds = {row["kind"] for row in summary["performance_us_per_sequence"]}
    assert kinds == {"FPGA (planned, cycle model)", "this CPU (measured now)"}
    assert all(row["us_per_sequence"] > 0 for row in summary["performance_us_per_sequence"])
    assert "performance, this demo's model: FPGA" in printed

    before = (out / "search" / "best" / "metrics.json").stat().st_mtime_ns
    assert main(["demo", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "search: already done" in printed and "train lstm (temporal-only set): already done" in printed
    assert (out / "search" / "best" / "metrics.json").stat().st_mtime_ns == before
