"""A co-variable group to bytes and back, with notebook functions and classes resolved by name."""

from __future__ import annotations

import io
import math
import pickle

import pytest

from colab_elastic.serialize import dump_group, load_group, serialized_size


def notebook(source: str = "") -> dict:
    """A fresh namespace standing in for the shell's `user_ns`, with `source` run in it."""
    namespace: dict = {"__name__": "__main__"}
    exec(source, namespace)
    return namespace


def round_trip(values: dict, namespace: dict, target: dict | None = None) -> dict:
    buffer = io.BytesIO()
    dump_group(values, buffer, namespace)
    return load_group(buffer.getvalue(), namespace if target is None else target)


def test_shared_objects_stay_shared():
    rows = [[1, 2], [3, 4]]
    values = {"rows": rows, "alias": rows, "index": {"k": rows, "first": rows[0]}}
    loaded = round_trip(values, notebook())
    assert loaded == values
    assert loaded["alias"] is loaded["rows"]
    assert loaded["index"]["k"] is loaded["rows"]
    assert loaded["index"]["first"] is loaded["rows"][0]
    assert loaded["rows"] is not rows


def test_notebook_function_comes_back_bound_to_the_new_namespace():
    old = notebook("SCALE = 2\ndef scaled(v, k=1, *, extra=0):\n    'Multiply.'\n    return v * SCALE * k + extra\n")
    new = notebook("SCALE = 10\n")
    scaled = round_trip({"scaled": old["scaled"]}, old, new)["scaled"]
    assert scaled.__globals__ is new
    assert scaled(3) == 30  # SCALE from the restoring namespace
    new["SCALE"] = 100
    assert scaled(1) == 100  # and it keeps reading it live
    assert scaled(1, 2, extra=5) == 205
    assert (scaled.__name__, scaled.__doc__, scaled.__module__) == ("scaled", "Multiply.", "__main__")


def test_notebook_lambda_round_trips():
    old = notebook("OFFSET = 1\nshift = lambda v: v + OFFSET\n")
    shift = round_trip({"shift": old["shift"]}, old, notebook("OFFSET = 5\n"))["shift"]
    assert shift(1) == 6


def test_closure_keeps_its_captured_values_and_reads_new_globals():
    old = notebook(
        "BASE = 0\n"
        "def make_adder(n):\n"
        "    def add(v):\n"
        "        return v + n + BASE\n"
        "    return add\n"
        "add3 = make_adder(3)\n"
    )
    add3 = round_trip({"add3": old["add3"]}, old, notebook("BASE = 100\n"))["add3"]
    assert add3(1) == 104


def test_function_attributes_and_defaults_that_are_shared_values_stay_shared():
    old = notebook("cache = {}\ndef remember(k, store=cache):\n    store[k] = 1\n    return store\n")
    old["remember"].calls = 3
    loaded = round_trip({"remember": old["remember"], "cache": old["cache"]}, old, notebook())
    assert loaded["remember"].calls == 3
    assert loaded["remember"]("x") is loaded["cache"]


def test_function_defined_elsewhere_is_pickled_by_reference():
    loaded = round_trip({"sqrt": math.sqrt, "dumps": pickle.dumps}, notebook())
    assert loaded["sqrt"] is math.sqrt
    assert loaded["dumps"] is pickle.dumps


def _class_in_main(name: str) -> type:
    """A class as a notebook cell would define it: its module is `__main__`."""
    return type(name, (), {"__module__": "__main__", "__init__": lambda self, x: setattr(self, "x", x)})


def test_notebook_class_instance_resolves_its_class_in_the_target_namespace():
    Point = _class_in_main("Point")
    old = notebook()
    old["Point"] = Point
    values = {"p": Point(1), "cls": Point}

    same = round_trip(values, old, old)
    assert type(same["p"]) is Point and same["p"].x == 1
    assert same["cls"] is Point

    # A restoring session reran the class's defining cell: a new class object, same name.
    NewPoint = _class_in_main("Point")
    target = notebook()
    target["Point"] = NewPoint
    moved = round_trip(values, old, target)
    assert type(moved["p"]) is NewPoint
    assert isinstance(moved["p"], target["Point"])
    assert moved["cls"] is NewPoint


def test_class_not_yet_defined_in_the_target_namespace_fails_to_load():
    Point = _class_in_main("Point")
    old = notebook()
    old["Point"] = Point
    buffer = io.BytesIO()
    dump_group({"p": Point(1)}, buffer, old)
    with pytest.raises(pickle.UnpicklingError, match="Point"):
        load_group(buffer.getvalue(), notebook())


