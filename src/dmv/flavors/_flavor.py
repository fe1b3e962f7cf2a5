"""What every kind of model answers: save an object, load the file back, compute outputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from dmv.flavors._frame import FrameSpec

__all__ = ["FastInput", "Flavor", "all_numeric"]

#: How a model takes validated columns without a frame: ``(build, model)``, where
#: ``build(columns, n)`` is the input and ``model`` the object to compute on.
FastInput = tuple[Callable[[Mapping[str, list[Any]], int], Any], Any]


class Flavor:
    """One kind of model. Subclasses are stateless singletons listed in :data:`FLAVORS`."""

    name: ClassVar[str]
    format: ClassVar[str]
    unsafe: ClassVar[bool] = False

    def matches(self, obj: Any) -> bool:
        raise NotImplementedError

    def save(self, obj: Any, *, trust_pickle: bool) -> tuple[bytes, dict[str, Any]]:
        """The file and the metadata (``class``, ``classes``, …) to store."""
        raise NotImplementedError

    def save_with_code(self, obj: Any, *, trust_pickle: bool) -> tuple[bytes, dict[str, Any]]:
        """:meth:`save` for a model logged with ``code=[...]`` (its classes come from there)."""
        return self.save(obj, trust_pickle=trust_pickle)

    def load(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        """The library's own model object; raises :class:`~dmv.errors.ModelUnavailable`."""
        raise NotImplementedError

    def kinds(self, native: Any, meta: Mapping[str, Any]) -> tuple[str, ...]:
        """Every output this model can serve; the first is the default."""
        has_proba = callable(getattr(native, "predict_proba", None))
        return ("label", "proba") if has_proba else ("label",)

    def model_input(self, native: Any, meta: Mapping[str, Any], frame: Any) -> Any:
        """What the model's predict takes, made from the training frame."""
        return frame

    def fast_input(self, native: Any, meta: Mapping[str, Any], spec: FrameSpec) -> FastInput | None:
        """The frame-free input, when it gives exactly the frame's answers (None: the frame).

        Serving hands the model the typed columns of a validated request; a flavor
        that can make its input from them directly (a float matrix, category codes)
        skips building a pandas frame per request.
        """
        return None

    def compute(self, native: Any, meta: Mapping[str, Any], x: Any, kind: str) -> Any:
        """One output, one entry per row (an array, or anything ``numpy.asarray`` takes)."""
        if kind == "proba":
            return native.predict_proba(x)
        return native.predict(x)

    def native_of(self, obj: Any, data: bytes) -> Any:
        """The logged object as :meth:`load` would return it (None: it cannot run here)."""
        return obj

    def compute_all(
        self, native: Any, meta: Mapping[str, Any], x: Any, kinds: tuple[str, ...]
    ) -> list[Any]:
        """Every chosen output; a flavor whose outputs come from one call overrides this."""
        return [self.compute(native, meta, x, kind) for kind in kinds]

    def classes(self, native: Any) -> list[Any] | None:
        found = getattr(native, "classes_", None)
        return None if found is None else [_py(c) for c in found]


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and getattr(value, "shape", None) == () else value


def all_numeric(frame: Any) -> bool:
    """Whether every column is a number or a boolean (so the frame can be a float matrix)."""
    from pandas.api import types as pdt  # lazy: pandas

    return all(pdt.is_numeric_dtype(t) or pdt.is_bool_dtype(t) for t in frame.dtypes)
