"""Reports: ``report.md``, ``report.html`` and ``certificate.json`` rendered from one list of claims."""

from .provenance import provenance
from .write import write_report

__all__ = ["provenance", "write_report"]
