"""Where a run trained: the interpreter, the machine and every installed distribution."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["Environment", "capture_environment"]


def _normalise(name: str) -> str:
    """A distribution name as PEP 503 normalises it."""
    return re.sub(r"[-_.]+", "-", name).lower()


# The environment ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Environment:
    """Where a run trained: interpreter, machine, and every installed distribution."""

    python_version: str
    python_implementation: str
    python_executable: str
    os: str
    os_release: str
    platform: str
    machine: str
    cpu_count: int | None
    cpu_model: str
    gpus: tuple[str, ...]
    distributions: tuple[tuple[str, str], ...]

    @property
    def python_minor(self) -> str:
        return ".".join(self.python_version.split(".")[:2])

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": {
                "version": self.python_version,
                "implementation": self.python_implementation,
                "executable": self.python_executable,
            },
            "os": {"name": self.os, "release": self.os_release, "platform": self.platform},
            "cpu": {"machine": self.machine, "count": self.cpu_count, "model": self.cpu_model},
            "gpus": list(self.gpus),
            "distributions": dict(self.distributions),
        }


_environment: Environment | None = None


def capture_environment(*, refresh: bool = False) -> Environment:
    """The environment of this process, measured once and then served from memory.

    Every run records it, and what it measures cannot change under a running
    process (short of installing packages into it: pass ``refresh=True`` then).
    """
    global _environment
    if _environment is None or refresh:
        _environment = _measure_environment()
    return _environment


def _measure_environment() -> Environment:
    from importlib import metadata

    distributions: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        # The first one on sys.path is the one imports get, as with metadata.version().
        if name and _normalise(name) not in distributions:
            distributions[_normalise(name)] = (name, dist.version)
    return Environment(
        python_version=platform.python_version(),
        python_implementation=platform.python_implementation(),
        python_executable=sys.executable,
        os=platform.system(),
        os_release=platform.release(),
        platform=platform.platform(),
        machine=platform.machine(),
        cpu_count=os.cpu_count(),
        cpu_model=_cpu_model(),
        gpus=_gpus(),
        distributions=tuple(sorted(distributions.values(), key=lambda d: _normalise(d[0]))),
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    # Not Linux. (On Linux platform.processor() spawns `uname -p`, which says less.)
    return platform.processor() if sys.platform != "linux" else ""


def _gpus() -> tuple[str, ...]:
    # Only the cheap, certain probe: NVIDIA's tool. Anything going wrong means "none known".
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return ()
    query = "--query-gpu=name,memory.total,driver_version"
    try:
        out = subprocess.run(
            [tool, query, "--format=csv,noheader"], capture_output=True, timeout=5, check=True
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in out.splitlines() if line.strip())
