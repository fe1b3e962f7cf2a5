"""What a finished run registers: its interface (declared or inferred) and its version.

:func:`deriver` gives the registry the rule that numbers a derived version, so
the number is chosen inside the transaction that registers the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dmv.errors import InvalidInput
from dmv.flavors import ONNX_INSTALL_HINT
from dmv.interface import Interface, diff_interfaces, infer_domain, infer_interface
from dmv.training.numbering import Known, KnownVersion, derive

if TYPE_CHECKING:
    from dmv.training.run import Run
    from dmv.version import Version

__all__ = ["deriver", "interface_of", "known_versions"]


def interface_of(run: Run, declared: Any) -> Interface | None:
    """The run's interface: declared, or inferred from ``log_model(..., sample_input=)``."""

    if declared is not None:
        iface = _declared(declared)
        if (
            run.sample_input is not None
            and not iface.domain
            and hasattr(run.sample_input, "columns")
        ):
            # The contract is the user's; what the training rows held is still recorded.
            learned = infer_domain(run.sample_input)
            iface = iface.with_domain(learned)
        return iface
    if run.sample_input is None:
        return None
    if run.sample_output is not None:
        return infer_interface(run.sample_input, run.sample_output)
    if run.model_object is None:  # an ONNX model, and no onnxruntime to run it
        raise InvalidInput(
            "inferring the interface from sample_input runs the ONNX model, "
            "and onnxruntime is not installed",
            hint=f"{ONNX_INSTALL_HINT}, or pass interface=… to project.run "
            "(or sample_output= to log_model)",
        )
    # The outputs are what the model serves, as its flavor answers them.
    model = run.model_object
    fields = model.output_fields(run.sample_input)
    first = model.columns(run.sample_input)[0]
    inferred = infer_interface(run.sample_input, first)
    return Interface(inferred.inputs, fields, inferred.domain)


def _declared(declared: Any) -> Interface:
    if isinstance(declared, Interface):
        return declared
    if isinstance(declared, Mapping):
        return Interface.from_dict(declared)
    if isinstance(declared, tuple) and len(declared) == 2:
        return Interface.from_pydantic(*declared)
    raise InvalidInput(
        f"interface= takes an Interface, a dict or a (Input, Output) pydantic pair, "
        f"not {type(declared).__name__}",
        hint="e.g. interface={'inputs': {'age': 'int64'}, 'outputs': {'price': 'float64'}}",
    )


def known_versions(name: str, rows: list[Any]) -> Known:
    """What derivation needs from the registry's rows of a model's versions.

    Versions registered with an explicit number and no fingerprints still hold
    their Y and Z: they stand in with placeholder fingerprints, one per Y and
    one per Y.Z, so derivation never hands their numbers to other components.
    """

    interface_by_y: dict[int, str] = {}
    logic_by_yz: dict[tuple[int, int], str] = {}
    for r in rows:
        if r.interface_fp:
            interface_by_y.setdefault(r.y, r.interface_fp)
        if r.logic_fp:
            logic_by_yz.setdefault((r.y, r.z), r.logic_fp)
    versions = [
        KnownVersion(
            r.x,
            r.y,
            r.z,
            r.data,
            r.split,
            r.interface_fp or interface_by_y.get(r.y, f"unknown-interface:{r.y}"),
            r.logic_fp or logic_by_yz.get((r.y, r.z), f"unknown-logic:{r.y}.{r.z}"),
        )
        for r in rows
    ]
    return Known(name, versions)


def deriver(
    name: str, interface: Interface, logic_fp: str, data: str, split: str
) -> Callable[[list[Any]], tuple[Version, dict[str, Any]]]:
    """The derivation the registry runs under the model's lock (see ``NewRun.derive``)."""

    def derive_version(rows: list[Any]) -> tuple[Version, dict[str, Any]]:

        result = derive(known_versions(name, rows), interface.fingerprint, logic_fp, data, split)
        extra: dict[str, Any] = {
            "meta": {"derivation": {"reason": result.reason, "changed": list(result.changed)}}
        }
        previous = [r for r in rows if r.interface is not None and r.y < result.version.y]
        same_y = [r.interface_compat for r in rows if r.y == result.version.y]
        if same_y and same_y[0]:
            # Every version with this Y shares its interface, so its compatibility class.
            extra["interface_compat"] = same_y[0]
        elif "interface" in result.changed and previous:
            before = Interface.from_dict(max(previous, key=lambda r: r.y).interface)
            extra["interface_compat"] = str(diff_interfaces(before, interface).compat)
        return result.version, extra

    return derive_version
