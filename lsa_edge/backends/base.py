"""The contract every model the runtime runs follows, and the base class that implements its common part.

:class:`ModelRunner` is any model behind one input tensor: the face detector's (``predict`` returns its raw
outputs) and the attribute model's. :class:`Backend` is the attribute model's specialisation
(``predict(faces) -> probs``, N×C float32): ONNX Runtime (:mod:`.onnxruntime`), TensorRT (:mod:`.tensorrt`)
and PyTorch (``lsa_edge.training.backend``) implement it, and :class:`~lsa_edge.pipeline.Pipeline` and
:func:`~lsa_edge.package.select_backend` use nothing else. :class:`RunnerBase` gives one behaviour to all:
the input checked against ``input_shape``, batches split at ``max_batch``, zero items answered without a
call, a closed model refusing with :class:`ConfigError`, ``close`` idempotent, the context manager.

numpy only; must not import a runtime (each backend imports its own when it is built).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generic, Optional, Protocol, Tuple, TypeVar, runtime_checkable

import numpy as np

from ..errors import ConfigError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Backend",
    "BackendBase",
    "ModelRunner",
    "MultiOutputBase",
    "RunnerBase",
    "Shape",
]

DEFAULT_BATCH_SIZE = 64  # items per call when neither the caller nor the model (dynamic batch) bounds it

Shape = Tuple[Optional[int], ...]  # a model input's shape, batch first; None where a dimension is dynamic
Out = TypeVar("Out", covariant=True)
_Out = TypeVar("_Out")


@runtime_checkable
class ModelRunner(Protocol[Out]):
    """A model behind one input: ``predict(batch) -> outputs``, closed by ``close`` or ``with``.

    name: the runtime ("onnxruntime", "tensorrt", "torch", ...). max_batch: the most items one call of the
    model takes (None: dynamic, any number). input_shape: the input's shape, batch first, None where a
    dimension is dynamic (``input_shape[1:]`` is one item's). ``predict`` takes N×``input_shape[1:]``
    float32 and splits N above ``min(batch_size, max_batch)``; batch_size None means max_batch, or
    :data:`DEFAULT_BATCH_SIZE` where the batch is dynamic. After ``close`` (which may run any number of
    times) ``predict`` raises :class:`ConfigError`.
    """

    # Read-only in the contract (so an engine may say ``max_batch: int``); a plain attribute satisfies it.
    @property
    def name(self) -> str: ...

    @property
    def max_batch(self) -> int | None: ...

    @property
    def input_shape(self) -> Shape: ...

    def predict(self, batch: np.ndarray, batch_size: int | None = None) -> Out: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Backend(ModelRunner[np.ndarray], Protocol):
    """The attribute model: ``predict(faces N×3×H×W float32) -> probs N×num_outputs float32`` (values in
    [0, 1], the card's attribute order). num_outputs: C, the attributes per face. The faces are normalised
    with the model card's preprocessing; the caller may reuse their buffer after ``predict`` returns.
    describe(): the model file and the runtime it runs on, e.g. "model.onnx on onnxruntime [CPU]" (for logs
    and ``Pipeline.describe``).
    """

    @property
    def num_outputs(self) -> int: ...

    def describe(self) -> str: ...


class RunnerBase(Generic[_Out]):
    """What every :class:`ModelRunner` here shares; a subclass provides ``_handle`` (the open model, or
    None once closed), ``_run(handle, x)`` (one call of at most max_batch items), ``_empty()`` (the
    outputs for zero items), ``_join`` (outputs of several calls → one) and ``_release()`` (frees the
    model; called once)."""

    name = "?"
    max_batch: int | None = None
    input_shape: Shape = ()
    label = "the model"  # in messages: the model file's name

    def predict(self, batch: np.ndarray, batch_size: int | None = None) -> _Out:
        """N×``input_shape[1:]`` float32 → the outputs for the N items, in calls of at most
        ``min(batch_size, max_batch)`` items (batch_size None: max_batch, or DEFAULT_BATCH_SIZE where the
        batch is dynamic). ConfigError for a wrong shape, or once :meth:`close` ran (a call already under
        way keeps its model to the end)."""
        handle = self._handle()  # one reference for the whole call: close() may drop it
        if handle is None:
            raise ConfigError(f"the {self.name} backend for {self.label} was closed; create a new one")
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if x.ndim and len(x) == 0:
            return self._empty()
        if x.shape[1:] != self.input_shape[1:] or not x.ndim:  # a tuple compare: every item dim fixed
            _check_shape(x, self.input_shape, self.label)
        if batch_size is not None and (
            not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise ConfigError(f"predict(batch_size=...): got {batch_size!r}; accepted: None or an int ≥ 1")
        step = int(batch_size or self.max_batch or DEFAULT_BATCH_SIZE)
        if self.max_batch is not None and step > self.max_batch:
            step = self.max_batch
        if len(x) <= step:  # the common case (a frame's faces): one call, nothing to join
            return self._run(handle, x)
        return self._join([self._run(handle, x[i : i + step]) for i in range(0, len(x), step)])

    def __call__(self, batch: np.ndarray) -> _Out:
        return self.predict(batch)

    def close(self) -> None:
        """Release the model; idempotent. Later ``predict`` calls raise ConfigError."""
        if self._handle() is not None:
            self._release()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------- for subclasses
    def _handle(self) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _run(self, handle: Any, x: np.ndarray) -> _Out:  # pragma: no cover
        raise NotImplementedError

    def _empty(self) -> _Out:  # pragma: no cover
        raise NotImplementedError

    def _join(self, outs: list[_Out]) -> _Out:  # pragma: no cover
        raise NotImplementedError

    def _release(self) -> None:  # pragma: no cover
        raise NotImplementedError


class MultiOutputBase(RunnerBase[Tuple[np.ndarray, ...]]):
    """:class:`RunnerBase` for a model with several outputs (the face detector's): a tuple of arrays,
    the batch first in each."""

    def _join(self, outs: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate(parts) for parts in zip(*outs))


def _check_shape(x: np.ndarray, shape: Shape, label: str) -> None:
    """ConfigError unless ``x`` is N×``shape[1:]`` (None in ``shape``: any size)."""
    item = shape[1:]
    if x.ndim != len(shape) or any(d is not None and d != s for d, s in zip(item, x.shape[1:])):
        shown = "×".join("?" if d is None else str(d) for d in item)
        raise ConfigError(f"{label} takes N×{shown} inputs, got {x.shape}")


class BackendBase(RunnerBase[np.ndarray]):
    """:class:`RunnerBase` for an attribute model: outputs N×num_outputs float32 probabilities."""

    num_outputs = 40
    path = Path()  # the model file (each backend sets its own)

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.num_outputs), np.float32)

    def _join(self, outs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(outs)

    def describe(self) -> str:
        """The model file and the runtime, e.g. "model.onnx on onnxruntime [CPU]"."""
        return f"{self.path.name} on {self.name}"
