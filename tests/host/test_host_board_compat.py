"""The board path runs on a PYNQ image: Python 3.10, NumPy 1.21+, no torch / amaranth / cocotb,
pynq optional. Checked by importing in a clean subprocess and by scanning the source."""

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BOARD_MODULES = [
    "lstmfpga.host.cli",
    "lstmfpga.host.commands",
    "lstmfpga.host.board_infer",
    "lstmfpga.host.board_command",
    "lstmfpga.host.board_handler",
    "lstmfpga.host.sequence_server",
    "lstmfpga.host.sequence_sender",
    "lstmfpga.host.stream_protocol",
    "lstmfpga.host.result_log",
    "lstmfpga.host.payloads",
    "lstmfpga.host.verdicts",
    "lstmfpga.host.feature_source",
    "lstmfpga.host.infer",
    "lstmfpga.host.backends",
    "lstmfpga.host.backends.golden",
    "lstmfpga.host.backends.driver_backend",
    "lstmfpga.host.backends.pynq_board",
    "lstmfpga.host.driver.core",
    "lstmfpga.host.driver.dma",
    "lstmfpga.host.driver.errors",
    "lstmfpga.host.driver.pynq_ip",
    "lstmfpga.host.overlay.ip_identity",
    "lstmfpga.foundation.artifact",
    "lstmfpga.foundation.integer_lstm",
]

BLOCKER = textwrap.dedent("""
    import importlib.abc, json, sys
    BLOCKED = ("torch", "torchvision", "amaranth", "cocotb", "cocotb_tools", "cocotbext", "brevitas", "qonnx",
               "onnx", "pynq")
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"board path imported {name}")
            return None
    sys.meta_path.insert(0, Block())
    for name in json.loads(sys.argv[1]):
        __import__(name)
    from lstmfpga.host.driver.pynq_ip import LstmCoreIP
    assert LstmCoreIP.__mro__[1].__name__ == "_LstmCoreLogic"  # the plain class without pynq
    print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items()
                            if n.startswith("lstmfpga") and getattr(m, "__file__", None))))
""")


