"""Large text arrays written without pickle's memo (`text_pickle`): every value, type, layout and
shared object comes back as plain pickle gives it, checked against the originals themselves."""

from __future__ import annotations

import io
import pickle

import pytest

np = pytest.importorskip("numpy")

from colab_elastic import text_pickle  # noqa: E402
from colab_elastic.serialize import dump_group, load_group  # noqa: E402

N = 100_007


class Tag(str):
    """A str subclass: its type must come back, so it keeps the memo's way."""


def distinct(n: int = N, prefix: str = "row") -> np.ndarray:
    return np.array([f"{prefix} {i}" for i in range(n)], dtype=object)


def round_trip(values: dict) -> dict:
    buffer = io.BytesIO()
    dump_group(values, buffer, {})
    return load_group(buffer.getvalue(), {})


def written_fast(arr: np.ndarray) -> list[str]:
    reduced = text_pickle.TextPickling().reduce(arr)
    return [] if reduced is None else [segment[0] for segment in reduced[3]]


def test_distinct_strings_are_written_without_the_memo_and_come_back_equal():
    values = distinct()
    values[3] = "with \x00 a separator"
    values[4] = "a lone surrogate \udc80 and \u00e9"
    values[5] = ""
    values[6] = None
    values[7] = float("nan")
    values[8] = 2.5
    assert written_fast(values) == ["fast"]
    back = round_trip({"v": values})["v"]
    assert back.dtype == object and back.shape == values.shape and back.flags.c_contiguous
    assert [type(x) for x in back[:10]] == [type(x) for x in values[:10]]
    assert back[6] is None and back[7] != back[7] and back[8] == 2.5
    assert back[:7].tolist() == values[:7].tolist() and back[9:].tolist() == values[9:].tolist()


def test_a_column_repeating_its_objects_keeps_pickles_memo_and_its_sharing():
    labels = np.array(["north", "south", "east"], dtype=object)
    column = labels[np.arange(N) % 3]
    assert text_pickle.TextPickling().reduce(column) is None  # numpy's own pickle, memo and all
    back = round_trip({"c": column})["c"]
    assert back.tolist() == column.tolist() and back[0] is back[3]


def test_objects_shared_between_arrays_of_a_group_come_back_shared():
    notes = distinct()
    every_other = notes[::2]  # a view: written as a contiguous copy, as numpy does
    reordered = notes[::-1].copy()
    mixed = notes.copy()
    mixed[:10] = distinct(10, "new")  # mostly shared, partly its own
    back = round_trip({"notes": notes, "every_other": every_other, "reordered": reordered, "mixed": mixed})
    assert back["every_other"].tolist() == every_other.tolist()
    assert back["reordered"].tolist() == reordered.tolist() and back["mixed"].tolist() == mixed.tolist()
    assert back["every_other"][5] is back["notes"][10]
    assert back["reordered"][0] is back["notes"][N - 1]
    assert back["mixed"][20] is back["notes"][20] and back["mixed"][3] == "new 3"
    assert back["mixed"][3] is not back["notes"][3]


def test_a_low_cardinality_column_next_to_distinct_text_keeps_both_right():
    notes = distinct()
    cities = np.array([f"city {i}" for i in range(50)], dtype=object)[np.arange(N) % 50]
    block = np.stack([cities, notes])  # pandas 2.2 keeps object columns in one 2-d block
    assert written_fast(block) == ["memo", "fast"]
    back = round_trip({"b": block})["b"]
    assert back.shape == block.shape and back.flags.c_contiguous
    assert back.tolist() == block.tolist() and back[0, 0] is back[0, 50]


def test_fortran_order_and_read_only_flags_survive():
    block = np.asfortranarray(np.stack([distinct(), distinct(prefix="other")], axis=1))  # (N, 2): `to_numpy()`'s layout
    block.flags.writeable = False
    assert written_fast(block) == ["fast", "fast"]
    back = round_trip({"b": block})["b"]
    assert back.flags.f_contiguous and not back.flags.c_contiguous and not back.flags.writeable
    assert back.tolist() == block.tolist()


@pytest.mark.parametrize("odd", [
    lambda: [1, 2],  # a mutable element: it may be shared, the memo sees to it
    lambda: Tag("a str subclass"),
    lambda: 7,
])
def test_anything_but_str_none_and_float_keeps_the_memo(odd):
    values = distinct()
    values[11] = odd()
    assert written_fast(values) == []
    back = round_trip({"v": values, "same": values[11]})
    assert type(back["v"][11]) is type(values[11]) and back["v"][11] == values[11]
    assert back["v"][11] is back["same"] or isinstance(values[11], int)


def test_small_arrays_and_short_rows_are_left_to_numpy():
    assert text_pickle.TextPickling().reduce(distinct(text_pickle.MIN_ELEMENTS - 1)) is None
    assert text_pickle.TextPickling().reduce(np.stack([distinct(20_000)] * 6).T.copy()) is None  # rows of 6
    assert text_pickle.TextPickling().reduce(np.arange(N)) is None


def test_pandas_frames_round_trip_with_their_text_shared():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"note": pd.Series(distinct(), dtype=object), "k": np.arange(N) % 7,
                          "city": pd.Series(np.array(["a", "b"], dtype=object)[np.arange(N) % 2], dtype=object)})
    head = frame.iloc[::3]
    back = round_trip({"frame": frame, "head": head})
    pd.testing.assert_frame_equal(back["frame"], frame)
    pd.testing.assert_frame_equal(back["head"], head)
    assert back["head"]["note"].iloc[2] is back["frame"]["note"].iloc[6]


def test_a_damaged_segment_fails_in_one_line():
    bad = [("fast", 5, pickle.dumps(["a", "b"]), None, [])]
    with pytest.raises(pickle.UnpicklingError, match="does not hold the strings written"):
        text_pickle.rebuild([], (5,), "C", True, bad)
    with pytest.raises(pickle.UnpicklingError, match=r"shape \(1, 2\) where \(2, 5\) was written"):
        text_pickle.rebuild([], (2, 5), "C", True, [("fast", 2, pickle.dumps(["a", "b"]), None, [])])
    sneaky = [("fast", 1, pickle.dumps([print]), None, [])]
    with pytest.raises(pickle.UnpicklingError, match="text segment names builtins.print"):
        text_pickle.rebuild([], (1,), "C", True, sneaky)


def _same(value):
    return value


class OnTheFly:
    """A value whose `__reduce__` makes a fresh array of new strings each time it is pickled."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __reduce__(self):
        return _same, (np.array([f"{self.prefix} {i}" for i in range(50_000)], dtype=object),)


def test_strings_of_an_array_made_on_the_fly_are_not_taken_for_later_ones():
    # Each array (and its strings) could be freed once written, and a later string get one of
    # their addresses: the writer holds what it compares pointers with (so does pickle's memo).
    back = round_trip({f"v{i}": OnTheFly(f"p{i}") for i in range(6)})
    for i in range(6):
        assert back[f"v{i}"].tolist() == [f"p{i} {j}" for j in range(50_000)]
