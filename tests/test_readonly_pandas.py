"""A DataFrame a cell only reads through pandas chains is not hashed after it; whatever a cell does
to it otherwise is seen, judged by pandas' own equality, not by our fingerprints."""

from __future__ import annotations

import warnings

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

from colab_elastic import readonly  # noqa: E402
from tests.cells import Cells as _Cells  # noqa: E402


@pytest.mark.parametrize("code, chained", [
    ("sales.describe()", True),
    ("by = sales.groupby('region')['revenue'].agg(['sum', 'mean'])", True),
    ("m = sales[sales['revenue'] > 1].revenue.mean()", True),
    ("summary = {'rows': len(sales), 'total': float(sales['revenue'].sum())}", True),
    ("top = sales.nlargest(n, 'revenue')", True),
    ("x = sales.loc[1:3, ['revenue']]", True),
    ("sales['revenue'] = 0", False),
    ("sales.revenue.clip(0, 1, inplace=True)", False),
    ("sales.groupby('region').apply(lambda g: g)", False),
    ("sales.assign(x=lambda d: 1)", False),
    ("sales.agg(np.sum)", False),
    ("sales.agg(config['funcs'])", False),
    ("helper(sales.head())", False),
    ("sales.head().values[0] = 1", False),
    ("for row in sales.itertuples():\n    pass", False),
    ("n = 2\ntop = sales.nlargest(n, 'revenue')", True),  # bound to a constant before it is handed on
    ("cols = ['revenue', 'units']\nx = sales[cols].sum()", True),
    ("top = sales.nlargest(n, 'revenue')\nn = 2", False),  # bound only after it is handed on
    ("n = helper()\ntop = sales.nlargest(n, 'revenue')", False),  # bound to what a call gave
    ("if c:\n    n = 2\ntop = sales.nlargest(n, 'revenue')", False),  # bound under a condition
    ("fs = ['sum']\nfs.append(f)\nr = sales.agg(fs)", False),  # changed between
    ("fs = ['sum']\nalso = fs\nr = sales.agg(fs)", False),  # reachable through another name
    ("fs = ['sum']\nbox.fill(fs)\nr = sales.agg(fs)", False),  # handed to what is no pandas read
    ("n = 2\nimport n\ntop = sales.nlargest(n, 'revenue')", False),
    ("match x:\n    case [f]:\n        r = sales.agg(f)", False),
    ("def f(d):\n    return 0\nr = sales.agg(f)", False),
    ("import f\nr = sales.agg(f)", False),
    ("def f():\n    return sales.sum()", False),
])
def test_chains_are_classified(code, chained):
    assert (readonly.uses(code)["sales"].calls is not None) == chained


def test_what_a_chain_hands_on_is_named_for_checking_when_the_cell_runs():
    assert readonly.uses("r = sales.agg(funcs + [f])")["sales"].handed == {"funcs", "f"}
    funcs = [len]
    assert not readonly.is_light(_sales(), readonly.uses("r = sales.agg(funcs)")["sales"], {"funcs": funcs})
    assert not readonly.is_light(_sales(), readonly.uses("r = sales.agg(d)")["sales"], {"d": {"x": [len]}})
    assert readonly.is_light(_sales(), readonly.uses("r = sales.agg(d)")["sales"], {"d": {"revenue": ["sum"]}})
    # A builtin type is a dtype; a builtin function, or a name the session rebound, is not vouched for.
    assert readonly.is_light(_sales(), readonly.uses("r = sales.astype(str)")["sales"], {})
    assert not readonly.is_light(_sales(), readonly.uses("r = sales.agg(print)")["sales"], {})
    assert not readonly.is_light(_sales(), readonly.uses("r = sales.astype(str)")["sales"], {"str": len})


def Cells(**values) -> _Cells:  # noqa: N802 - reads as the class it builds
    return _Cells(("sales",), **values)


def _sales() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"region": rng.choice(["north", "south", "east"], 200),
                         "revenue": rng.gamma(2.0, 3.0, 200), "units": rng.integers(0, 9, 200),
                         "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 90, 200), unit="D")})


LIGHT = [
    "sales.describe()",
    "by = sales.groupby('region')['revenue'].agg(['sum', 'mean', 'count'])",
    "by = sales.groupby(['region', 'units'])['revenue'].sum().unstack()",
    "m = sales[sales['revenue'] > 1].revenue.mean()",
    "summary = {'rows': len(sales), 'total': float(sales['revenue'].sum())}",
    "top = sales.nlargest(n, 'revenue')",
    "day = sales['when'].dt.day_name()",
    "p = sales.pivot_table(index='region', values='revenue', aggfunc='sum')",
    "x = sales.loc[sales['region'] == 'north', ['revenue']].to_numpy().sum()",
    "s = sales.sample(n, random_state=0)\ns['revenue'] = 0.0",
    "x = sales.groupby('region')['revenue'].sum()\nx[:] = 0.0",
    "labels = sales['units'].astype(str).str.zfill(3)",  # a builtin type handed as a dtype
    "cols = ['revenue', 'units']\nx = sales[cols].to_numpy(dtype=float)",  # constants bound in the cell
]
CHANGING = [
    "sales['revenue'] = 0.0",
    "sales.loc[0, 'revenue'] = -1.0",
    "sales.sort_values('revenue', inplace=True)",
    "sales.revenue.clip(0, 1, inplace=True)",
    "del sales['units']",
    "sales.update(sales[['revenue']] * 2)",
    "col = sales['revenue']\ncol[0] = -1.0",
    "top = sales.nlargest(3, 'revenue')\ntry:\n    top.columns.values[0] = 'zzz'\nexcept ValueError:\n    pass",
    "col = sales['revenue']\ncol *= 2",  # a view before copy-on-write (pandas 2), a copy after
    "col = sales['revenue'].to_numpy()\ntry:\n    col[0] = -5.0\nexcept ValueError:\n    pass",  # read-only under CoW
    "try:\n    sales['revenue'].values[0] = -5.0\nexcept ValueError:\n    pass",
    "def pick(d):\n    d.loc[:, 'revenue'] = 0.0\n    return ['revenue']\nx = sales[pick]",
    "def pick(d):\n    d.loc[:, 'revenue'] = 0.0\n    return 'revenue'",  # defines only; run below
    "y = sales[picker]",
    "sales.groupby('region').apply(lambda g: g.loc[:, 'revenue'].clip(0, 1, inplace=True))",
    "r = sales[['revenue']].agg(funcs)",  # a list of functions, run on the frame's own columns
    "r = sales[['revenue']].agg({'revenue': funcs[0]})",
    "fs = ['count']\nfs.append(funcs[1])\nr = sales.agg(fs)",  # constants, then a function
    "fs = ['count']\nbox.add(fs)\nr = sales.agg(fs)",  # `add` of a value that is not pandas'
]


