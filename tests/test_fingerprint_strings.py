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


@pytest.fixture
def text_hashes(monkeypatch):
    """How many times a text column's strings were hashed by content."""
    import colab_elastic.fingerprint_arrays as arrays

    calls = []
    real = arrays._digest_strings

    def counting(*args):
        if args[1].size >= StringMemo.MIN_ELEMENTS:  # not column names
            calls.append(args[1].size)
        return real(*args)

    monkeypatch.setattr(arrays, "_digest_strings", counting)
    return calls


def test_a_cell_creating_a_text_column_hashes_pointers_and_a_checkpoint_its_text_once(text_hashes):
    # The recorder compares within this process: a new column costs a pointer hash, not a text
    # hash (~100 ms per 3M strings); the checkpoint's portable fingerprint hashes the text once.
    memo = StringMemo()
    values = column()
    in_process = fingerprint(values, strings=memo, portable=False)
    assert text_hashes == [] and not in_process.portable and in_process.pins
    assert fingerprint(values, strings=memo, portable=False) == in_process
    portable = fingerprint(values, strings=memo)
    assert portable.portable and portable.content == fingerprint(column()).content != in_process.content
    assert fingerprint(values, strings=memo).content == portable.content
    assert text_hashes == [N, N]  # once with the memo, once for the fresh comparison above


@pytest.mark.parametrize("change", [
    lambda a: a.__setitem__(7, "row 7 changed"),
    lambda a: a.__setitem__(slice(None), a[::-1].copy()),
    lambda a: a.__setitem__(N - 1, None),
    lambda a: a.__setitem__(3, a[4]),
])
def test_every_in_place_change_is_seen_by_pointers_too(change):
    memo = StringMemo()
    values = column()
    before = fingerprint(values, strings=memo, portable=False).content
    change(values)
    assert fingerprint(values, strings=memo, portable=False).content != before


def test_the_pins_of_a_fingerprint_outlive_the_memo(text_hashes):
    # The memo may drop an array (its limit) while a recorded fingerprint still stands for it:
    # the fingerprint's own pins keep "row 5" alive, so a new string cannot take its address.
    memo = StringMemo(limit=N)
    values = column()
    before = fingerprint(values, strings=memo, portable=False)
    for i in range(2):
        fingerprint(column(prefix=f"other {i}"), strings=memo, portable=False)
    assert memo.find(values) is None  # dropped
    values[5] = None
    gc.collect()
    values[5] = "".join(["row", " 5"])  # "row 5" again, a new object
    after = fingerprint(values, strings=memo, portable=False)
    assert values[5] == "row 5" and after.content != before.content  # other objects: not trusted


def test_a_copy_holding_the_same_strings_in_order_is_found_by_its_pointers(text_hashes):
    # A merge that keeps the left rows in order gives a new array of the very same strings.
    memo = StringMemo()
    frame = pd.DataFrame({"name": pd.Series(column(), dtype=object), "k": np.arange(N) % 7})
    first = fingerprint(frame, strings=memo)
    merged = frame.merge(pd.DataFrame({"k": range(7), "w": range(7)}), on="k", how="left")
    assert merged["name"].to_numpy() is not frame["name"].to_numpy()
    assert fingerprint(merged[["name"]], strings=memo).content == fingerprint(frame[["name"]]).content
    assert text_hashes == [N, N]  # the frame's, then only the fresh comparison's
    assert first.content == fingerprint(frame, strings=memo).content


def test_a_recorder_checkpoints_portable_fingerprints_and_compares_cells_in_process(text_hashes):
    from colab_elastic.history import HistoryGraph
    from colab_elastic.recorder import Recorder

    ns = {"names": column()}
    recorder = Recorder(ns, HistoryGraph())
    cell = recorder.fingerprint("names", fresh=True)
    assert not cell.portable and text_hashes == []
    recorded = recorder.fingerprint("names", portable=True)
    assert recorded.portable and recorded.content == fingerprint(column()).content
    assert recorder.fingerprint("names", portable=True) is recorded  # cached while unchanged
    assert text_hashes == [N, N]


