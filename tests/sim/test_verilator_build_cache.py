"""The parts of a harness build kept between builds: Verilator's run-time objects (compiled alike
into every model) and the optimisation flag the environment chooses."""

import os
import time

import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.sim import verilator


def _objects(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(os.urandom(64))


def test_run_time_objects_are_kept_once_and_linked_into_later_builds(tmp_path):
    first, second, runtime = tmp_path / "first", tmp_path / "second", tmp_path / "runtime" / "key"
    _objects(first, ["verilated.o", "verilated_threads.o", "Vlstm_accel__ALL.o", "harness.o"])
    assert verilator._reuse_runtime(runtime, first) == 0          # nothing kept yet
    verilator._keep_runtime(first, runtime)
    assert sorted(p.name for p in runtime.iterdir()) == ["verilated.o", "verilated_threads.o"]
    kept = {p.name: p.read_bytes() for p in runtime.iterdir()}
    _objects(second, ["verilated.o", "Vlstm_accel__ALL.o"])         # a later build's own objects
    verilator._keep_runtime(second, runtime)                        # the first build's stay
    assert {p.name: p.read_bytes() for p in runtime.iterdir()} == kept

    for path in runtime.iterdir():                                  # kept a day ago
        os.utime(path, (time.time() - 86400,) * 2)
    third = tmp_path / "third"
    third.mkdir()
    makefile = third / "Vlstm_accel.mk"     # written by Verilator just before: make rebuilds older objects
    makefile.write_text("")
    assert verilator._reuse_runtime(runtime, third) == 2
    for name, data in kept.items():
        assert (third / name).read_bytes() == data
        assert (third / name).stat().st_mtime >= makefile.stat().st_mtime
    verilator.drop_intermediates(third)                             # a finished build drops its copies ...
    assert {p.name: p.read_bytes() for p in runtime.iterdir()} == kept   # ... not the kept ones


def test_the_key_of_the_run_time_objects_follows_the_options(tmp_path):
    root = verilator.setup_verilator()
    keys = {verilator._runtime_objects(tmp_path, root, variant).name
            for variant in (["-O3", 1], ["-O1", 1], ["-O3", 2], ["-O3", 1, "--x-assign", "fast"])}
    assert len(keys) == 4
    assert verilator._runtime_objects(tmp_path, root, ["-O3", 1]).name in keys


@pytest.mark.parametrize("value, expected", [(None, verilator.HARNESS_OPT), ("-O0", "-O0"), ("-Os", "-Os"),
                                             ("-Ofast", "-Ofast")])
def test_the_optimisation_flag_comes_from_the_environment(value, expected, monkeypatch):
    if value is None:
        monkeypatch.delenv(verilator.HARNESS_OPT_ENV, raising=False)
    else:
        monkeypatch.setenv(verilator.HARNESS_OPT_ENV, value)
    assert verilator.harness_opt() == expected


@pytest.mark.parametrize("value", ["O2", "-O4", "-O2 -march=native", "", "-O2; rm -rf /"])
def test_a_bad_optimisation_flag_is_refused(value, monkeypatch):
    monkeypatch.setenv(verilator.HARNESS_OPT_ENV, value)
    with pytest.raises(ConfigError, match=verilator.HARNESS_OPT_ENV):
        verilator.harness_opt()
