"""The data engine: retrievals (DATA), stored splits (SPLIT), fingerprints, leakage.

Import the submodules you need; this package imports nothing heavy itself. From the
bottom up (a module imports only those below it):

* :mod:`dmv.data.warehouse` — the ``Warehouse`` interface every engine provides
* :mod:`dmv.data.engines` — ``open_warehouse``: the engines by URL scheme (DuckDB,
  PostgreSQL, Spark, plug-ins); :mod:`dmv.data.records` — ``SplitSpec``, ``PartInfo``,
  ``SplitResult``, ``QueryInfo``, ``SplitInfo``; :mod:`dmv.data.ids` — ``data_id_for``,
  ``split_id_for``
* :mod:`dmv.data.sources` — ``Source``, ``Retrieval``, ``retrieve``
* :mod:`dmv.data.fingerprint` — ``measure_table``, ``verify_parts``;
  :mod:`dmv.data.files` — file sets: ``scan_files``, ``split_files``,
  ``store_file_parts``; :mod:`dmv.data.shared` — shared split storage;
  :mod:`dmv.data.export` — ``export_part``
* :mod:`dmv.data.leakage` — ``check_leakage``; :mod:`dmv.data.verified` —
  ``read_verified``: a part, proven against its fingerprint
* :mod:`dmv.data.split` — ``store_split``
* :mod:`dmv.data.catalog` — retrievals and splits in the registry, read and stored
* :mod:`dmv.data.checks` — verify, fsck, diff and reproduce's view of stored splits
* :mod:`dmv.data.service` — ``ProjectData``: a project's data operations, handed down
"""

__all__: list[str] = []