def test_instance_of_a_redefined_class_does_not_pickle():
    Point = _class_in_main("Point")
    old = notebook()
    old["Point"] = Point
    stale = Point(1)
    old["Point"] = _class_in_main("Point")  # the cell defining Point was run again
    with pytest.raises(pickle.PicklingError, match="redefined"):
        dump_group({"stale": stale}, io.BytesIO(), old)


def test_modules_are_stored_by_name():
    import collections.abc

    loaded = round_trip({"m": math, "abc": collections.abc}, notebook())
    assert loaded["m"] is math
    assert loaded["abc"] is collections.abc


def test_serialized_size_equals_the_bytes_dump_group_writes():
    np = pytest.importorskip("numpy")
    ns = notebook("def f(v):\n    return v\n")
    values = {
        "big": np.arange(200_000, dtype="float64"),  # large enough to be written out of band
        "text": "x" * 10_000,
        "f": ns["f"],
        "nested": {"a": [1, 2, 3]},
    }
    buffer = io.BytesIO()
    dump_group(values, buffer, ns)
    assert serialized_size(values, ns) == len(buffer.getvalue())
    assert len(buffer.getvalue()) > values["big"].nbytes


def test_one_array_under_two_names_stays_one_array():
    np = pytest.importorskip("numpy")
    base = np.arange(10.0)
    loaded = round_trip({"base": base, "same": base}, notebook())
    assert loaded["same"] is loaded["base"]
    np.testing.assert_array_equal(loaded["base"], base)


def test_the_base_of_shared_memory_comes_back_owning_it():
    np = pytest.importorskip("numpy")
    base = np.arange(10.0)
    fortran = np.asfortranarray(np.ones((3, 4)))
    loaded = round_trip({"base": base, "view": base[2:5], "fortran": fortran, "column": fortran[:, 1]}, notebook())
    assert loaded["base"].flags.owndata and loaded["view"].base is loaded["base"]
    assert loaded["fortran"].flags.owndata and loaded["fortran"].flags.f_contiguous
    assert loaded["column"].base is loaded["fortran"]
    loaded["view"][:] = -1
    np.testing.assert_array_equal(loaded["base"][2:5], [-1, -1, -1])


def test_the_builtins_namespace_is_stored_by_reference():
    import builtins

    filled: dict = {}
    exec("a = [1]", filled)
    loaded = round_trip({"filled": filled, "other": [builtins.__dict__]}, notebook())
    assert loaded["filled"]["__builtins__"] is builtins.__dict__
    assert loaded["other"][0] is builtins.__dict__
    assert loaded["filled"]["a"] == [1]


def test_blob_that_is_not_a_group_is_rejected():
    with pytest.raises(pickle.UnpicklingError, match="group"):
        load_group(pickle.dumps([1, 2]), notebook())


def test_what_the_c_pickler_refuses_goes_to_dill_object_by_object():
    old = notebook(
        "import threading, types\nK = 1\n"
        "def make():\n    class Local:\n        def __init__(self, v):\n            self.v = v\n"
        "        def get(self):\n            return self.v + K\n    return Local\n"
        "class Holder:\n    pass\n"
        "obj = make()(3)\nproxy = types.MappingProxyType({'a': [1]})\n"
        "holder = Holder()\nholder.lock = threading.Lock()\nholder.rows = [1, 2]\nholder.lock.acquire()\n")
    values = {n: old[n] for n in ("obj", "proxy", "holder")}
    new = notebook("K = 10\nclass Holder:\n    pass\n")
    loaded = round_trip(values, old, new)
    assert loaded["obj"].get() == 13  # a local class by value, its method reads the new globals
    assert dict(loaded["proxy"]) == {"a": [1]}
    assert isinstance(loaded["holder"], new["Holder"]) and loaded["holder"].rows == [1, 2]
    assert loaded["holder"].lock.locked()


def test_what_dill_refuses_too_still_fails():
    namespace = notebook("def count():\n    yield 1\nclass Box:\n    pass\nbox = Box()\nbox.gen = count()\n")
    with pytest.raises((TypeError, pickle.PicklingError)):
        dump_group({"box": namespace["box"]}, io.BytesIO(), namespace)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mpmath 1.4 warns when pickle's module scan touches it
def test_what_dill_refuses_goes_to_cloudpickle():
    sympy = pytest.importorskip("sympy")
    namespace = notebook()
    x = sympy.Symbol("x")
    namespace["square"] = sympy.lambdify(x, sympy.besselj(0, x) + x**2)  # dill fails on scipy's ufuncs
    loaded = round_trip({"square": namespace["square"]}, namespace)
    assert loaded["square"](3.0) == namespace["square"](3.0)


