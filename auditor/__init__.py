"""argmax-audit: find where argmax changes its answer across frameworks, devices, dtypes and runs."""
import os

__version__ = "0.1.0"


def _source_root():
    """Return the checkout this package sits in, when it is imported from one, else None."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    marker = os.path.join(root, "pyproject.toml")
    if os.path.isfile(marker) and os.path.isfile(os.path.join(root, "checks", "__init__.py")):
        with open(marker, encoding="utf-8") as handle:
            if 'name = "argmax-audit"' in handle.read():
                return root
    return None


# pyproject.toml maps checks/ and reports/ to auditor.checks and auditor.reports; imported straight
# from a checkout (`python -m auditor` in its root, with no install), find them the same way.
if _source_root():
    __path__.append(_source_root())

__all__ = ["audit", "Result", "AuditFailed", "__version__"]


def __getattr__(name):
    """`from auditor import audit` (and Result, AuditFailed), imported on first use: `import
    auditor` stays light for the worker processes."""
    if name in ("audit", "Result"):
        from . import api
        return getattr(api, name)
    if name == "AuditFailed":
        from .errors import AuditFailed
        return AuditFailed
    raise AttributeError(f"module 'auditor' has no attribute {name!r}")
