"""Rules of the tie and NaN policies read from an answer: which rows count and what each pick is."""
import numpy as np
import pytest
from synthetic import small_case

from auditor.oracle import reference_argmax

NAN = np.nan
TIES = [5.0, 1.0, 5.0, 5.0]       # tied maxima at 0, 2, 3
NANS = [1.0, NAN, 7.0, NAN]       # first NaN 1, a later NaN 3, the maximum of the rest 2


def _policies(rows, answers, dim=1):
    """Return the (tie, NaN) policies of `answers` (one per row) to argmax over the `rows`."""
    values = np.array(rows, dtype=np.float32)
    case = small_case(values if dim == 1 else values.T, dim=dim)
    return case.policies("float32", np.array(answers, dtype=np.int64))


@pytest.mark.parametrize("row, answer, expected", [
    (TIES, 0, ("first", "none")),
    (TIES, 3, ("last", "none")),
    (TIES, 2, ("other", "none")),
    (TIES, 1, ("other", "none")),          # not even a maximum: neither first nor last
    ([3.0, 3.0, 1.0], 1, ("last", "none")),  # two tied maxima are a tie
    ([1.0, 2.0, 3.0], 2, ("none", "none")),  # no tie, no NaN: tells no policy
    (NANS, 1, ("none", "first")),
    (NANS, 3, ("none", "later-nan")),
    (NANS, 2, ("none", "ignores-nan")),      # the first maximum of the other values, as nanargmax
    (NANS, 0, ("none", "other")),
    (NANS, 4, ("none", "other")),            # outside the row
    (NANS, -1, ("none", "other")),
    ([NAN, 1.0, 7.0], 0, ("none", "first")),
    ([1.0, NAN, np.inf], 2, ("none", "ignores-nan")),  # +inf is the largest of the other values
    ([NAN, NAN, NAN], 1, ("none", "none")),  # an all-NaN row tells no policy apart
    ([5.0], 3, ("none", "none")),            # outside a one-element row
])
def test_one_rows_policies_name_the_pick(row, answer, expected):
    assert _policies([row], [answer]) == expected


@pytest.mark.parametrize("dim", [1, 0], ids=["rows", "columns"])
def test_policies_are_read_row_by_row_and_merged(dim):
    rows = [[5.0, 5.0, 1.0, 0.0], [2.0, 9.0, 9.0, 9.0], [1.0, NAN, 7.0, NAN],
            [NAN, NAN, NAN, NAN], [1.0, 2.0, 3.0, 4.0]]
    assert _policies(rows, [1, 3, 2, 1, 3], dim) == ("last", "ignores-nan")
    assert _policies(rows, [0, 1, 1, 0, 3], dim) == ("first", "first")
    assert _policies(rows, [0, 3, 3, 0, 3], dim) == ("mixed", "later-nan")
    assert _policies(rows, [0, 1, 0, 0, 3], dim) == ("first", "other")
    assert _policies(rows, [0, 1, 2, 0, 3], dim) == ("first", "ignores-nan")
    assert _policies(rows, [0, 1, 3, 0, 3], dim) == ("first", "later-nan")
    assert _policies(rows[2:], [1, 2, 3], dim) == ("none", "first")


def test_policies_of_a_three_dim_input_with_a_single_middle_dim():
    values = np.array([[[1.0, NAN, 7.0, NAN]], [[5.0, 1.0, 5.0, 5.0]]], dtype=np.float32)
    case = small_case(values, dim=-1)
    assert case.policies("float32", np.array([[2], [3]])) == ("last", "ignores-nan")
    assert case.policies("float32", np.array([[1], [0]])) == ("first", "first")


def test_an_empty_reduction_has_no_reference_and_an_empty_input_reduced_elsewhere_has_one():
    for dim in (0, None):
        with pytest.raises(ValueError) as info:
            reference_argmax(np.zeros((0, 3)), dim)
        assert str(info.value) == "argmax of an empty sequence is undefined"
    assert reference_argmax(np.zeros((1, 0)), 0).shape == (0,)


def test_the_reference_is_int64_even_for_a_0d_input():
    reference = reference_argmax(np.float32(3.0), None)
    assert (reference.dtype, reference.shape, int(reference)) == (np.int64, (), 0)
    assert reference_argmax(np.float32(3.0), 0).dtype == np.int64
