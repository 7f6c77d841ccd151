"""Cases from earlier runs: `audit run --cases-from BUNDLE_OR_FILE` replays the cases a results
bundle (a fuzz run's shrunk examples, say) or a baseline file holds, with their exact values."""
import os

from . import baseline
from .cases import copy_case
from .errors import UserError


def replayed_cases(paths):
    """Return the cases of each bundle folder or baseline file in `paths`, in order (a case that
    two of them hold with the same values once; with other values, a UserError)."""
    from .checks.regression import same_case

    found = {}
    for path in paths:
        if not os.path.lexists(path):
            raise UserError(f"--cases-from {path}: no such bundle folder or baseline file")
        folder = os.path.dirname(os.path.abspath(path)) if _results_file(path) else path
        observations = baseline.load(folder)[0]
        for case in observations.cases.values():
            known = found.get(case.id)
            if known is not None and not same_case(case, known):
                raise UserError(f"--cases-from: case {case.id} holds other values in {path} than "
                                "in an earlier one")
            found[case.id] = copy_case(case, tags=tuple(dict.fromkeys((*case.tags, "replayed"))))
    return list(found.values())


def _results_file(path):
    return os.path.basename(path) == "results.json" and os.path.isfile(path)
