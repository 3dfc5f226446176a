"""One bad command line through the ``lstmfpga`` entry point: it must fail cleanly."""

from __future__ import annotations

from lstmfpga.cli.main import main


def cli_error(args: list[str], capsys) -> str:
    """Run ``lstmfpga ARGS`` in process and return its ``error:`` line.

    Asserts exit status 2, no traceback, and exactly one ``error: `` line, the last of stderr (a
    library may log a warning on import before it); a raw exception fails the calling test with
    its traceback.
    """
    capsys.readouterr()
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err and [line for line in lines if line.startswith("error: ")] == lines[-1:], err
    return lines[-1]
