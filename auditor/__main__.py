"""`python -m auditor` is the `audit` command."""
from .cli import main

main()
