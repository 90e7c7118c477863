"""Writing files the way lsa-edge does: to a temporary name in the same folder, then renamed into place,
so a kill at any moment leaves the old file or the new one, never half of one. For scripts, benchmarks
and applications that write beside lsa-edge's outputs.

    from lsa_edge.io import write_json_atomic
    write_json_atomic("results/bench.json", {"fps": 31.2})

The helpers live in :mod:`lsa_edge._fileio` (every write of lsa-edge itself goes through them); this
module is their public name. Standard library only.
"""

from __future__ import annotations

from ._fileio import atomic_path as atomic_path
from ._fileio import atomic_write as atomic_write
from ._fileio import copy_atomic as copy_atomic
from ._fileio import staged_dir as staged_dir
from ._fileio import write_bytes_atomic as write_bytes_atomic
from ._fileio import write_json_atomic as write_json_atomic
from ._fileio import write_text_atomic as write_text_atomic

__all__ = [
    "atomic_path",
    "atomic_write",
    "copy_atomic",
    "staged_dir",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
