"""HTML for notebooks; the renderers live in :mod:`dmv.reprs`, beside the records."""

from dmv.reprs import Html, diff_html, interface_diff_html, run_html, split_html, version_html

__all__ = ["Html", "diff_html", "interface_diff_html", "run_html", "split_html", "version_html"]
