"""Figures and the self-contained HTML report of a run."""

from .run_report import write_report

__all__ = ["write_report"]
