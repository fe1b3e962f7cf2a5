"""The :class:`Interface` record: a model's typed input and output fields."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from dmv.errors import InvalidInput
from dmv.interface.annotations import pydantic_fields
from dmv.interface.fields import Field, Side, _parse_side
from dmv.interface.jsonschema import json_schema_fields
from dmv.interface.validate import RowValidator

__all__ = ["PROBLEM_KINDS", "Interface", "validate_rows"]


@dataclass(frozen=True)
class Interface:
    """A model's input fields and output fields.

    Field order is kept for people (and DataFrame column order) but is not part of
    the structure: :attr:`fingerprint` and :func:`diff_interfaces` ignore it, so
    compare interfaces by fingerprint, not with ``==``.
    """

    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]
    #: Value domains learned from the training rows, per input field: ``values`` (the
    #: category set), ``min``/``max``, ``nulls`` (whether the rows held any). Recorded
    #: with the version and shown by ``dmv show``/``dmv diff``, but not part of the
    #: contract: it is left out of the fingerprint and of ``==``, so it never moves Y.
    domain: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.domain, Mapping) or not all(
            isinstance(v, Mapping) for v in self.domain.values()
        ):
            raise InvalidInput(
                "an interface's domain maps input names to objects",
                hint='e.g. {"dest": {"values": ["JFK", "LGA"]}}',
            )
        object.__setattr__(self, "domain", {str(k): dict(v) for k, v in self.domain.items()})
        for side in ("inputs", "outputs"):
            fields = getattr(self, side)
            if not isinstance(fields, list | tuple) or not all(
                isinstance(f, Field) for f in fields
            ):
                raise InvalidInput(
                    f"{side} must be a sequence of Field objects",
                    hint="build each with dmv.interface.Field, or pass a dict spec",
                )
            object.__setattr__(self, side, tuple(fields))
            names = [f.name for f in fields]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise InvalidInput(
                    f"{side} declare {', '.join(map(repr, dupes))} more than once",
                    hint="field names are unique on each side",
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interface:
        """Read the stored form or the compact declared form.

        ``{"inputs": {"age": "int64", "note": {"type": "string", "nullable": true}},
        "outputs": {"price": "float64"}}``; each side may also be a list of field
        objects with a ``name``. Types are :class:`FieldType` names; in the compact
        form ``int``, ``float``, ``str`` and ``bytes`` mean int64, float64, string
        and binary.
        """
        if not isinstance(data, Mapping):
            raise InvalidInput(
                f"an interface must be an object, got {type(data).__name__}",
                hint="pass {'inputs': {...}, 'outputs': {...}}",
            )
        unknown = sorted(set(data) - {"inputs", "outputs", "domain"}, key=str)
        missing = [k for k in ("inputs", "outputs") if k not in data]
        if unknown or missing:
            raise InvalidInput(
                f"an interface has exactly 'inputs' and 'outputs'"
                f"{'; unknown ' + str(unknown) if unknown else ''}"
                f"{'; missing ' + str(missing) if missing else ''}",
                hint='e.g. {"inputs": {"age": "int64"}, "outputs": {"price": "float64"}}',
            )
        return cls(
            _parse_side(data["inputs"], "input"),
            _parse_side(data["outputs"], "output"),
            data.get("domain") or {},
        )

    def to_dict(self) -> dict[str, Any]:
        """The canonical stored form, plain JSON; :meth:`from_dict` reads it back.

        ``domain`` is there only when rows were seen, so an interface without one
        stores exactly what it did before domains were recorded.
        """
        out: dict[str, Any] = {
            "inputs": [f.to_dict() for f in self.inputs],
            "outputs": [f.to_dict() for f in self.outputs],
        }
        if self.domain:
            out["domain"] = {k: dict(v) for k, v in self.domain.items()}
        return out

    def with_domain(self, domain: Mapping[str, Mapping[str, Any]]) -> Interface:
        """The same contract with ``domain`` recorded (for the inputs it names)."""
        names = {f.name for f in self.inputs}
        return replace(self, domain={k: v for k, v in domain.items() if k in names})

    def with_nullable(self, nullable: set[str] | frozenset[str]) -> Interface:
        """The same interface with exactly the inputs in ``nullable`` accepting null."""
        inputs = tuple(replace(f, nullable=f.name in nullable) for f in self.inputs)
        return replace(self, inputs=inputs)

    @classmethod
    def from_pydantic(cls, input_model: type[Any], output_model: type[Any]) -> Interface:
        """From two pydantic v2 models, one for an input row and one for an output row.

        int, float, str, bool, bytes and datetime map to int64, float64, string,
        bool, binary and datetime; ``Literal`` and ``Enum`` to enum; ``list[...]``
        to an array (a fixed ``tuple[float, float]`` gives a fixed dimension);
        ``X | None`` to nullable; a default to not required. Pick another type
        with ``Field(json_schema_extra={"dmv": "float32"})``.
        """
        return cls(pydantic_fields(input_model, "input"), pydantic_fields(output_model, "output"))

    @classmethod
    def from_json_schema(
        cls, input_schema: Mapping[str, Any], output_schema: Mapping[str, Any] | None = None
    ) -> Interface:
        """From JSON Schema objects for an input row and an output row.

        Reads ``properties``/``required``, local ``$ref``s and the nullable
        ``anyOf`` pydantic writes; with one argument, reads the
        ``{"input": …, "output": …}`` pair :func:`to_json_schema` returns.
        """
        return cls(*json_schema_fields(input_schema, output_schema))

    @cached_property
    def fingerprint(self) -> str:
        """``blake3:<hex>`` of the structure: sorted keys, fields sorted by name.

        The learned :attr:`domain` is left out: a re-split that moves a rare
        category between parts must not move Y. Descriptions are left out on
        purpose: they document a field without changing what a client may send
        or receive, so rewording one must not move Y.
        """
        import blake3

        payload = {
            side: [f._structure() for f in sorted(fields, key=lambda f: f.name)]
            for side, fields in (("inputs", self.inputs), ("outputs", self.outputs))
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "blake3:" + str(blake3.blake3(text.encode()).hexdigest())

    def fields(self, side: Side) -> tuple[Field, ...]:
        """The fields of one side, ``"input"`` or ``"output"``."""
        if side not in ("input", "output"):
            raise InvalidInput(
                f"side must be 'input' or 'output', got {side!r}",
                hint="pass side='input' or side='output'",
            )
        return self.inputs if side == "input" else self.outputs

    @cached_property
    def _validators(self) -> dict[str, RowValidator]:
        # Built once per interface: validate_rows runs on every predict request.
        return {side: RowValidator(self.fields(side)) for side in ("input", "output")}

    def __getstate__(self) -> dict[str, Any]:
        # The cached checkers are closures, which pickle cannot carry; they rebuild on use.
        return {k: v for k, v in self.__dict__.items() if k != "_validators"}


# ---------------------------------------------------------------------- validation

PROBLEM_KINDS = ("missing", "wrong_type", "not_in_enum", "bad_shape", "null", "unknown_field")


def validate_rows(
    iface: Interface, rows: Sequence[Any], *, side: Side = "input", limit: int = 100
) -> list[dict[str, Any]]:
    """Every way ``rows`` break the interface, as ``{"row", "field", "problem", "message"}``.

    ``problem`` is one of :data:`PROBLEM_KINDS`; an empty list means valid. JSON
    shapes are expected (binary as base64 text, datetime as ISO 8601 text), as
    are their Python equivalents. Stops after ``limit`` problems.
    """
    if not isinstance(rows, list | tuple):
        raise InvalidInput(
            f"rows must be a list of objects, got {type(rows).__name__}",
            hint='send {"inputs": [{"field": value, ...}, ...]}',
        )
    iface.fields(side)  # checks the side's name
    return iface._validators[side].problems(rows, limit)
