"""``lstmfpga golden``: outputs, agreement between model formats, and clear errors."""

import subprocess
import sys

import numpy as np
import pytest

from lstmfpga.cli.main import main
from lstmfpga.sim.golden.float_lstm import run_float_artifact
from lstmfpga.foundation.integer_lstm import run_artifact
from lstmfpga.sim.golden.random_artifact import random_artifact


@pytest.fixture()
def model_and_input(tmp_path):
    art = random_artifact(input_size=9, hidden_size=5, num_layers=2, num_classes=3, seed=5)
    model = art.save(tmp_path / "model.npz")
    x = np.random.default_rng(1).normal(size=(4, 6, 9)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return art, model, x, tmp_path


def test_golden_cli_writes_hidden_and_logits(model_and_input, capsys):
    art, model, x, tmp = model_and_input
    assert main(["golden", "--model", str(model), "--input", str(tmp / "x.npy"), "--out", str(tmp / "y.npy")]) == 0
    ref = run_artifact(art, x)
    np.testing.assert_array_equal(np.load(tmp / "y.npy"), ref.hidden)
    np.testing.assert_array_equal(np.load(tmp / "y_logits.npy"), ref.logits)
    assert "hidden (4, 6, 5)" in capsys.readouterr().out

    assert main(["golden", "--float", "--model", str(model), "--input", str(tmp / "x.npy"),
                 "--out", str(tmp / "f.npy")]) == 0
    hidden, logits = run_float_artifact(art, x)
    np.testing.assert_allclose(np.load(tmp / "f.npy"), hidden, atol=1e-6)
    # The quantized model tracks its float counterpart.
    assert np.abs(np.load(tmp / "f.npy") - ref.hidden).max() < 0.25


@pytest.mark.parametrize("make_input,message", [
    (lambda x: x[:, :, :7], "7 features per step, the model expects 9"),
    (lambda x: np.where(x > 1.5, np.nan, x), "NaN/inf"),
    (lambda x: x[0, 0], r"\[batch, time, features\]"),
])
@pytest.mark.parametrize("flags", [[], ["--float"]])
def test_golden_cli_bad_input_is_one_clear_error(model_and_input, capsys, make_input, message, flags):
    art, model, x, tmp = model_and_input
    np.save(tmp / "bad.npy", make_input(x))
    code = main(["golden", "--model", str(model), "--input", str(tmp / "bad.npy"), "--out", str(tmp / "y.npy"),
                 *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "Traceback" not in err
    assert __import__("re").search(message, err)
    assert not (tmp / "y.npy").exists(), "nothing half-written on error"


def test_golden_cli_missing_and_corrupt_model(model_and_input, capsys):
    art, model, x, tmp = model_and_input
    assert main(["golden", "--model", str(tmp / "nope.npz"), "--input", str(tmp / "x.npy"), "--out", str(tmp / "y.npy")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp / "corrupt.npz").write_bytes(model.read_bytes()[:-100])
    assert main(["golden", "--model", str(tmp / "corrupt.npz"), "--input", str(tmp / "x.npy"), "--out", str(tmp / "y.npy")]) == 2
    assert "corrupt.npz" in capsys.readouterr().err
    assert not (tmp / "y.npy").exists()


def test_golden_path_never_imports_torch(model_and_input):
    """The board runs the golden check: it must work with NumPy alone."""
    art, model, x, tmp = model_and_input
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'brevitas', 'amaranth', 'cocotb'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from lstmfpga.quant.model_file import load_model\n"
        "from lstmfpga.foundation.integer_lstm import run_artifact\n"
        "import numpy as np\n"
        f"out = run_artifact(load_model({str(model)!r}), np.load({str(tmp / 'x.npy')!r}))\n"
        "print(out.hidden.shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "(4, 6, 5)" in result.stdout
