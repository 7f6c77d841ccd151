"""The worker process: drives one framework's argmax for the audit driver.

This package imports nothing from the rest of `auditor` (only its own modules, numpy and the
framework it drives), so a later driver can run it in another Python environment.
"""
