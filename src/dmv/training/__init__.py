"""Runs and the versions they derive: ``tr0``…``trN``, experiments, and the numbering rules.

``run`` is what training code logs while it runs; ``lifecycle`` starts, finishes and
registers a run; ``registration`` decides what a finished run registers (its interface
and version); ``numbering`` holds the X.Y.Z rules and nothing else.
"""

__all__ = ["RUN_META_ENV"]

#: Environment variable through which a parent dmv process (``dmv reproduce``) passes
#: metadata to the runs it starts.
RUN_META_ENV = "DMV_RUN_META"