@pytest.fixture(scope="module")
def board_files():
    proc = subprocess.run([sys.executable, "-c", BLOCKER, json.dumps(BOARD_MODULES)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [Path(p) for p in json.loads(proc.stdout)]


def test_board_modules_import_without_heavy_packages(board_files):
    assert any(p.name == "core.py" and p.parent.name == "driver" for p in board_files)


def test_board_cli_lists_host_commands_without_heavy_packages():
    code = BLOCKER.split("for name in")[0] + textwrap.dedent("""
        from lstmfpga.host.board_infer import main
        try:
            main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--listen" in proc.stdout and "--check-golden" in proc.stdout


# NumPy names that exist only from 2.0 (or after 1.21) and would fail on a PYNQ image.
NUMPY_NEW = {
    "concat", "permute_dims", "matrix_transpose", "unstack", "isdtype", "bitwise_count", "vecdot", "astype",
    "pow", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_left_shift", "bitwise_right_shift",
    "bitwise_invert", "cumulative_sum", "cumulative_prod", "unique_values", "unique_counts", "unique_all",
    "unique_inverse", "trapezoid", "long", "ulong", "exceptions", "dtypes", "in1d_new", "bool",
}


def _numpy_aliases(tree):
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name for a in node.names if a.name == "numpy"}
    return names


def scan(path):
    """Python 3.11+ syntax and NumPy-2-only API uses in one source file."""
    problems = []
    source = Path(path).read_text()
    try:
        tree = ast.parse(source, filename=str(path), feature_version=(3, 10))
    except SyntaxError as exc:
        return [f"{path}:{exc.lineno}: not Python 3.10 syntax ({exc.msg})"]
    aliases = _numpy_aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "typing" and any(
                a.name in ("Self", "LiteralString", "Never", "assert_never", "reveal_type") for a in node.names):
            problems.append(f"{path}:{node.lineno}: typing name added after 3.10")
        if isinstance(node, ast.Import) and any(a.name == "tomllib" for a in node.names):
            problems.append(f"{path}:{node.lineno}: tomllib is 3.11+")
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr in NUMPY_NEW):
            problems.append(f"{path}:{node.lineno}: numpy.{node.attr} is missing from NumPy 1.21")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id in aliases
                and node.func.attr == "asarray" and any(k.arg == "copy" for k in node.keywords)):
            problems.append(f"{path}:{node.lineno}: numpy.asarray(copy=...) is NumPy 2 only")
        if isinstance(node, ast.Name) and node.id in ("ExceptionGroup", "BaseExceptionGroup"):
            problems.append(f"{path}:{node.lineno}: {node.id} is 3.11+")
    return problems


def test_board_sources_are_python310_and_numpy1_compatible(board_files):
    assert [p for path in board_files for p in scan(path)] == []


@pytest.mark.parametrize("source,finding", [
    ("import numpy as np\nx = np.concat([a, b])\n", "numpy.concat is missing"),
    ("import numpy\nx = numpy.asarray(a, copy=False)\n", "asarray(copy=...)"),
    ("try:\n    pass\nexcept* ValueError:\n    pass\n", "not Python 3.10 syntax"),
    ("def f[T](x: T) -> T:\n    return x\n", "not Python 3.10 syntax"),
    ("from typing import Self\n", "typing name added after 3.10"),
    ("raise ExceptionGroup('x', [])\n", "ExceptionGroup is 3.11+"),
])
def test_scanner_catches_what_it_should(tmp_path, source, finding):
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    assert any(finding in p for p in scan(bad))


PYNQ_STUB = textwrap.dedent('''
    """Stand-in for pynq's API boundary: DefaultIP with the real registration metaclass semantics."""
    _ip_drivers = {}
    allocations = []

    class RegisterIP(type):
        def __init__(cls, name, bases, attrs):
            if "bindto" in attrs:
                for vlnv in cls.bindto:
                    _ip_drivers[vlnv] = cls
            super().__init__(name, bases, attrs)

    class MMIO:
        def __init__(self, base_addr, length=4, device=None):
            self.base_addr, self.length, self.regs = base_addr, length, {}
        def read(self, offset=0, length=4):
            return self.regs.get(offset, 0)
        def write(self, offset, value):
            self.regs[offset] = value

    class DefaultIP(metaclass=RegisterIP):
        def __init__(self, description):
            self.mmio = MMIO(description["phys_addr"], description["addr_range"])
            self._description = description
        def read(self, offset=0):
            return self.mmio.read(offset)
        def write(self, offset, value):
            self.mmio.write(offset, value)

    def allocate(shape, dtype="u4", **kw):
        import numpy as np
        allocations.append((shape, dtype))
        return np.zeros(shape, dtype)
''')

BIND_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import pynq
    from lstmfpga.host.driver.pynq_ip import LstmCoreIP
    from lstmfpga.host.overlay.ip_identity import VLNV
    from lstmfpga.foundation.hw.register_map import CORE_ID, Reg
    assert pynq._ip_drivers[VLNV] is LstmCoreIP, pynq._ip_drivers
    assert issubclass(LstmCoreIP, pynq.DefaultIP)
    # What Overlay does for each ip_dict entry: look the driver up by VLNV and construct it.
    description = {"phys_addr": 0xA0010000, "addr_range": 0x10000, "type": VLNV, "parameters": {}}
    ip = pynq._ip_drivers[description["type"]](description)
    ip.mmio.regs[int(Reg.ID)] = CORE_ID
    assert ip.read(Reg.ID) == CORE_ID
    class Channel:
        def transfer(self, buffer, nbytes=0): pass
    class Dma:
        description = {"parameters": {"c_sg_length_width": "23"}}
        sendchannel = Channel()
        recvchannel = Channel()
    driver = ip.driver(Dma())
    assert driver.mmio is ip and driver.max_transfer_bytes == (1 << 23) - 1
    assert driver.allocate is pynq.allocate
    print("bound", VLNV)
""")


def test_defaultip_subclass_registers_and_binds(tmp_path):
    (tmp_path / "pynq").mkdir()
    (tmp_path / "pynq" / "__init__.py").write_text(PYNQ_STUB)
    proc = subprocess.run([sys.executable, "-c", BIND_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("bound lstmfpga.org:hls:lstm_core:1.0")


BOARD_RUN = textwrap.dedent("""
    import sys
    import numpy as np
    from lstmfpga.foundation.artifact import LstmArtifact
    from lstmfpga.host.backends.golden import GoldenBackend
    from lstmfpga.host.board_handler import BackendHandler
    from lstmfpga.host.payloads import prepare_payloads
    from lstmfpga.host.sequence_sender import SequenceSender, iter_pairs
    from lstmfpga.host.sequence_server import SequenceServer
    from lstmfpga.host.stream_protocol import PayloadKind
    folder = sys.argv[1]
    artifact = LstmArtifact.load(folder + "/model.npz")
    x = np.load(folder + "/X.npy")
    for mode, kind in (("full", PayloadKind.CODES_I8), ("split", PayloadKind.PREACT_I32)):
        handler = BackendHandler(backend=GoldenBackend(artifact=artifact, mode=mode))
        with SequenceServer(handler=handler, token="t") as server:
            sender = SequenceSender(address=server.address, token="t", kind=kind, artifact_sha256=artifact.sha256)
            report = sender.run(iter_pairs([str(i) for i in range(len(x))], prepare_payloads(artifact, x, kind)))
        logits = np.array([r["logits"] for r in sorted(report.results, key=lambda r: int(r["video_id"]))])
        np.save(folder + "/logits_" + mode + ".npy", logits)
    print(np.__version__, sys.version_info[:2])
""")


def _board_python():
    """An interpreter like a PYNQ v3 image (3.10, NumPy 1.x), given as $LSTMFPGA_BOARD_PYTHON."""
    import os
    exe = os.environ.get("LSTMFPGA_BOARD_PYTHON")
    if not exe:
        pytest.skip("set LSTMFPGA_BOARD_PYTHON to a Python 3.10 with numpy<2 and tqdm to run the board path on it")
    return exe


def test_board_path_runs_on_python310_numpy1(small_artifact, rng, tmp_path):
    exe = _board_python()
    root = Path(__file__).resolve().parents[2]
    package = tmp_path / "src" / "lstmfpga"
    package.mkdir(parents=True)
    for name in ("cli", "host", "hw", "quant", "sim"):
        (package / name).symlink_to(root / name)
    small_artifact.save(tmp_path / "model.npz")
    import numpy as np
    from lstmfpga.foundation.integer_lstm import quantize_input, run_integer
    x = rng.normal(size=(25, 3, small_artifact.input_size)).astype(np.float32)
    np.save(tmp_path / "X.npy", x)
    proc = subprocess.run([exe, "-c", BOARD_RUN, str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(tmp_path / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("1.") and "(3, 10)" in proc.stdout
    expected = run_integer(small_artifact, quantize_input(small_artifact, x)).logits
    for mode in ("full", "split"):
        np.testing.assert_array_equal(np.load(tmp_path / f"logits_{mode}.npy"), expected)
