"""What the stages lend the runtime core: reading a training checkpoint and running it.

The core never imports a stage (training, the build tool, calibration). A stage that can open a model
form registers a loader here; the core finds it through the ``lsa_edge.plugins`` entry points of the
installed distributions (the training package declares one in pyproject.toml), loaded the first time a
checkpoint is opened, or because the stage was imported already (it registers on import). Nothing here
imports torch.

    from lsa_edge.plugins import register_checkpoint_loader
    register_checkpoint_loader("torch", read_card=read_card, open_backend=TorchBackend)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .card import ModelCard
from .errors import ConfigError, LsaEdgeError, MissingDependencyError

__all__ = ["ENTRY_POINT_GROUP", "CheckpointLoader", "checkpoint_loader", "register_checkpoint_loader"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "lsa_edge.plugins"


@dataclass(frozen=True)
class CheckpointLoader:
    """How one stage reads its checkpoints.

    read_card: path -> the :class:`ModelCard` stored in the checkpoint (cheap: no model is built).
    open_backend: (path, device) -> a backend (``predict(faces) -> probs``, ``close()``); device None
    means the best this machine has, else "cpu", "cuda" or "cuda:N".
    """

    name: str
    read_card: Callable[[Path], ModelCard]
    open_backend: Callable[[Path, str | None], Any]


_LOADERS: dict[str, CheckpointLoader] = {}
_entry_points_loaded = False


def register_checkpoint_loader(
    name: str,
    *,
    read_card: Callable[[Path], ModelCard],
    open_backend: Callable[[Path, str | None], Any],
) -> CheckpointLoader:
    """Register how checkpoints called ``name`` are read and run. Registering the same functions again is
    a no-op (a stage imported twice, or loaded by its entry point after import); other functions under a
    name already taken are an error."""
    loader = CheckpointLoader(name, read_card, open_backend)
    have = _LOADERS.get(name)
    if have is not None and have != loader:
        raise ConfigError(f"checkpoint loader {name!r} is already registered ({have.read_card.__module__})")
    return _LOADERS.setdefault(name, loader)


def checkpoint_loader(feature: str = "running a checkpoint") -> CheckpointLoader:
    """The registered checkpoint loader, loading the installed plugins first when none is registered yet.

    Raises :class:`MissingDependencyError` when a plugin's dependencies are missing (its own message names
    the extra) or when no installed distribution provides one."""
    if not _LOADERS:
        load_entry_points()
    if not _LOADERS:
        raise MissingDependencyError(
            f"{feature} needs the training package's checkpoint support, and none is installed (no "
            f"{ENTRY_POINT_GROUP!r} entry point registers one). Install it with: pip install 'lsa-edge[train]' "
            "(reinstall lsa-edge if it was installed from a source tree without its metadata)."
        )
    return next(iter(_LOADERS.values()))


def load_entry_points() -> None:
    """Import each ``lsa_edge.plugins`` entry point once and call what it names (a register function).
    An error from a plugin (a missing dependency, say) propagates, and the next call tries again."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    for ep in _entry_points(ENTRY_POINT_GROUP):
        try:
            target = ep.load()
        except LsaEdgeError:
            raise
        except ImportError as err:
            raise MissingDependencyError(
                f"the lsa-edge plugin {ep.name!r} ({ep.value}) does not import ({err}); reinstall it: "
                "pip install 'lsa-edge[train]'"
            ) from err
        if callable(target):
            target()
        log.debug("plugin %s loaded from %s", ep.name, ep.value)
    _entry_points_loaded = True


def _entry_points(group: str) -> list[Any]:
    """The installed entry points of ``group`` (importlib.metadata: a dict on Python 3.8 and 3.9, a
    selectable object from 3.10)."""
    from importlib import metadata

    found = metadata.entry_points()
    if hasattr(found, "select"):
        eps = list(found.select(group=group))
    else:  # Python 3.8/3.9: {group: [EntryPoint, ...]}
        eps = list(found.get(group, ()))  # type: ignore[union-attr]
    unique = {(ep.name, ep.value): ep for ep in eps}  # an editable install may list a distribution twice
    return sorted(unique.values(), key=lambda ep: ep.name)


def _reset_for_tests() -> None:
    """Forget every loader and entry point loaded (tests of discovery)."""
    global _entry_points_loaded
    _LOADERS.clear()
    _entry_points_loaded = False
