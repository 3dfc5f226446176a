"""``lstmfpga demo`` end to end at toy sizes: every stage runs, the report holds every section,
golden and RTL agree, and a second run skips the stages whose results exist."""

from __future__ import annotations

import json

import pytest

from lstmfpga.cli.main import main

pytest.importorskip("torch")
pytest.importorskip("cocotb")

TINY = ["--videos", "16", "--temporal-videos", "16", "--trials", "2", "--epochs", "2", "--qat-epochs", "1",
        "--image-size", "32", "--verify-sequences", "2", "--lanes", "16"]


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
    for section in ("Detection", "Temporal-only fakes: LSTM vs frame average", "Hardware (zcu104)", "Plots"):
        assert section in page
    for image in ("search/best/roc.png", "temporal/lstm/roc.png", "temporal/frame-avg/roc.png"):
        assert (out / image).exists() and f'src="{image}"' in page

    before = (out / "search" / "best" / "metrics.json").stat().st_mtime_ns
    assert main(["demo", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "search: already done" in printed and "train lstm (temporal-only set): already done" in printed
    assert (out / "search" / "best" / "metrics.json").stat().st_mtime_ns == before