def test_arrow_backed_columns_hash_alike_in_any_chunks_and_are_not_copied_again(monkeypatch):
    # pandas' own __getstate__ copies every chunk of an Arrow column into one, each time: a
    # remembered digest of the very same (immutable) Arrow array is used instead.
    pa = pytest.importorskip("pyarrow")
    import pickle

    one = pd.DataFrame({"name": pd.Series(column(), dtype="string[pyarrow]"), "x": np.arange(N)})
    two = pd.concat([one.iloc[: N // 2], one.iloc[N // 2:]])  # the same column in two chunks
    assert two["name"].array._pa_array.num_chunks == 2
    memo = StringMemo()
    assert fingerprint(two, strings=memo).content == fingerprint(pickle.loads(pickle.dumps(two))).content
    import colab_elastic.fingerprint as walk

    arrow_walks = []
    real = walk.fingerprint

    def counting(value, **kwargs):
        if isinstance(value, (pa.Array, pa.ChunkedArray)) and len(value) == N:  # not the column names
            arrow_walks.append(value)
        return real(value, **kwargs)

    monkeypatch.setattr(walk, "fingerprint", counting)
    again = fingerprint(two, strings=memo)
    assert again.content == fingerprint(two).content and len(arrow_walks) == 1  # only the fresh walk's
    two.iloc[3, 0] = "changed"
    assert fingerprint(two, strings=memo).content == fingerprint(two).content != again.content



def test_a_loaded_arrow_column_is_digested_as_loaded_not_combined_again():
    """pandas pickles an Arrow column with its chunks combined, and wraps that one array again
    on load: the restore's verification digests that array, instead of combining the column
    into a fresh copy (every text column, in memory that must fault in), and finds the
    digest recorded before the checkpoint."""
    pa = pytest.importorskip("pyarrow")
    one = pd.DataFrame({"name": pd.Series(column(), dtype="string[pyarrow]"), "x": np.arange(N)})
    two = pd.concat([one.iloc[: N // 2], one.iloc[N // 2:]])  # two chunks: combining copies them
    recorded = fingerprint(two).content
    memo = StringMemo()
    loaded = _round_trip({"t": two}, None, memo)["t"]
    pd.testing.assert_frame_equal(loaded, two)  # the values, by pandas' own equality
    data = loaded["name"].array._pa_array
    whole = memo.arrow_whole(data)
    assert isinstance(whole, pa.Array) and data.num_chunks == 1
    assert [b.address for b in whole.buffers() if b] == [b.address for b in data.chunk(0).buffers() if b]
    assert fingerprint(loaded, strings=memo).content == recorded
    assert memo.arrow_whole(two["name"].array._pa_array) is None  # not made by a load: combined
    loaded.iloc[3, 0] = "changed"  # a new Arrow array: digested afresh
    assert fingerprint(loaded, strings=memo).content == fingerprint(loaded).content != recorded


# A checkpoint's blob carries the digests of its text columns --------------------------------
def _round_trip(values: dict, memo: StringMemo | None, into: StringMemo | None) -> dict:
    import io

    from colab_elastic.serialize import dump_group, load_group

    buffer = io.BytesIO()
    dump_group(values, buffer, {}, memo)
    return load_group(buffer.getvalue(), {}, into)


def test_a_loaded_text_column_is_vouched_for_by_the_digest_its_blob_carried(text_hashes):
    memo, loaded_memo = StringMemo(), StringMemo()
    frame = pd.DataFrame({"note": pd.Series(column(), dtype=object), "k": np.arange(N)})
    expected = fingerprint(frame).content  # no memo: the text hashed from scratch
    assert fingerprint(frame, strings=memo).content == expected  # as a checkpoint does
    text_hashes.clear()
    loaded = _round_trip({"frame": frame}, memo, loaded_memo)["frame"]
    pd.testing.assert_frame_equal(loaded, frame)
    assert loaded["note"].to_numpy()[5] is not frame["note"].to_numpy()[5]  # really unpickled
    assert fingerprint(loaded, strings=loaded_memo).content == expected
    assert text_hashes == []  # the carried digest, found by the loaded array's identity
    assert fingerprint(loaded).content == expected and text_hashes == [N]  # and it is the right one


def test_a_column_written_after_its_checkpoint_hash_carries_no_digest(text_hashes):
    memo, loaded_memo = StringMemo(), StringMemo()
    values = column()
    fingerprint(values, strings=memo)  # hashed, as a checkpoint would
    values[7] = "row 7 changed"  # pointers no longer those the digest was computed from
    text_hashes.clear()
    loaded = _round_trip({"values": values}, memo, loaded_memo)["values"]
    assert loaded_memo.find(loaded) is None and text_hashes == []
    assert fingerprint(loaded, strings=loaded_memo).content == fingerprint(values.copy()).content
    assert loaded[7] == "row 7 changed"


def test_a_blob_loads_alike_with_or_without_a_memo_and_adoption_checks_the_kind():
    memo = StringMemo()
    values = column()
    fingerprint(values, strings=memo)
    plain = _round_trip({"values": values}, memo, None)["values"]
    assert plain.dtype == object and list(plain) == list(values)
    assert _round_trip({"values": values}, None, StringMemo())["values"].tolist() == values.tolist()
    mixed = column()
    mixed[3] = 3.5  # not text: its kind says so, and no digest of text may vouch for it
    other = StringMemo()
    other.adopt(mixed, "string", b"joined" + bytes(16))
    assert other.find(mixed) is None


def test_a_repeating_column_carries_its_digest_too(text_hashes):
    # Low cardinality: its objects keep pickle's memo, and its digest rides along all the same.
    memo, loaded_memo = StringMemo(), StringMemo()
    labels = np.array(["north", "south", "east"], dtype=object)[np.arange(N) % 3]
    expected = fingerprint(labels).content
    fingerprint(labels, strings=memo)
    text_hashes.clear()
    loaded = _round_trip({"labels": labels}, memo, loaded_memo)["labels"]
    assert loaded.tolist() == labels.tolist() and loaded[0] is loaded[3]
    assert fingerprint(loaded, strings=loaded_memo).content == expected and text_hashes == []


@pytest.fixture
def kind_checks(monkeypatch):
    """How many large arrays had every element's type checked (`_string_kind`)."""
    import colab_elastic.fingerprint_arrays as arrays

    calls = []
    real = arrays._string_kind

    def counting(pd_module, flat):
        if flat.size >= StringMemo.MIN_ELEMENTS:
            calls.append(flat.size)
        return real(pd_module, flat)

    monkeypatch.setattr(arrays, "_string_kind", counting)
    return calls


def block(*prefixes: str) -> np.ndarray:
    """A 2-d object block, one text column a row, as pandas 2 and 3 hold them."""
    return np.stack([column(prefix=p) for p in prefixes])


def test_rows_left_of_a_block_a_cell_split_are_its_strings_and_cost_no_type_check(kind_checks, text_hashes):
    # `df['date'] = pd.to_datetime(df['date'])` leaves the frame's other text columns as a view
    # of the old block: the same objects, which the old block's entry pinned.
    memo = StringMemo()
    old = block("date", "channel", "note")
    fingerprint(old, strings=memo, portable=False)
    assert kind_checks == [3 * N]
    rest = old[1:3]
    assert rest.base is old
    in_process = fingerprint(rest, strings=memo, portable=False)
    assert kind_checks == [3 * N] and text_hashes == []
    # Equal to what a memo that never saw the block makes of the same objects, and pinned.
    assert in_process.content == fingerprint(rest.copy(), strings=StringMemo(), portable=False).content
    # Pinned by a copy of their own: the old block's copy, and "date" with it, can go.
    assert in_process.pins and not any(np.shares_memory(p, memo.find(old).pinned) for p in in_process.pins)
    # The portable fingerprint hashes their text as any other process would.
    assert fingerprint(rest, strings=memo).content == fingerprint(block("channel", "note")).content


@pytest.mark.parametrize("change", [
    lambda rest, old: rest.__setitem__((0, 7), "channel 7 changed"),
    lambda rest, old: rest.__setitem__((1, N - 1), None),
    lambda rest, old: rest.__setitem__((0, 3), rest[0, 4]),  # another element's very object
])
def test_a_change_to_the_rows_after_the_split_is_seen(change, kind_checks):
    memo = StringMemo()
    old = block("date", "channel", "note")
    fingerprint(old, strings=memo, portable=False)
    rest = old[1:3]
    change(rest, old)
    changed = fingerprint(rest, strings=memo, portable=False)
    assert kind_checks == [3 * N, 2 * N]  # not vouched for: its elements were checked again
    assert changed.content == fingerprint(rest.copy(), strings=StringMemo(), portable=False).content


def test_rows_of_a_block_with_missing_values_are_checked_again(kind_checks):
    # The old block's kind says "a str or missing" for the whole; its part may hold no missing
    # value, and the kind decides how the text is hashed: it is taken anew.
    memo = StringMemo()
    old = block("date", "channel")
    old[1, 5] = None
    fingerprint(old, strings=memo, portable=False)
    rest = old[1:2]
    fresh = block("channel")
    fresh[0, 5] = None
    assert fingerprint(rest, strings=memo).content == fingerprint(fresh).content
    assert kind_checks[:2] == [2 * N, N]


def test_a_frame_whose_text_column_a_cell_replaced_keeps_the_others_without_a_type_check(kind_checks):
    memo = StringMemo()
    frame = pd.DataFrame({"date": pd.Series(column(prefix="2024-01"), dtype=object),
                          "channel": pd.Series(column(prefix="web"), dtype=object), "units": np.arange(N)})
    fingerprint(frame, strings=memo, portable=False)
    checked = len(kind_checks)
    frame["date"] = np.arange(N) % 7  # pandas splits the text block: "channel" stays a view
    after = fingerprint(frame, strings=memo, portable=False)
    assert len(kind_checks) == checked
    assert after.content == fingerprint(frame, strings=StringMemo(), portable=False).content
    frame.loc[3, "channel"] = "changed"
    assert fingerprint(frame, strings=memo, portable=False).content != after.content


@pytest.mark.parametrize("make, alike", [
    (lambda: {"text": column(), "n": 3}, False),  # the recorder hashes that column by pointers
    (lambda: {"text": column(1000), "n": 3}, True),  # small: hashed by text in either walk
    (lambda: {frozenset({("a", 1)}), frozenset({("b", 2)})}, True),
    (lambda: np.arange(N, dtype=float), True),
])
def test_a_portable_fingerprint_says_whether_it_is_the_recorders_too(make, alike):
    """What a restore's verification hands the recorder as its own cache (`as_in_process`) must
    be what the recorder's walk gives: else the first cell reading it records a change."""
    memo = StringMemo()
    value = make()
    portable = fingerprint(value, strings=memo)
    in_process = fingerprint(value, strings=memo, portable=False)
    assert portable.as_in_process is alike
    assert (portable.content == in_process.content) is alike
