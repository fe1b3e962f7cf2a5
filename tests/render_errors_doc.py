"""Write docs/errors.md from dmv.errors (tests/test_errors.py fails when it is stale)."""

from __future__ import annotations

from pathlib import Path

from dmv.errors import render_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"

if __name__ == "__main__":
    DOC.write_text(render_markdown(), encoding="utf-8")
    print(f"wrote {DOC}")
