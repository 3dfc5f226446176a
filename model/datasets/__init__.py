"""Dataset readers: each turns a dataset's own layout into :class:`VideoRecord` s.

``read_dataset(name, root, **options)`` dispatches on the ``--dataset`` name.
"""

from __future__ import annotations

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.model.datasets.celebdf import read_celebdf
from lstmfpga.model.datasets.csv_list import read_csv_list
from lstmfpga.model.datasets.dfdc import read_dfdc
from lstmfpga.model.datasets.ffpp import read_ffpp
from lstmfpga.model.datasets.forgerynet import read_forgerynet
from lstmfpga.model.datasets.record import DatasetListing, Problem, VideoRecord

READERS = {
    "forgerynet": read_forgerynet,
    "ffpp": read_ffpp,
    "celebdf": read_celebdf,
    "dfdc": read_dfdc,
    "csv": read_csv_list,
}


def read_dataset(name: str, root, **options) -> DatasetListing:
    """List the videos of dataset ``name`` (one of :data:`READERS`) under ``root``."""
    reader = READERS.get(name)
    if reader is None:
        raise ConfigError(f"dataset must be one of {sorted(READERS)}, not {name!r}")
    return reader(root, **options)


__all__ = ["READERS", "DatasetListing", "Problem", "VideoRecord", "read_dataset"]
