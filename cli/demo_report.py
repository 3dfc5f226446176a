"""The demo's ``index.html``: metrics of every stage, golden == RTL, hardware estimates, plots."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from lstmfpga.cli.demo import TEMPORAL_RECIPE


def _load_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def backend_comparison(out: Path) -> dict:
    """Golden vs RTL outputs of ``infer`` on the evaluation split, and their metrics."""
    from lstmfpga.host.verdicts import fake_scores
    from lstmfpga.model.feature_cache import load_features
    from lstmfpga.model.metrics import binary_metrics

    infer = out / "infer"
    g_h, r_h = np.load(infer / "golden.npy"), np.load(infer / "rtl.npy")
    g_l, r_l = np.load(infer / "golden_logits.npy"), np.load(infer / "rtl_logits.npy")
    fs = load_features(out / "features")
    labels = fs.labels[fs.splits == "val"]
    result = {
        "sequences": int(g_h.shape[0]),
        "hidden_values": int(g_h.size),
        "hidden_identical": bool(np.array_equal(g_h, r_h)),
        "logits_identical": bool(np.array_equal(g_l, r_l)),
        "hidden_mismatches": int((g_h != r_h).sum()),
    }
    if labels.shape[0] == g_l.shape[0]:
        result["golden"] = binary_metrics(labels, fake_scores(g_l, 1.0))
        result["rtl"] = binary_metrics(labels, fake_scores(r_l, 1.0))
    return result


def _metrics_row(name: str, m: dict) -> str:
    if not m:
        return f"<tr><td>{html.escape(name)}</td><td colspan=6>not available</td></tr>"
    cells = "".join(f"<td>{m.get(k, float('nan')):.3f}</td>" for k in ("accuracy", "precision", "recall", "f1", "roc_auc"))
    cm = m.get("confusion_matrix")
    return f"<tr><td>{html.escape(name)}</td>{cells}<td>{cm}</td></tr>"


def _kind_rows(name: str, by_kind: dict) -> str:
    return "".join(f"<tr><td>{html.escape(name)}</td><td>{html.escape(k)}</td><td>{v.get('accuracy', float('nan')):.3f}</td>"
                   f"<td>{v.get('recall', float('nan')):.3f}</td><td>{v.get('roc_auc', float('nan')):.3f}</td></tr>"
                   for k, v in sorted(by_kind.items()))


def _temporal_section(temporal: dict) -> str:
    if not (temporal["lstm"] or temporal["frame-avg"]):
        return ""
    n = sum(sum(row) for row in (temporal["lstm"] or temporal["frame-avg"]).get("confusion_matrix", []))
    return f"""<h2>Temporal-only fakes: LSTM vs frame average</h2>
