"""OpenLineage events from dmv's records; imported only when lineage is on (it loads the client)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    schema_dataset,
    sql_job,
)

PRODUCER = "https://github.com/dmv-dev/dmv"
_SCHEMA = "https://dmv.dev/spec/facets/1-0-0/{}.json#/$defs/{}"


@attr.define
class DmvSplitDatasetFacet(DatasetFacet):
    """A part table of a stored split: its fingerprint and the DATA.SPLIT it belongs to."""

    model: str
    data: str
    split: str
    part: str
    fingerprint: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA.format("DmvSplitDatasetFacet", "DmvSplitDatasetFacet")


@attr.define
class DmvVersionDatasetFacet(DatasetFacet):
    """A model version: the full ``name X.Y.Z-DATA.SPLIT`` and its fingerprints."""

    version: str
    model: str
    number: str
    state: str
    interfaceFingerprint: str | None = attr.field(default=None)
    logicFingerprint: str | None = attr.field(default=None)
    run: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA.format("DmvVersionDatasetFacet", "DmvVersionDatasetFacet")


@attr.define
class DmvRunFacet(RunFacet):
    """What dmv did: the operation and the model."""

    operation: str
    model: str

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA.format("DmvRunFacet", "DmvRunFacet")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def source_datasets(namespace: str, definition: dict[str, Any]) -> list[InputDataset]:
    """The datasets a retrieval reads: the tables its SQL names, or its files."""
    sql = str(definition.get("sql") or "")
    names = re.findall(r"\b(?:from|join)\s+([A-Za-z_][\w.\"]*)", sql, flags=re.IGNORECASE)
    found = list(dict.fromkeys(n.replace('"', "") for n in names))
    if not found and definition.get("files"):
        found = [str(definition["files"])]
    return [InputDataset(namespace=namespace, name=n) for n in found or ["query"]]


def part_dataset(namespace: str, info: Any, part: dict[str, Any], output: bool) -> Any:
    columns = info.result.get("columns") or []
    facets: dict[str, Any] = {
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(
                    name=str(c.get("name")), type=str(c.get("type"))
                )
                for c in columns
                if isinstance(c, dict)
            ]
        ),
        "dmv_split": DmvSplitDatasetFacet(
            model=info.model,
            data=info.data,
            split=info.split,
            part=str(part.get("name")),
            fingerprint=part.get("fingerprint"),
        ),
    }
    name = str(part.get("table") or f"{info.model}/{info.ref}/{part.get('name')}")
    if not output:
        return InputDataset(namespace=namespace, name=name, facets=facets)
    stats = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=part.get("rows")
    )
    return OutputDataset(
        namespace=namespace, name=name, facets=facets, outputFacets={"outputStatistics": stats}
    )


def named_dataset(namespace: str, name: str, rows: int | None, *, output: bool) -> Any:
    """A dataset a batch prediction read or wrote (its fingerprint is in the registry)."""
    if not output:
        return InputDataset(namespace=namespace, name=name)
    stats = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)
    return OutputDataset(namespace=namespace, name=name, outputFacets={"outputStatistics": stats})


def version_dataset(namespace: str, info: Any, run_id: str | None, output: bool) -> Any:
    v = info.version
    facet = DmvVersionDatasetFacet(
        version=str(v),
        model=v.name,
        number=v.number,
        state=info.state,
        interfaceFingerprint=info.interface_fp,
        logicFingerprint=info.logic_fp,
        run=run_id,
    )
    cls = OutputDataset if output else InputDataset
    return cls(namespace=namespace, name=v.ref, facets={"dmv_version": facet})


def run_event(
    state: str,
    run_id: str,
    namespace: str,
    job: str,
    operation: str,
    model: str,
    inputs: list[Any],
    outputs: list[Any],
    *,
    sql: str | None = None,
    error: str | None = None,
) -> RunEvent:
    run_facets: dict[str, Any] = {"dmv": DmvRunFacet(operation=operation, model=model)}
    if error:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage="python"
        )
    job_facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="DMV", jobType=operation.upper()
        )
    }
    if sql:
        job_facets["sql"] = sql_job.SQLJobFacet(query=sql)
    return RunEvent(
        eventType=getattr(RunState, state),
        eventTime=_now(),
        run=Run(runId=run_id, facets=run_facets),
        job=Job(namespace=namespace, name=job, facets=job_facets),
        inputs=inputs,
        outputs=outputs,
        producer=PRODUCER,
    )
