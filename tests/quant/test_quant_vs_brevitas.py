"""The integer recipe against Brevitas QuantLSTM: quantizer by quantizer, then whole sequences.

Brevitas computes in float32 with a summation order nobody can reproduce, so the one allowed
difference is a value within 1e-5 of a rounding tie.
"""

from collections import defaultdict

import numpy as np
import pytest
import torch

from lstmfpga.quant.brevitas_export import artifact_from_head
from lstmfpga.foundation.integer_lstm import run_artifact

STEP_QUANTIZERS = ("input_acc_quant", "forget_acc_quant", "cell_acc_quant", "output_acc_quant",
                   "input_sigmoid_quant", "forget_sigmoid_quant", "cell_tanh_quant",
                   "output_sigmoid_quant", "cell_state_quant", "hidden_state_tanh_quant",
                   "output_quant")


def _codes(value: torch.Tensor, scale) -> np.ndarray:
    return np.rint(value.detach().double().numpy() / float(scale)).astype(np.int64)


class _Recorder:
    """Forward hooks on the eval-mode ``_fast_cell`` quantizers of every layer.

    Layers share some quantizer modules (io and cell state), so each module is hooked once and
    its calls are split between the layers that share it, in execution order.
    """

    def __init__(self, layers):
        self.layers = layers
        self.by_module = defaultdict(list)
        self.handles = []
        seen = set()
        for layer in layers:
            for name in STEP_QUANTIZERS:
                module = getattr(layer.fast_cell, name)
                if id(module) not in seen:
                    seen.add(id(module))
                    self.handles.append(module.register_forward_hook(self._hook(id(module))))
        self.handles.append(layers[0].io_quant.register_forward_hook(self._input_hook))
        self.layer_input = None

    def _hook(self, key):
        def hook(module, inputs, output):
            if inputs[0].dim() == 3:  # the io quantizer applied to the whole input sequence
                return
            self.by_module[key].append((inputs[0].detach().clone(), output[0].detach().clone(), output[1]))
        return hook

    def _input_hook(self, module, inputs, output):
        self.layer_input = (output.value.detach().clone(), output.scale)

    def calls(self, l: int) -> dict:
        out = {}
        for name in STEP_QUANTIZERS:
            module = getattr(self.layers[l].fast_cell, name)
            sharing = [j for j, layer in enumerate(self.layers) if getattr(layer.fast_cell, name) is module]
            calls = self.by_module[id(module)]
            per_layer = len(calls) // len(sharing)
            p = sharing.index(l)
            out[name] = calls[p * per_layer:(p + 1) * per_layer]
        return out

    def remove(self):
        for h in self.handles:
            h.remove()


def _tie_distance(acc: np.ndarray, ratio: float) -> np.ndarray:
    v = acc.astype(np.float64) * ratio
    return np.abs(v - (np.floor(v) + 0.5))


class _Tally:
    def __init__(self):
        self.total = 0
        self.diffs = 0
        self.non_tie = []

    def add(self, name, ours, theirs, tie_distance=None):
        ours, theirs = np.asarray(ours), np.asarray(theirs)
        self.total += ours.size
        bad = ours != theirs
        self.diffs += int(bad.sum())
        if bad.any():
            if tie_distance is None:
                self.non_tie.append((name, int(bad.sum())))
            else:
                worst = float(np.asarray(tie_distance)[bad].max())
                if worst >= 1e-5:
                    self.non_tie.append((name, worst))


def _check_layer_steps(layer_art, calls, x_codes, tally):
    T = len(calls["output_quant"])
    B, H = x_codes.shape[0], layer_art.hidden_size
    h = np.zeros((B, H), dtype=np.int64)
    c = np.zeros((B, H), dtype=np.int64)
    s = {k: np.float64(v.scale) for k, v in layer_art.quant.items()}
    gates = ("input", "forget", "cell", "output")
    acc_names = [f"{g}_acc_quant" for g in gates]
    act_names = ["input_sigmoid_quant", "forget_sigmoid_quant", "cell_tanh_quant", "output_sigmoid_quant"]
    h_out = []
    for t in range(T):
        acts = []
        for g, gate in enumerate(gates):
            acc = x_codes[:, t] @ layer_art.w_x[g].T + h @ layer_art.w_h[g].T + layer_art.bias[g]
            ours = layer_art.gate_requant[g].apply(acc)
            _, out, scale = calls[acc_names[g]][t]
            theirs = _codes(out, scale)
            ratio = s["io"] * s[f"weight_{gate}"] / s[f"{gate}_acc"]
            tally.add(acc_names[g], ours, theirs, _tie_distance(acc, ratio))
            # Next quantizer gets Brevitas's own input, so one tie does not cascade.
            inp, out, scale = calls[act_names[g]][t]
            in_code = _codes(inp, s[f"{gate}_acc"])
            ours = layer_art.gate_tables[g][in_code - layer_art.gate_requant[g].lo]
            act = _codes(out, scale)
            tally.add(act_names[g], ours, act)
            acts.append(act)
        i, f, gg, o = acts
        (_, fc_out, sc), (_, ig_out, _), (_, c_out, _) = calls["cell_state_quant"][3 * t:3 * t + 3]
        fc_b, ig_b, c_b = _codes(fc_out, sc), _codes(ig_out, sc), _codes(c_out, sc)
        tally.add("cell f*c", layer_art.fc_requant.apply(f * c), fc_b,
                  _tie_distance(f * c, s["forget_sigmoid"] * s["cell_state"] / s["cell_state"]))
        tally.add("cell i*g", layer_art.ig_requant.apply(i * gg), ig_b,
                  _tie_distance(i * gg, s["input_sigmoid"] * s["cell_tanh"] / s["cell_state"]))
        tally.add("cell sum", np.clip(fc_b + ig_b, layer_art.cell_lo, layer_art.cell_hi), c_b)
        inp, out, scale = calls["hidden_state_tanh_quant"][t]
        t_b = _codes(out, scale)
        tally.add("tanh(c)", layer_art.tanh_c_table[_codes(inp, s["cell_state"]) - layer_art.cell_lo], t_b)
        _, out, scale = calls["output_quant"][t]
        h_b = _codes(out, scale)
        tally.add("h", layer_art.h_requant.apply(o * t_b), h_b,
                  _tie_distance(o * t_b, s["output_sigmoid"] * s["hidden_tanh"] / s["io"]))
        h, c = h_b, c_b
        h_out.append(h_b)
    return np.stack(h_out, axis=1)


