"""``python -m lsa_edge`` (also what ``torchrun -m lsa_edge train ...`` runs)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