class _Box:
    """Not pandas: its `add` (a name pandas reads have too) puts a writing function in a list."""

    def add(self, items):
        items.append(_doubling_numbers)


def _doubling_numbers(column):
    """`_doubling` for a frame's every column: only the numbers are written to."""
    return _doubling(column) if column.dtype.kind in "fi" else 0.0


def _picker(d):
    d.loc[:, "revenue"] = 0.0
    return ["revenue"]


def _doubling(column):
    """What a user may hand to `agg`: it writes into the column it is given (pandas 2 hands over a view)."""
    try:
        column.to_numpy()[:] *= 2
    except ValueError:  # read-only under copy-on-write
        pass
    return 0.0


@pytest.mark.parametrize("code", LIGHT + CHANGING)
def test_the_recorded_change_is_pandas_own_answer(code):
    cells = Cells(np=np, pd=pd, sales=_sales(), n=5, picker=_picker, funcs=[_doubling, _doubling_numbers], box=_Box())
    cells.run("z = 0")  # a first fingerprint of everything
    before = cells.ns["sales"].copy(deep=True)
    columns = list(before.columns)  # a deep copy may still share its axes
    cells.walks = 0
    writes = cells.run(code)
    after = cells.ns["sales"]
    changed = list(after.columns) != columns or not after.set_axis(columns, axis=1).equals(before.set_axis(columns, axis=1))
    assert ("sales" in writes) == changed
    if code in LIGHT:
        assert not cells.walks
        assert not changed


def test_a_frame_a_called_notebook_function_also_reads_is_walked():
    cells = Cells(pd=pd, sales=_sales())
    cells.run("def bump():\n    sales.loc[0, 'revenue'] = -1.0")
    cells.walks = 0
    assert "sales" in cells.run("m = sales['revenue'].mean()\nbump()")
    assert cells.walks


def test_a_column_read_as_an_attribute_is_light_unless_a_method_has_its_name():
    sales = _sales().rename(columns={"units": "count"})
    cells = Cells(sales=sales)
    cells.run("z = 0")
    cells.run("m = sales.revenue.max()")
    assert not cells.walks
    cells.walks = 0
    cells.run("c = sales.count")  # the method, not the column: not vouched for
    assert cells.walks


NOTEBOOK = [
    "import numpy as np\nimport pandas as pd\nimport matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt",
    "sales = pd.DataFrame({'region': np.array(['n', 's', 'e'])[np.arange(3000) % 3],\n"
    "                      'revenue': np.arange(3000, dtype=float)})",
    "by = sales.groupby('region')['revenue'].sum()",  # read through a chain: not hashed after
    "col = sales['revenue']\ncol[:5] = -1.0",  # a view before copy-on-write: sales changes too
    "top = sales.nlargest(3, 'revenue')\nshare = float(sales['revenue'].sum())",
    "fig, axes = plt.subplots(1, 2)\naxes[0].plot(by.to_numpy())",  # fig: covered by the axes' walk
    "axes[1].set_title('second')",  # fig changed through its axes
    "fig.suptitle('whole')",
]
# What the restored session must hold, computed by pandas and matplotlib here, not by our records.
EXPECTED = ("[sales['revenue'].head(6).tolist(), by.to_dict(), top.index.tolist(), share, "
            "[a.get_title() for a in fig.axes], fig._suptitle.get_text(), axes[0] is fig.axes[0], len(axes[0].lines)]")


@pytest.mark.kernel
def test_a_notebook_of_chains_views_and_figures_comes_back_as_it_was(tmp_path):
    from tests.kernels import roundtrip

    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 2 warns of the write through a view
        for cell in NOTEBOOK:
            exec(cell, namespace)
    expected = eval(EXPECTED, namespace)
    plt = namespace["plt"]
    plt.close("all")
    result = roundtrip(tmp_path, NOTEBOOK, env={"COLAB_ELASTIC_AUTO": "off"})
    try:
        # A figure's pickle changes when it is drawn: the figures are compared by what they show, below.
        assert {n: v for n, v in result.verdicts.items() if v != "same"}.keys() <= {"fig", "axes"}
        assert result.comparison["aliasing"]["same"], result.comparison["aliasing"]
        assert result.value(EXPECTED) == repr(expected)
    finally:
        result.kernel.close()
