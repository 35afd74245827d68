"""Text columns: large object arrays of strings are hashed by content once, then trusted while their
element pointers stay the same objects (`StringMemo`); every in-place change is still seen."""

from __future__ import annotations

import gc

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

from colab_elastic.fingerprint import fingerprint  # noqa: E402
from colab_elastic.fingerprint_arrays import StringMemo  # noqa: E402

N = StringMemo.MIN_ELEMENTS + 5


def column(n: int = N, prefix: str = "row") -> np.ndarray:
    return np.array([f"{prefix} {i}" for i in range(n)], dtype=object)


def test_the_memo_gives_the_digest_a_fresh_walk_gives():
    memo = StringMemo()
    values = column()
    first = fingerprint(values, strings=memo)
    assert len(memo) == 1
    again = fingerprint(values, strings=memo)
    assert first.content == again.content == fingerprint(column()).content


@pytest.mark.parametrize("change", [
    lambda a: a.__setitem__(7, "row 7 changed"),
    lambda a: a.__setitem__(slice(None), a[::-1].copy()),
    lambda a: a.__setitem__(N - 1, None),
    lambda a: a.__setitem__(3, a[4]),  # another element's very object
])
def test_every_in_place_change_is_seen(change):
    memo = StringMemo()
    values = column()
    before = fingerprint(values, strings=memo).content
    change(values)
    assert fingerprint(values, strings=memo).content == fingerprint(values).content != before


def test_a_freed_string_address_taken_by_a_new_string_is_not_mistaken_for_the_old_one():
    # Without the memo's own references, `values[5] = None` frees "row 5"; the next string of the
    # same size is then likely to be allocated at its address, and equal pointers would lie.
    memo = StringMemo()
    values = column()
    before = fingerprint(values, strings=memo).content
    values[5] = None
    gc.collect()
    values[5] = "".join(["ROW", " 5"])  # built after the old one could have been freed
    assert fingerprint(values, strings=memo).content != before
    assert fingerprint(values, strings=memo).content == fingerprint(values).content


def test_a_dataframe_text_column_read_by_a_cell_is_not_hashed_again():
    memo = StringMemo()
    # Object dtype said outright: pandas 3 with pyarrow makes text columns Arrow-backed.
    frame = pd.DataFrame({"name": pd.Series(column(), dtype=object), "x": np.arange(N)})
    first = fingerprint(frame, strings=memo)
    frame.groupby("name").size()  # a read
    assert len(memo) == 1
    assert fingerprint(frame, strings=memo).content == first.content
    frame.loc[10, "name"] = "someone else"
    assert fingerprint(frame, strings=memo).content == fingerprint(frame).content != first.content


def test_strings_holding_the_separator_and_missing_values_hash_by_content():
    tricky = column()
    tricky[0], tricky[1] = "a\x00", "b"
    other = column()
    other[0], other[1] = "a", "\x00b"  # the same text once joined
    assert fingerprint(tricky).content != fingerprint(other).content
    with_missing = column()
    with_missing[2] = None
    nan_instead = column()
    nan_instead[2] = float("nan")
    assert fingerprint(with_missing).content == fingerprint(with_missing.copy()).content
    assert fingerprint(with_missing).content != fingerprint(column()).content
    assert fingerprint(nan_instead).content != fingerprint(column()).content


def test_a_mutable_element_makes_the_array_walked_not_trusted():
    memo = StringMemo()
    values = column()
    values[0] = ["a", "list"]
    before = fingerprint(values, strings=memo).content
    assert len(memo) == 0
    values[0].append("more")
    assert fingerprint(values, strings=memo).content != before


def test_the_memo_holds_at_most_its_limit_and_forgets_dead_arrays():
    memo = StringMemo(limit=2 * N)
    kept = [column(prefix=str(i)) for i in range(3)]
    for values in kept:
        fingerprint(values, strings=memo)
    assert len(memo) == 2  # the oldest went out
    del kept[:], values
    gc.collect()
    assert len(memo) == 0
