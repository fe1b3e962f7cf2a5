"""The data engine: retrievals (DATA), stored splits (SPLIT), fingerprints, leakage.

Import the submodules you need; this package imports nothing heavy itself.

* :mod:`dmv.data.warehouse` — ``open_warehouse``: DuckDB file or PostgreSQL
* :mod:`dmv.data.sources` — ``Source``, ``Retrieval``, ``retrieve``
* :mod:`dmv.data.ids` — ``data_id_for``, ``split_id_for``
* :mod:`dmv.data.split` — ``SplitSpec``, ``store_split``, ``SplitResult``
* :mod:`dmv.data.fingerprint` — ``measure_table``, ``verify_parts``
* :mod:`dmv.data.leakage` — ``check_leakage``
* :mod:`dmv.data.files` — file sets: ``scan_files``, ``split_files``, ``store_file_parts``
* :mod:`dmv.data.export` — ``export_part``, ``read_part``
* :mod:`dmv.data.verified` — ``read_verified``: a part, proven against its fingerprint
"""

__all__: list[str] = []
