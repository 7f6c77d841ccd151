"""Rules of the determinism check: every position where the answers differ, and who gave what."""
from synthetic import empty, error, indices, small_case, target

from auditor.checks import determinism


def _check(outcomes):
    case = small_case([[1.0, 5.0, 5.0], [2.0, 2.0, 0.0], [7.0, 7.0, 1.0]], id="ties")
    tgt = target(op="argmin")
    observations = empty([case], [tgt])
    observations.add(tgt.id, case.id, outcomes)
    (finding,) = determinism.check(observations, {})
    return finding


def test_every_position_where_any_answer_differs_from_the_first_is_disputed():
    finding = _check([indices([1, 0, 0], runs=[(0, 0), (0, 1)]),
                      indices([2, 0, 1], runs=[(1, 0)]),
                      indices([1, 1, 0], runs=[(1, 1), (2, 0)])])
    assert finding.message == (
        "argmin(x, dim=-1) on numpy.argmin/cpu/float32 gave 3 different answers on case ties, "
        "within one process, differing at 3 positions: at row 0 it returned 1 (5) in 4 of 5 calls "
        "(80.0%; process 0, 1, 2); 2 (5) in 1 of 5 calls (20.0%; process 1)")
    assert (finding.count, finding.positions) == (3, [[0], [1], [2]])
    assert finding.evidence == {
        "answers": [{"runs": [[0, 0], [0, 1]], "error": None}, {"runs": [[1, 0]], "error": None},
                    {"runs": [[1, 1], [2, 0]], "error": None}],
        "scope": "within one process", "values": [[0, "1"], [1, "5"], [2, "5"]],
        "picks": [1, 2, 1], "calls": 5,
        "rates": [{"answer": [1, 0, 0], "calls": 2, "share": 0.4},
                  {"answer": [1, 1, 0], "calls": 2, "share": 0.4},
                  {"answer": [2, 0, 1], "calls": 1, "share": 0.2}]}
    assert finding.reproducer.endswith(
        "    answer = str([int(np.asarray(r)[p]) for p in [(0,), (1,), (2,)]])\n"
        "    counts[answer] = counts.get(answer, 0) + 1\n"
        "print(counts)  # each answer and how many of 1000 calls gave it; more than one: "
        "nondeterministic (run it in several processes too)")


def test_one_disputed_position_and_an_index_out_of_range_are_said_so():
    finding = _check([indices([0, 0, 0], runs=[(0, 0)]), indices([3, 0, 0], runs=[(1, 0)])])
    assert finding.message.endswith(
        "only between processes, differing at 1 position: at row 0 it returned 0 (1) in 1 of 2 "
        "calls (50.0%; process 0); 3 (out of range) in 1 of 2 calls (50.0%; process 1)")
    assert finding.count == 1


def test_an_error_in_some_runs_is_a_disagreement_counted_once():
    finding = _check([indices([1, 0, 0], runs=[(0, 0)]),
                      error("RuntimeError", runs=[(0, 1), (1, 0)])])
    assert finding.message == (
        "argmin(x, dim=-1) on numpy.argmin/cpu/float32 gave 2 different answers on case ties, "
        "within one process: indices in 1 of 3 calls (33.3%; process 0), RuntimeError in 2 of 3 "
        "calls (66.7%; process 0, 1)")
    assert (finding.count, finding.positions) == (1, [])


def test_two_disputed_positions_are_counted_in_the_plural():
    finding = _check([indices([1, 0, 0], runs=[(0, 0)]), indices([2, 1, 0], runs=[(0, 1)])])
    assert ", within one process, differing at 2 positions: at row 0 " in finding.message
