"""The state every command shares: which project it works on, opened on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from dmv.project import Project

__all__ = ["Context", "pass_ctx"]


class Context:
    def __init__(self, project_dir: str | None) -> None:
        self.project_dir = project_dir
        self._project: Project | None = None

    @property
    def project(self) -> Project:
        if self._project is None:
            # The facade imports every domain package: `dmv --help` does without it.
            from dmv.project import open_project  # lazy: the facade

            self._project = open_project(self.project_dir or ".")
        return self._project


pass_ctx = click.make_pass_decorator(Context)