<p>A second synthetic set whose fakes show nothing in any single frame (colour-matched, feathered,
sharp; only the frame order of the lighting, a drifting mask or a flipping identity gives them
away). Both heads train on the same ResNet-50 features and the same split with the same recipe
(<code>{html.escape(" ".join(TEMPORAL_RECIPE))}</code>); scored on {n} Validation videos.</p>
<table><tr><th>model</th><th>accuracy</th><th>precision</th><th>recall</th><th>F1</th><th>ROC-AUC</th><th>confusion [[TN,FP],[FN,TP]]</th></tr>
{_metrics_row("LSTM", temporal["lstm"])}
{_metrics_row("frame average", temporal["frame-avg"])}
</table>"""


#: The shape the GPU reference was measured at: I=2048, H=512, L=1, 4-bit weights on the FPGA, T=16.
REFERENCE_SHAPE = {"input_size": 2048, "hidden_size": 512, "num_layers": 1, "weight_bits": 4}
PERFORMANCE_TIMESTEPS = 16


def performance_section(out: Path, board: str, *, reference: bool = True,
                        cache_dir=None) -> tuple[str, list, object, list]:
    """The performance chart, its numbers as a table, and the demo board's plan (or None when the
    model does not fit it); returns ``(html, summary rows, plan, one sentence per shape)``."""
    from lstmfpga.cli.demo_performance import latency_panel, latency_rows, plot_latency, speedups
    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.boards import get_board
    from lstmfpga.hw.plan import shape_config
    from lstmfpga.hw.plan_cli import BOARD_KEYS
    from lstmfpga.quant.model_file import load_model

    model = AcceleratorConfig.from_artifact(load_model(out / "qat" / "artifact.npz"), lanes=4)
    T = PERFORMANCE_TIMESTEPS
    # The boards of the demo board's FPGA family: one Yosys synthesis (the plan stage's, cached) serves them all.
    family = get_board(board).family
    boards = [key for key in BOARD_KEYS if get_board(key).family == family]
    panels = [latency_panel(f"this demo's model: I={model.input_size} H={model.hidden_size} L={model.num_layers}, "
                            f"{model.weight_bits}-bit weights, T={T}", model, boards, timesteps=T,
                            cache_dir=cache_dir)]
    if reference:
        shape = REFERENCE_SHAPE
        panels.append(latency_panel(
            f"deployment shape: I={shape['input_size']} H={shape['hidden_size']} L={shape['num_layers']}, "
            f"{shape['weight_bits']}-bit weights, T={T} (where the GPU reference was measured)",
            shape_config(**shape), ("kv260", "zcu104"), timesteps=T, cache_dir=cache_dir))
    plot_latency(panels, out / "performance.png")
    plan = next((p for p in panels[0].plans if p.board.name == get_board(board).name), None)
    sentences = [f"{p.title.split(':')[0]}: {speedups(p)}" for p in panels]
    rows = "".join(f"<tr><td>{html.escape(p.title.split(':')[0])}</td><td>{html.escape(b.label)}</td>"
                   f"<td>{b.us:,.1f}</td><td>{html.escape(b.note)}</td></tr>" for p in panels for b in p.bars)
    no_fit = "".join(f"<li>{html.escape(line)}</li>" for p in panels for line in p.no_fit)
    doc = f"""<h2>Performance: one sequence at batch 1</h2>