STEP_CONFIGS = [  # (I, H, L, weight bits, act bits, trained)
    (13, 7, 1, 4, 8, False), (37, 19, 2, 2, 4, "float"), (8, 17, 3, 8, 6, "qat"),
    (21, 5, 2, 3, 8, "qat"), (5, 12, 1, 6, 4, False),
]


@pytest.mark.parametrize("I,H,L,wb,ab,trained", STEP_CONFIGS)
def test_every_quantizer_matches_brevitas_step_by_step(make_head, I, H, L, wb, ab, trained):
    head = make_head(input_size=I, hidden_size=H, num_layers=L, weight_bits=wb, act_bits=ab,
                     seed=I * 100 + H, trained=trained)
    artifact = artifact_from_head(head)
    recorder = _Recorder([d[0] for d in head.lstm.layers])
    x = torch.from_numpy(np.random.default_rng(7).normal(size=(32, 11, I)).astype(np.float32) * 2)
    try:
        with torch.no_grad():
            head(x)
    finally:
        recorder.remove()
    tally = _Tally()
    x_codes = _codes(*recorder.layer_input)
    for l, layer_art in enumerate(artifact.layers):
        x_codes = _check_layer_steps(layer_art, recorder.calls(l), x_codes, tally)
    assert tally.total > 10_000
    assert tally.non_tie == [], f"differences that are not float32 rounding ties: {tally.non_tie}"
    assert tally.diffs <= 1e-4 * tally.total, f"{tally.diffs} of {tally.total} codes differ"


SEQUENCE_CONFIGS = [(wb, ab) for wb in (2, 3, 4, 6, 8) for ab in (4, 6, 8)]


@pytest.mark.parametrize("trained", [False, "float"], ids=["random", "trained"])
@pytest.mark.parametrize("wb,ab", SEQUENCE_CONFIGS)
def test_whole_sequences_match_brevitas(make_head, wb, ab, trained):
    k = SEQUENCE_CONFIGS.index((wb, ab))
    I, H, L = (23, 17, 29)[k % 3], (9, 21, 15)[k % 3], 1 + k % 3
    head = make_head(input_size=I, hidden_size=H, num_layers=L, weight_bits=wb, act_bits=ab,
                     seed=k, trained=trained, normalization=True)
    # Enough sequences that the share with a (legitimate) float32 tie is measured, not guessed;
    # A tie early in a 3-layer stack reaches more of the sequence: measure those on more sequences.
    x = np.random.default_rng(k).normal(size=(192 if L == 3 else 96, 16, I)).astype(np.float32) * 2 + 0.5
    with torch.no_grad():
        seq, logits = head.forward_sequence(torch.from_numpy(x))
    ours = run_artifact(artifact_from_head(head), x)
    theirs = _codes(seq.value, seq.scale)
    same = ours.codes.last_h == theirs
    # A tie decided differently in layer 0 reaches every later step of layers 1 and 2 (tens of
    # values), and which float32 values tie depends on the CPU the float head was trained on: the
    # 3-8 trained head here (2-core AMD EPYC) has 7 of 192 sequences with one, 99.48 % of values
    # exact.  The step-by-step test above is the strict check that each difference is a tie.
    assert same.mean() >= 0.99, f"{same.mean():.4%} of hidden values bit-exact"
    assert same.all(axis=(1, 2)).mean() >= 0.95, f"{same.all(axis=(1, 2)).mean():.2%} of sequences bit-exact"
    # Where the integer logits tie exactly, Brevitas's argmax is decided by float32 noise.
    decided = np.sort(ours.codes.logits, axis=1)[:, -1] > np.sort(ours.codes.logits, axis=1)[:, -2]
    assert decided.mean() >= 0.9
    agree = ours.logits.argmax(1) == logits.numpy().argmax(1)
    assert agree[decided].mean() >= 0.99


def test_saturation_at_extreme_inputs_matches_brevitas(make_head):
    head = make_head(input_size=11, hidden_size=6, num_layers=2, weight_bits=4, act_bits=6, seed=3)
    rng = np.random.default_rng(3)
    x = (rng.choice([-1.0, 1.0], size=(32, 12, 11)) * rng.uniform(1e3, 1e6, size=(32, 12, 11))).astype(np.float32)
    with torch.no_grad():
        seq, logits = head.forward_sequence(torch.from_numpy(x))
    ours = run_artifact(artifact_from_head(head), x)
    theirs = _codes(seq.value, seq.scale)
    assert (ours.codes.last_h == theirs).mean() >= 0.995
    io = artifact_from_head(head).io_quant
    # Inputs pinned to the rails of the io range.
    from lstmfpga.foundation.integer_lstm import quantize_input
    codes = quantize_input(artifact_from_head(head), x)
    assert set(np.unique(codes)) <= {io.lo, io.hi}