# Large buffers out of the pickle ---------------------------------------------------------------
def test_large_buffers_follow_the_pickle_and_come_back_writable_and_equal():
    # Arrays of 1 MB or more are written after the pickle and read into memory numpy allocates
    # (3x faster than the pickle's own bytearray for 1 GB: huge pages): a round trip keeps
    # values, memory order, shared memory and writability.
    np = pytest.importorskip("numpy")
    big = np.arange(300_000, dtype=np.float64)  # 2.4 MB
    fortran = np.asfortranarray(np.arange(400_000.0).reshape(1000, 400))
    base = np.zeros((600, 600))
    values = {"big": big, "fortran": fortran, "small": np.arange(5), "base": base, "row": base[3],
              "words": np.array(["a", "b"], dtype=object)}
    buffer = io.BytesIO()
    dump_group(values, buffer, notebook())
    blob = buffer.getvalue()
    assert blob.count(big.tobytes()) == 1 and len(blob) < 2 * (big.nbytes + fortran.nbytes + base.nbytes)
    for source in (blob, io.BytesIO(blob)):
        loaded = load_group(source, notebook())
        for name in ("big", "fortran", "small", "base", "row"):
            assert np.array_equal(loaded[name], values[name]) and loaded[name].flags.writeable, name
        assert loaded["fortran"].flags.f_contiguous and list(loaded["words"]) == ["a", "b"]
        loaded["base"][3, 0] = 7.0
        assert loaded["row"][0] == 7.0  # still a view of its base
    assert serialized_size(values, notebook()) == len(blob)


def test_a_blob_written_as_a_bare_pickle_still_loads():
    np = pytest.importorskip("numpy")
    old = pickle.dumps({"big": np.arange(300_000.0), "n": 3}, protocol=5)
    loaded = load_group(io.BytesIO(old), notebook())
    assert loaded["n"] == 3 and np.array_equal(loaded["big"], np.arange(300_000.0))


@pytest.mark.parametrize("damage", ["huge length", "cut inside a buffer", "cut inside the pickle"])
def test_a_damaged_frame_fails_in_one_line_without_allocating_it(damage):
    np = pytest.importorskip("numpy")
    big = np.arange(300_000.0)
    buffer = io.BytesIO()
    dump_group({"big": big, "after": list(range(50_000))}, buffer, notebook())
    blob = bytearray(buffer.getvalue())
    at = blob.find(big.tobytes()[:64])  # the buffer, after its 8-byte length
    if damage == "huge length":
        blob[at - 8:at] = (1 << 60).to_bytes(8, "little")
    elif damage == "cut inside a buffer":
        blob = blob[:at + 1000]
    else:
        blob = blob[:-100]
    with pytest.raises(pickle.UnpicklingError) as failure:
        load_group(bytes(blob), notebook())
    assert "\n" not in str(failure.value)


def test_many_buffers_between_objects_come_back_in_their_places():
    # Buffers are written after the pickle frame that asks for them: several in one frame,
    # one at the very end, and large in-band payloads between them.
    np = pytest.importorskip("numpy")
    values = {f"a{i}": np.full(140_000 + i, float(i)) for i in range(6)}
    values.update(blob=b"x" * (2 << 20), words=["w"] * 1000, tiny=np.arange(3), last=np.ones(200_000))
    loaded = round_trip(values, notebook())
    for name, value in values.items():
        assert (np.array_equal(loaded[name], value) if isinstance(value, np.ndarray) else loaded[name] == value), name


@pytest.mark.parametrize("seed", range(12))
def test_random_mixes_of_buffers_and_large_payloads_round_trip(seed):
    # Large in-band payloads (bytes, str) are written outside the pickle's frames; buffers
    # must still land right after the frame that asked for them.
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(seed)
    values = {}
    for i in range(int(rng.integers(3, 12))):
        kind = rng.integers(0, 5)
        size = int(rng.choice([10, 70_000, 140_000, 300_000]))
        values[f"v{i}"] = (np.arange(size, dtype=np.float64) + i if kind == 0 else
                           bytes(rng.integers(0, 255, size, dtype=np.uint8)) if kind == 1 else
                           "s" * size if kind == 2 else
                           [np.full(size, i), {"k": b"z" * size}] if kind == 3 else
                           np.asfortranarray(np.ones((size // 100 + 1, 100)) * i))
    loaded = round_trip(values, notebook())
    assert pickle.dumps(loaded, protocol=4) == pickle.dumps(values, protocol=4)