<p>FPGA: the planner's configuration for each board, timed by the cycle model (checked cycle-exact
against the core's counter in simulation) at the board's assumed clock, input and output streams
included. CPU: <code>torch.nn.LSTM</code> fp32 measured in this run. GPU: an H100 reference
(fp16 cuDNN), not measured on this machine.</p>
<figure><img src="performance.png" width="900"><figcaption>µs per sequence (log scale)</figcaption></figure>
<p>{'<br>'.join(html.escape(line) for line in sentences)}</p>
<table><tr><th>shape</th><th>configuration</th><th>µs / sequence</th><th>source</th></tr>{rows}</table>
{f"<p>Boards that cannot hold the model:</p><ul>{no_fit}</ul>" if no_fit else ""}"""
    return doc, latency_rows(panels), plan, sentences


def write_report(out: Path, *, timings: dict, board: str, performance_reference: bool = True) -> Path:
    out = Path(out)
    from lstmfpga.cli.demo_plan_table import plan_tables
    from lstmfpga.cli.demo_search_figures import search_figures

    performance, performance_rows, plan, speed = performance_section(out, board, reference=performance_reference)
    hardware = plan_tables(plan) if plan is not None else "<p>The model does not fit this board; see above.</p>"
    search_plots = search_figures(out / "search")
    best = _load_json(out / "search" / "best" / "metrics.json")
    base = _load_json(out / "baseline" / "metrics.json")
    qat = _load_json(out / "qat" / "qat_metrics.json").get("eval") or {}
    cmp = backend_comparison(out)
    verdict = "identical" if cmp["hidden_identical"] and cmp["logits_identical"] else "DIFFERENT"
    temporal = {head: _load_json(out / "temporal" / head / "metrics.json").get("eval") or {}
                for head in ("lstm", "frame-avg")}
    summary = {"float_lstm": best.get("eval", {}), "frame_average": base.get("eval", {}),
               "quantized_brevitas": qat, "golden": cmp.get("golden", {}), "rtl": cmp.get("rtl", {}),
               "golden_vs_rtl": {k: v for k, v in cmp.items() if k not in ("golden", "rtl")},
               "lstm_by_kind": best.get("eval_by_kind", {}), "frame_average_by_kind": base.get("eval_by_kind", {}),
               "temporal_only_set": {"lstm": temporal["lstm"], "frame_average": temporal["frame-avg"]},
               "performance_us_per_sequence": performance_rows, "stage_seconds": timings}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    plots = []
    for rel, caption in (("search/search.png", "random search: dev metric vs each hyperparameter"),
                         ("search/best/loss_accuracy.png", "best LSTM: loss and accuracy per epoch"),
                         ("search/best/confusion_matrix.png", "best LSTM: confusion matrix"),
                         ("search/best/roc.png", "best LSTM: ROC"),
                         ("baseline/confusion_matrix.png", "frame average: confusion matrix"),
                         ("baseline/roc.png", "frame average: ROC"),
                         ("temporal/lstm/roc.png", "temporal-only set: LSTM ROC"),
                         ("temporal/frame-avg/roc.png", "temporal-only set: frame-average ROC")):
        if (out / rel).exists():
            plots.append(f'<figure><img src="{rel}" width="420"><figcaption>{html.escape(caption)}</figcaption></figure>')
    split = best.get("eval_split", "val")
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>lstmfpga demo</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{border:1px solid #ccc;padding:3px 8px}}
table{{border-collapse:collapse;margin:1em 0}}figure{{display:inline-block;margin:6px}}pre{{background:#f6f6f6;padding:8px;overflow-x:auto}}
.ok{{color:#070;font-weight:bold}}.bad{{color:#a00;font-weight:bold}}</style></head><body>
<h1>lstmfpga demo</h1>
<p>Synthetic ForgeryNet-format videos → ResNet-50 features → random search → QAT (4-bit weights, 8-bit
activations) → integer artifact → Verilog → Verilator. Metrics on the '{html.escape(split)}' split.</p>
<h2>Detection</h2>
<table><tr><th>model</th><th>accuracy</th><th>precision</th><th>recall</th><th>F1</th><th>ROC-AUC</th><th>confusion [[TN,FP],[FN,TP]]</th></tr>
{_metrics_row("float LSTM (best search trial)", best.get("eval", {}))}
{_metrics_row("frame-average baseline (same features, split)", base.get("eval", {}))}
{_metrics_row("quantized LSTM (Brevitas fake-quant)", qat)}
{_metrics_row("integer golden model", cmp.get("golden", {}))}
{_metrics_row("RTL under Verilator (simulated board)", cmp.get("rtl", {}))}
</table>
<p>Golden vs RTL on {cmp['sequences']} sequences ({cmp['hidden_values']} hidden values and all logits):
<span class="{'ok' if verdict == 'identical' else 'bad'}">{verdict}</span>
({cmp['hidden_mismatches']} differing hidden values).</p>
<h2>Temporal model vs frame average, per fake kind</h2>
<table><tr><th>model</th><th>fake kind (vs all reals)</th><th>accuracy</th><th>recall</th><th>ROC-AUC</th></tr>
{_kind_rows("LSTM", best.get("eval_by_kind", {}))}{_kind_rows("frame average", base.get("eval_by_kind", {}))}</table>
{_temporal_section(temporal)}
<h2>Random search</h2>
{''.join(f'<figure><img src="search/{name}" width="860"><figcaption>{html.escape(caption)}</figcaption></figure>'
         for name, caption in search_plots) or "<p>No finished trials.</p>"}
{performance}
<h2>Hardware ({html.escape(board)})</h2>{hardware}
<h2>Plots</h2>{''.join(plots)}
<h2>Stage times</h2><table><tr><th>stage</th><th>time</th></tr>{''.join(f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>" for k, v in timings.items())}</table>
<p>Raw numbers: <a href="summary.json">summary.json</a>; every stage's output: <code>logs/</code>.</p>
</body></html>"""
    path = out / "index.html"
    path.write_text(doc)
    print(f"golden vs RTL: {verdict} on {cmp['sequences']} sequences")
    for line in speed:
        print(f"performance, {line}")
    if temporal["lstm"] and temporal["frame-avg"]:
        print(f"temporal-only fakes: ROC-AUC LSTM {temporal['lstm']['roc_auc']:.3f} vs frame average "
              f"{temporal['frame-avg']['roc_auc']:.3f}; accuracy {temporal['lstm']['accuracy']:.3f} vs "
              f"{temporal['frame-avg']['accuracy']:.3f}")
    return path
