"""Blocks of rows: the reference and the policies computed in chunks equal the whole-array ones."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import PLANTED, observe, target

from auditor import chunks
from auditor.checks import precision, reference, run_checks
from auditor.model import Case
from auditor.oracle import oriented, policies, reference_argmax, row_facts
from auditor.worker.casting import seen_values

SPECIAL = [0.0, -0.0, 1.0, 1.0, 2.0, np.nan, np.inf, -np.inf, 1e-45, 65504.0, 1.0009765625]


@st.composite
def inputs(draw):
    """Draw (source values, dim, keepdim, dtype, sense): few distinct values, so ties and NaN
    are common, on ranks 1 to 3."""
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
    dtype = draw(st.sampled_from(["float32", "float16", "bfloat16", "int8", "float64"]))
    size = int(np.prod(shape))
    if dtype == "int8":
        values = np.array(draw(st.lists(st.integers(-300, 300), min_size=size, max_size=size)),
                          dtype=np.int64)
    else:
        pool = st.sampled_from(SPECIAL) | st.floats(-4, 4, width=32)
        values = np.array(draw(st.lists(pool, min_size=size, max_size=size)), dtype=np.float32)
    dim = draw(st.sampled_from([None, *range(-len(shape), len(shape))]))
    return (values.reshape(shape), dim, draw(st.booleans()), dtype,
            draw(st.sampled_from(["max", "min"])))


def _orders(dtype, sense):
    return lambda block: oriented(seen_values(block, dtype), sense)


@settings(max_examples=300, deadline=None)
@given(inputs(), st.integers(1, 64))
def test_chunked_reference_equals_whole(drawn, chunk_bytes):
    values, dim, keepdim, dtype, sense = drawn
    whole = reference_argmax(seen_values(values, dtype), dim, keepdim, sense)
    chunked = chunks.reference(values, _orders(dtype, sense), dim, keepdim, chunk_bytes)
    assert chunked.dtype == np.int64 and chunked.shape == whole.shape
    np.testing.assert_array_equal(chunked, whole)


def _whole_policies(values, dim, dtype, sense, indices):
    ordered = oriented(seen_values(values, dtype), sense)
    if dim is None:
        return policies(row_facts(ordered.reshape(1, -1), 1), np.asarray(indices).reshape(1))
    return policies(row_facts(ordered, dim % values.ndim), indices)


@settings(max_examples=300, deadline=None)
@given(inputs(), st.integers(1, 64), st.randoms(use_true_random=False))
def test_chunked_policies_equal_whole(drawn, chunk_bytes, random):
    values, dim, _, dtype, sense = drawn
    expected = reference_argmax(seen_values(values, dtype), dim, False, sense)
    length = values.size if dim is None else values.shape[dim]
    answers = np.array([random.choice([int(i), random.randrange(length), length])
                        for i in np.asarray(expected).reshape(-1)], dtype=np.int64)
    answers = answers.reshape(np.shape(expected))
    axis = None if dim is None else dim % values.ndim
    got = chunks.policies(values, _orders(dtype, sense), axis,
                          answers.reshape(1) if dim is None else answers, chunk_bytes)
    assert got == _whole_policies(values, dim, dtype, sense, answers)


def test_blocks_cover_every_row_once_within_the_budget():
    shape = (7, 5, 3)
    seen = np.zeros(shape, dtype=int)
    for block in chunks.blocks(shape, 2, 4, chunk_bytes=4 * 3 * 2):
        seen[block] += 1
        assert np.zeros(shape)[block].size * 4 <= 4 * 3 * 5
    assert (seen == 1).all()


def _boundary_case():
    """Rows of 8 float32 (32 bytes): with 64-byte blocks row 2 opens the second block; it holds
    a tie, row 1 (the end of the first block) a NaN."""
    values = np.arange(5 * 8, dtype=np.float32).reshape(5, 8) % 7
    values[2, [1, 6]] = 50.0
    values[1, 3] = np.nan
    return Case("user:boundary", values, dim=-1, tags=("user",))


def _findings(monkeypatch, chunk_bytes, impl="last_tie"):
    monkeypatch.setattr(chunks, "CHUNK_BYTES", chunk_bytes)
    observations = observe([_boundary_case()], {target(impl): PLANTED[impl]})
    return [f.to_json() for f in reference.check(observations, {})]


@pytest.mark.parametrize("chunk_bytes", [1, 32, 64, 96])
@pytest.mark.parametrize("impl", ["last_tie", "nan_skip"])
def test_a_disputed_row_at_a_block_boundary_keeps_its_evidence(monkeypatch, chunk_bytes, impl):
    whole = _findings(monkeypatch, chunks.CHUNK_BYTES, impl)
    assert whole and _findings(monkeypatch, chunk_bytes, impl) == whole


def test_the_boundary_tie_is_explained(monkeypatch):
    tie = next(f for f in _findings(monkeypatch, 64) if f["kind"] == "tie_break")
    assert tie["positions"] == [[2]] and tie["evidence"]["returned"] == 6
    assert tie["evidence"]["expected"] == 1 and tie["evidence"]["tied"] == [1, 6]
    assert tie["evidence"]["policy"] == "last"
    assert [1, "50"] in tie["evidence"]["values"] and [6, "50"] in tie["evidence"]["values"]


def test_correct_answers_stay_clean_in_small_blocks(monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 32)
    case = _boundary_case()
    observations = observe([case], {target("ok"): lambda x, dim=None, keepdim=False:
                                    np.asarray(reference_argmax(x, dim, keepdim))})
    assert reference.check(observations, {}) == []


def test_precision_flips_in_blocks(monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 32)
    values = np.zeros((4, 8), dtype=np.float32)
    values[3, 2], values[3, 5] = 1.0, 1.0001  # bfloat16 ties them: the first wins there
    case = Case("user:flip", values, dim=-1, tags=("user",))
    first = lambda x, dim=None, keepdim=False: np.asarray(  # noqa: E731
        reference_argmax(np.asarray(x, dtype=np.float32), dim, keepdim))
    observations = observe([case], {target(None, "float32"): first,
                                    target(None, "bfloat16"): first})
    found = precision.check(observations, {})
    assert len(found) == 1 and found[0].positions == [[3]]
    assert found[0].evidence["picks"] == [5, 2]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(2, 9), st.integers(1, 200),
       st.sampled_from(["last_tie", "nan_skip"]), st.randoms(use_true_random=False))
def test_findings_are_the_same_in_any_block_size(rows, cols, chunk_bytes, impl, random):
    """Every check's findings (sentences, positions, evidence) on a planted fault do not depend
    on how the rows are cut into blocks."""
    values = np.array([[random.choice([0.0, 1.0, 2.0, np.nan, 7.0]) for _ in range(cols)]
                       for _ in range(rows)], dtype=np.float32)
    impls = {target(impl): PLANTED[impl], target(None, "float32"): PLANTED["last_tie"],
             target(None, "bfloat16"): PLANTED["last_tie"]}
    found = []
    for size in (chunk_bytes, chunks.CHUNK_BYTES):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(chunks, "CHUNK_BYTES", size)
            observations = observe([Case("user:drawn", values, dim=-1, tags=("user",))], impls)
            found.append([f.to_json() for f in run_checks(observations, {})])
    assert found[0] == found[1]
