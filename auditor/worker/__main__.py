"""Entry point: `python -m auditor.worker` speaks the protocol on its original stdout."""
from .main import main

main()
