"""argmax-audit: find where argmax changes its answer across frameworks, devices, dtypes and runs."""

__version__ = "0.1.0"
