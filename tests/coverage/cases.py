"""The coverage cases: classes notebooks hold, how each is made and changed in place.

`VAR` in a cell stands for the case's variable (`c_<id>`; `VAR_x` for a helper of its own),
so cases share kernels: each `group` runs in one kernel pair. `create` cells make the value,
`change` cells change it in place (none for an immutable value), `look` only reads it and
must not be recorded as changing it. `state` (an expression of `v`) is what two values are
compared by when the library has no equality of its own that fits (else probe.same). Cases
must be deterministic: the runner rebuilds each value from its cells to compare with.
`full` cases need packages of the `coverage-full` extra and run under `-m coverage_full`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    id: str
    library: str  # the distribution whose version the table shows ("python" for the standard library)
    cls: str
    imports: str
    create: tuple[str, ...]
    change: tuple[str, ...] = ()
    state: str | None = None
    group: str = ""
    full: bool = False
    look_code: str = ""
    note: str = ""  # what the table should say whatever happens

    @property
    def var(self) -> str:
        return f"c_{self.id}"

    def sub(self, code: str) -> str:
        return code.replace("VAR", self.var)

    @property
    def look(self) -> str:
        return self.sub(self.look_code or "print(repr(VAR)[:40])")

    @property
    def rebuild(self) -> list[str]:
        return [self.sub(code) for code in (self.imports, *self.create, *self.change) if code]


CASES: list[Case] = []


def group(name: str, library: str, imports: str, *, full: bool = False):
    """A function adding cases of one library to one kernel group."""
    def add(id: str, cls: str, create: str | tuple[str, ...], change: str | tuple[str, ...] = (),
            state: str | None = None, *, lib: str | None = None, look: str = "", note: str = "",
            extra: str = "") -> None:
        case = Case(id, lib or library, cls, "\n".join(x for x in (imports, extra) if x),
                    (create,) if isinstance(create, str) else tuple(create),
                    (change,) if isinstance(change, str) else tuple(change), state, name, full, look, note)
        CASES.append(Case(**{**case.__dict__, "create": tuple(case.sub(c) for c in case.create),
                             "change": tuple(case.sub(c) for c in case.change), "imports": case.sub(case.imports)}))
    return add


# --- the standard library ------------------------------------------------------------------
std = group("stdlib", "python", "")
std("list", "list", "VAR = [1, [2, 3]]", "VAR[1].append(4)")
std("dict", "dict", "VAR = {'a': 1, 'b': [1]}", "VAR['b'].append(2)")
std("set", "set", "VAR = {1, 2}", "VAR.add(3)")
std("frozenset", "frozenset", "VAR = frozenset({1, 2})")
std("tuple", "tuple", "VAR = (1, 'a', None)")
std("tuple_of_list", "tuple (holding a list)", "VAR = (1, [2])", "VAR[1].append(3)")
std("bytearray", "bytearray", "VAR = bytearray(b'abc')", "VAR[0] = 65")
std("bytes", "bytes", "VAR = b'\\x00\\xff'")
std("str", "str", "VAR = 'héllo'")
std("int", "int", "VAR = 2 ** 100")
std("complex", "complex", "VAR = 1 + 2j")
std("range", "range", "VAR = range(2, 20, 3)")
std("slice", "slice", "VAR = slice(1, 10, 2)")
std("deque", "collections.deque", "VAR = collections.deque([1, 2], maxlen=5)", "VAR.appendleft(0)", extra="import collections")
std("ordereddict", "collections.OrderedDict", "VAR = collections.OrderedDict(a=1, b=2)", "VAR.move_to_end('a')", extra="import collections")
std("defaultdict", "collections.defaultdict", "VAR = collections.defaultdict(list)", "VAR['k'].append(1)",
    state="(dict(v), v.default_factory)", extra="import collections")
std("counter", "collections.Counter", "VAR = collections.Counter('abracadabra')", "VAR.update('zz')", extra="import collections")
std("chainmap", "collections.ChainMap", "VAR = collections.ChainMap({'a': 1}, {'b': 2})", "VAR['c'] = 3",
    state="v.maps", extra="import collections")
std("namedtuple", "collections.namedtuple (notebook)", ("VAR_P = collections.namedtuple('VAR_P', 'x y')", "VAR = VAR_P(1, 2)"),
    extra="import collections")
std("array", "array.array", "VAR = array.array('d', [1.5, 2.5])", "VAR.append(3.5)", extra="import array")
std("heap", "list used by heapq", "VAR = [5, 1, 4]\nheapq.heapify(VAR)", "heapq.heappush(VAR, 0)", extra="import heapq")
std("dataclass", "dataclass (notebook)", ("@dataclasses.dataclass\nclass VAR_D:\n    x: int\n    tags: list", "VAR = VAR_D(1, ['a'])"),
    "VAR.tags.append('b')\nVAR.x += 1", extra="import dataclasses")
std("frozen_dataclass", "frozen dataclass (notebook)",
    ("@dataclasses.dataclass(frozen=True)\nclass VAR_F:\n    x: int", "VAR = VAR_F(3)"), extra="import dataclasses")
std("slots_class", "class with __slots__ (notebook)",
    ("class VAR_S:\n    __slots__ = ('a', 'b')\n    def __init__(self):\n        self.a, self.b = 1, [2]", "VAR = VAR_S()"),
    "VAR.b.append(3)")
std("plain_class", "plain class (notebook)",
    ("class VAR_C:\n    def __init__(self):\n        self.items = []\n    def add(self, x):\n        self.items.append(x)", "VAR = VAR_C()"),
    "VAR.add(1)")
std("class_attr", "class attribute (notebook)",
    "class VAR:\n    registry = []", "VAR.registry.append('x')", state="v.registry")
std("enum", "enum.Enum (notebook)", ("class VAR_E(enum.Enum):\n    RED = 1\n    BLUE = 2", "VAR = VAR_E.BLUE"), extra="import enum")
std("intflag", "enum.IntFlag", "VAR = re.IGNORECASE | re.MULTILINE", extra="import re")
std("datetime", "datetime.datetime", "VAR = datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.timezone.utc)", extra="import datetime")
std("date", "datetime.date", "VAR = datetime.date(2024, 1, 1)", extra="import datetime")
std("timedelta", "datetime.timedelta", "VAR = datetime.timedelta(days=2, microseconds=5)", extra="import datetime")
std("zoneinfo", "zoneinfo.ZoneInfo", "VAR = datetime.datetime(2024, 6, 1, tzinfo=zoneinfo.ZoneInfo('Europe/Paris'))",
    extra="import datetime, zoneinfo")
std("decimal", "decimal.Decimal", "VAR = decimal.Decimal('1.10')", extra="import decimal")
std("fraction", "fractions.Fraction", "VAR = fractions.Fraction(3, 7)", extra="import fractions")
std("uuid", "uuid.UUID", "VAR = uuid.UUID(int=12345)", extra="import uuid")
std("path", "pathlib.Path", "VAR = pathlib.Path('data') / 'x.csv'", extra="import pathlib")
std("regex", "re.Pattern", "VAR = re.compile(r'(\\d+)-(\\w+)', re.I)", extra="import re")
std("match", "re.Match", "VAR = re.match(r'(\\d+)', '42abc')", state="(v.group(0), v.span(), v.re.pattern)", extra="import re")
std("function", "function (notebook)", "K_VAR = 3\ndef VAR(x):\n    return x * K_VAR", state="v(2)")
std("lambda", "lambda (notebook)", "VAR = lambda x: x + 1", state="v(1)")
std("closure", "closure (notebook)", ("def VAR_make(n):\n    def add(x):\n        return x + n\n    return add", "VAR = VAR_make(5)"),
    state="v(1)")
std("closure_state", "closure over a mutable cell (notebook)",
    ("def VAR_counter():\n    seen = []\n    def note(x):\n        seen.append(x)\n        return len(seen)\n    return note", "VAR = VAR_counter()"),
    "VAR('a')", state="v.__closure__[0].cell_contents")
std("partial", "functools.partial", "VAR = functools.partial(int, base=2)", state="v('101')", extra="import functools")
std("bound_method", "bound method (notebook object)",
    ("class VAR_A:\n    def __init__(self):\n        self.n = 1\n    def get(self):\n        return self.n", "VAR = VAR_A().get"),
    "VAR.__self__.n = 7", state="v()")
std("local_class", "class defined inside a function (notebook)",
    ("def VAR_make():\n    class Local:\n        def __init__(self):\n            self.v = [1]\n    return Local()", "VAR = VAR_make()"),
    "VAR.v.append(2)", state="v.v")
std("mappingproxy", "types.MappingProxyType", "VAR = types.MappingProxyType({'a': 1})", state="dict(v)", extra="import types")
std("simplenamespace", "types.SimpleNamespace", "VAR = types.SimpleNamespace(a=1, b=[])", "VAR.b.append(1)", extra="import types")
std("generator", "generator", ("def VAR_gen():\n    yield from range(5)", "VAR = VAR_gen()"), "next(VAR)",
    state="list(v)")
std("generator_expr", "generator expression", "VAR = (i * i for i in range(6))", "next(VAR)", state="list(v)")
std("list_iterator", "list_iterator", "VAR_src = [1, 2, 3]\nVAR = iter(VAR_src)", "next(VAR)", state="list(v)")
std("dict_iterator", "dict_keyiterator", "VAR_src = {'a': 1, 'b': 2}\nVAR = iter(VAR_src)", "next(VAR)", state="list(v)")
std("count", "itertools.count", "VAR = itertools.count(10, 2)", "next(VAR)", state="next(v)", extra="import itertools")
std("zip", "zip", "VAR = zip([1, 2, 3], 'abc')", "next(VAR)", state="list(v)")
std("map", "map", "VAR = map(str, [1, 2, 3])", "next(VAR)", state="list(v)")
std("stringio", "io.StringIO", "VAR = io.StringIO()", "VAR.write('hello')", state="(v.getvalue(), v.tell())", extra="import io")
std("bytesio", "io.BytesIO", "VAR = io.BytesIO(b'abc')", "VAR.read(1)", state="(v.getvalue(), v.tell())", extra="import io")
std("file_read", "open file (text, read)", "pathlib.Path('VAR.txt').write_text('l1\\nl2\\n')\nVAR = open('VAR.txt')",
    "VAR.readline()", state="(v.name, v.mode, v.tell(), v.closed)", extra="import pathlib")
std("file_write", "open file (binary, write)", "VAR = open('VAR.bin', 'wb')", "VAR.write(b'xyz')",
    state="(v.name, v.mode, v.closed)")
std("lock", "threading.Lock", "VAR = threading.Lock()", "VAR.acquire()", state="v.locked()", extra="import threading")
std("rlock", "threading.RLock", "VAR = threading.RLock()", state="type(v).__name__", extra="import threading")
std("event", "threading.Event", "VAR = threading.Event()", "VAR.set()", state="v.is_set()", extra="import threading")
std("thread", "threading.Thread (finished)", "VAR = threading.Thread(target=sum, args=([1, 2],), name='VAR')\nVAR.start()\nVAR.join()",
    state="(v.name, v.is_alive())", extra="import threading")
std("queue", "queue.Queue", "VAR = queue.Queue()", "VAR.put(1)", state="list(v.queue)", extra="import queue")
std("sqlite", "sqlite3.Connection (in memory)", "VAR = sqlite3.connect(':memory:')\nVAR.execute('create table t (x)')",
    "VAR.execute('insert into t values (1)')", state="v.execute('select * from t').fetchall()", extra="import sqlite3")
std("random", "random.Random", "VAR = random.Random(7)", "VAR.random()", state="v.getstate()", extra="import random")
std("logger", "logging.Logger", "VAR = logging.getLogger('cov.VAR')", "VAR.setLevel(logging.WARNING)", state="(v.name, v.level)",
    extra="import logging")
std("struct", "struct.Struct", "VAR = struct.Struct('<if')", state="(v.format, v.size)", extra="import struct")
std("weakset", "weakref.WeakValueDictionary", "VAR = weakref.WeakValueDictionary()", state="dict(v)", extra="import weakref")
std("self_ref", "self-referencing list", "VAR = [1]\nVAR.append(VAR)", "VAR.insert(0, 0)", state="(len(v), v[-1] is v)")
std("nested_dict", "dict of lists of dicts (JSON-like)", "VAR = {'rows': [{'id': i, 'tags': ['a']} for i in range(50)]}",
    "VAR['rows'][3]['tags'].append('b')")

# --- numpy ---------------------------------------------------------------------------------
np_ = group("numpy", "numpy", "import numpy as np")
np_("ndarray", "ndarray (float64)", "VAR = np.arange(12.0).reshape(3, 4)", "VAR[1, 2] = -1")
np_("int_array", "ndarray (int32)", "VAR = np.arange(10, dtype=np.int32)", "VAR += 1")
np_("bool_array", "ndarray (bool)", "VAR = np.zeros(8, dtype=bool)", "VAR[3] = True")
np_("fortran", "ndarray (Fortran order)", "VAR = np.asfortranarray(np.arange(6.0).reshape(2, 3))", "VAR[0, 0] = 9")
np_("view", "ndarray view", "VAR_base = np.arange(10.0)\nVAR = VAR_base[2:6]", "VAR_base[3] = 100")
np_("masked", "numpy.ma.MaskedArray", "VAR = np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0], fill_value=-9)",
    "VAR[0] = np.ma.masked")
np_("structured", "ndarray (structured dtype)", "VAR = np.zeros(3, dtype=[('x', 'i4'), ('y', 'f8'), ('name', 'U5')])",
    "VAR['name'][1] = 'bob'")
np_("record", "numpy.recarray", "VAR = np.rec.array([(1, 2.0), (3, 4.0)], names='a,b')", "VAR.a[0] = 7")
np_("datetime64", "ndarray (datetime64)", "VAR = np.arange('2024-01-01', '2024-01-08', dtype='datetime64[D]')",
    "VAR[0] = np.datetime64('2000-01-01')")
np_("timedelta64", "ndarray (timedelta64)", "VAR = np.array([1, 2], dtype='timedelta64[h]')", "VAR[1] = 5")
np_("object_array", "ndarray (object)", "VAR = np.array([{'a': 1}, [1, 2], 'x'], dtype=object)", "VAR[0]['a'] = 2")
np_("string_array", "ndarray (unicode)", "VAR = np.array(['a', 'bb', 'ccc'])", "VAR[0] = 'z'")
np_("complex_array", "ndarray (complex128)", "VAR = np.array([1 + 2j, 3j])", "VAR *= 2")
np_("nan_array", "ndarray (with NaN)", "VAR = np.array([1.0, np.nan, np.inf])", "VAR[0] = np.nan")
np_("readonly", "ndarray (read-only)", "VAR = np.arange(4)\nVAR.flags.writeable = False", state="(v.tolist(), v.flags.writeable)")
np_("matrix", "numpy.matrix", "VAR = np.matrix([[1, 2], [3, 4]])", "VAR[0, 0] = 5")
np_("scalar", "numpy.float32 scalar", "VAR = np.float32(1.5)")
np_("dtype", "numpy.dtype", "VAR = np.dtype([('a', '<i8'), ('b', '<f4')])")
np_("np_generator", "numpy.random.Generator", "VAR = np.random.default_rng(42)", "VAR.random(3)")
np_("randomstate", "numpy.random.RandomState", "VAR = np.random.RandomState(1)", "VAR.rand(2)")
np_("memmap", "numpy.memmap", "VAR = np.memmap('VAR.dat', dtype='f4', mode='w+', shape=(4,))", "VAR[:] = 2.5",
    state="(type(v).__name__, v.tolist())", note="its file is not in the checkpoint: the cell that opened it is rerun")

# --- pandas --------------------------------------------------------------------------------
pd_ = group("pandas", "pandas", "import numpy as np\nimport pandas as pd")
pd_("dataframe", "DataFrame", "VAR = pd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z']})", "VAR.loc[1, 'a'] = 20",
    look="print(VAR.head(2), VAR.describe().shape)")
pd_("df_add_col", "DataFrame (column added)", "VAR = pd.DataFrame({'a': np.arange(5.0)})", "VAR['b'] = VAR['a'] * 2",
    look="print(VAR['a'].sum(), len(VAR.loc[VAR.a > 1]))")
pd_("df_mixed", "DataFrame (mixed dtypes, datetime index)",
    "VAR = pd.DataFrame({'x': [1.5, None], 'when': pd.to_datetime(['2024-01-01', '2024-02-01']), 'ok': [True, False]},"
    " index=pd.date_range('2024', periods=2, freq='D'))", "VAR.iloc[0, 0] = 7.0")
pd_("df_attrs", "DataFrame.attrs", "VAR = pd.DataFrame({'a': [1]})", "VAR.attrs['source'] = 'lab'")
pd_("series", "Series", "VAR = pd.Series([1.0, 2.0, 3.0], name='s')", "VAR.iloc[0] = 10", look="print(VAR.mean(), VAR.loc[1])")
pd_("series_str", "Series (string dtype)", "VAR = pd.Series(['a', None, 'c'], dtype='string')", "VAR[1] = 'b'")
pd_("index", "Index", "VAR = pd.Index(['a', 'b', 'c'], name='letters')")
pd_("rangeindex", "RangeIndex", "VAR = pd.RangeIndex(0, 10, 2)")
pd_("datetimeindex", "DatetimeIndex", "VAR = pd.date_range('2024-01-01', periods=5, freq='h', tz='UTC')")
pd_("multiindex", "MultiIndex", "VAR = pd.MultiIndex.from_product([['a', 'b'], [1, 2]], names=['k', 'n'])")
pd_("df_multiindex", "DataFrame (MultiIndex rows)",
    "VAR = pd.DataFrame({'v': range(4)}, index=pd.MultiIndex.from_product([['a', 'b'], [1, 2]]))", "VAR.loc[('a', 2), 'v'] = 9")
pd_("categorical", "Categorical", "VAR = pd.Categorical(['lo', 'hi', 'lo'], categories=['lo', 'hi'], ordered=True)", "VAR[0] = 'hi'")
pd_("series_cat", "Series (category dtype)", "VAR = pd.Series(['a', 'b', 'a'], dtype='category')",
    "VAR[0] = 'b'")
pd_("pd_view", "DataFrame column (Series view)", "VAR_df = pd.DataFrame({'a': [1.0, 2.0]})\nVAR = VAR_df['a']", "VAR_df.loc[0, 'a'] = 5.0",
    note="pandas 3 copy-on-write: the column is a copy once the frame changes")
pd_("arrow", "DataFrame (Arrow-backed dtypes)", "VAR = pd.DataFrame({'a': [1, 2, None]}, dtype='int64[pyarrow]')",
    "VAR.loc[2, 'a'] = 3", lib="pyarrow")
pd_("arrow_str", "Series (string[pyarrow])", "VAR = pd.Series(['x', 'y'], dtype='string[pyarrow]')", "VAR[0] = 'w'", lib="pyarrow")
pd_("period", "PeriodIndex", "VAR = pd.period_range('2024-01', periods=3, freq='M')")
pd_("interval", "IntervalIndex", "VAR = pd.interval_range(0, 3)")
pd_("timestamp", "Timestamp", "VAR = pd.Timestamp('2024-03-01 10:00', tz='US/Eastern')")
pd_("pd_timedelta", "Timedelta", "VAR = pd.Timedelta('1 days 2 hours')")
pd_("groupby", "DataFrameGroupBy", "VAR = pd.DataFrame({'k': ['a', 'b', 'a'], 'v': [1, 2, 3]}).groupby('k')",
    state="v.sum().to_dict()")
pd_("sparse", "Series (Sparse dtype)", "VAR = pd.Series(pd.arrays.SparseArray([0, 0, 1, 0]))", "VAR.name = 'sp'")
pd_("styler", "Styler", "VAR = pd.DataFrame({'a': [1, 2]}).style.highlight_max()", state="v.data.to_dict()",
    note="needs jinja2")
pd_("rolling", "Rolling", "VAR = pd.Series(range(6)).rolling(3)", state="v.mean().tolist()")

# --- scipy ---------------------------------------------------------------------------------
sp = group("scipy", "scipy", "import numpy as np\nimport scipy.sparse as sps")
sp("csr", "sparse.csr_matrix", "VAR = sps.csr_matrix(np.eye(4))", "VAR[0, 1] = 3.0", state="(v.format, v.toarray())")
sp("csc", "sparse.csc_matrix", "VAR = sps.csc_matrix(np.eye(3))", "VAR.data[0] = 5", state="(v.format, v.toarray())")
sp("coo", "sparse.coo_matrix", "VAR = sps.coo_matrix(([1.0, 2.0], ([0, 1], [1, 2])), shape=(3, 3))", "VAR.data[1] = 7",
    state="(v.format, v.toarray())")
sp("lil", "sparse.lil_matrix", "VAR = sps.lil_matrix((3, 3))", "VAR[1, 1] = 4", state="(v.format, v.toarray())")
sp("dok", "sparse.dok_matrix", "VAR = sps.dok_matrix((3, 3))", "VAR[2, 0] = 1", state="(v.format, v.toarray())")
sp("bsr", "sparse.bsr_matrix", "VAR = sps.bsr_matrix(np.eye(4), blocksize=(2, 2))", state="(v.format, v.toarray())")
sp("dia", "sparse.dia_matrix", "VAR = sps.dia_matrix(np.eye(3))", state="(v.format, v.toarray())")
sp("csr_array", "sparse.csr_array", "VAR = sps.csr_array(np.arange(6.0).reshape(2, 3))", "VAR.data *= 2",
    state="(v.format, v.toarray())")
sp("norm", "stats frozen distribution (norm)", "VAR = scipy.stats.norm(loc=1, scale=2)", state="(v.args, v.kwds, v.mean())",
    extra="import scipy.stats")
sp("gamma", "stats frozen distribution (gamma)", "VAR = scipy.stats.gamma(2.0)", state="(v.args, v.pdf(1.0))", extra="import scipy.stats")
sp("kde", "stats.gaussian_kde", "VAR = scipy.stats.gaussian_kde(np.linspace(0, 1, 20))", state="v(0.5)", extra="import scipy.stats")
sp("interp", "interpolate.interp1d", "VAR = scipy.interpolate.interp1d([0, 1, 2], [0, 1, 4])", state="v(1.5)",
    extra="import scipy.interpolate")
sp("spline", "interpolate.CubicSpline", "VAR = scipy.interpolate.CubicSpline([0, 1, 2, 3], [0, 1, 8, 27])", state="v(1.5)",
    extra="import scipy.interpolate")
sp("kdtree", "spatial.KDTree", "VAR = scipy.spatial.KDTree(np.arange(20.0).reshape(10, 2))", state="v.query([1, 1])",
    extra="import scipy.spatial")
sp("optimize", "optimize.OptimizeResult", "VAR = scipy.optimize.minimize(lambda x: (x[0] - 2) ** 2, [0.0])",
    state="(round(float(v.x[0]), 4), v.success)", extra="import scipy.optimize")

# --- scikit-learn --------------------------------------------------------------------------
SKDATA = "import numpy as np\nX_sk = np.arange(40.0).reshape(20, 2) % 7\ny_sk = (np.arange(20) % 2)"
sk = group("sklearn", "scikit-learn", SKDATA)
SKSTATE = "{k: x for k, x in vars(v).items() if k.endswith('_') and not k.startswith('_')} | {'params': v.get_params(deep=False)}"
sk("linreg", "LinearRegression", "from sklearn.linear_model import LinearRegression\nVAR = LinearRegression()",
   "VAR.fit(X_sk, y_sk)", state=SKSTATE)
sk("logreg", "LogisticRegression", "from sklearn.linear_model import LogisticRegression\nVAR = LogisticRegression(max_iter=200)",
   "VAR.fit(X_sk, y_sk)", state=SKSTATE)
sk("forest", "RandomForestClassifier", "from sklearn.ensemble import RandomForestClassifier\n"
   "VAR = RandomForestClassifier(n_estimators=5, random_state=0)", "VAR.fit(X_sk, y_sk)", state="v.predict(X_sk)")
sk("dtree", "DecisionTreeRegressor", "from sklearn.tree import DecisionTreeRegressor\nVAR = DecisionTreeRegressor(random_state=0)",
   "VAR.fit(X_sk, y_sk)", state="v.predict(X_sk)")
sk("kmeans", "KMeans", "from sklearn.cluster import KMeans\nVAR = KMeans(n_clusters=2, n_init=2, random_state=0)",
   "VAR.fit(X_sk)", state=SKSTATE)
sk("pca", "PCA", "from sklearn.decomposition import PCA\nVAR = PCA(n_components=1)", "VAR.fit(X_sk)", state=SKSTATE)
sk("scaler", "StandardScaler", "from sklearn.preprocessing import StandardScaler\nVAR = StandardScaler()", "VAR.fit(X_sk)",
   state=SKSTATE)
sk("onehot", "OneHotEncoder", "from sklearn.preprocessing import OneHotEncoder\nVAR = OneHotEncoder()",
   "VAR.fit([['a'], ['b']])", state="v.transform([['b']]).toarray()")
sk("pipeline", "Pipeline", "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n"
   "from sklearn.linear_model import Ridge\nVAR = make_pipeline(StandardScaler(), Ridge())", "VAR.fit(X_sk, y_sk)",
   state="v.predict(X_sk)")
sk("columns", "ColumnTransformer", "from sklearn.compose import ColumnTransformer\nfrom sklearn.preprocessing import StandardScaler\n"
   "VAR = ColumnTransformer([('s', StandardScaler(), [0])], remainder='passthrough')", "VAR.fit(X_sk)", state="v.transform(X_sk)")
sk("grid", "GridSearchCV", "from sklearn.model_selection import GridSearchCV\nfrom sklearn.linear_model import Ridge\n"
   "VAR = GridSearchCV(Ridge(), {'alpha': [0.1, 1.0]}, cv=2)", "VAR.fit(X_sk, y_sk)", state="(v.best_params_, v.predict(X_sk))")
sk("tfidf", "TfidfVectorizer", "from sklearn.feature_extraction.text import TfidfVectorizer\nVAR = TfidfVectorizer()",
   "VAR.fit(['a cat sat', 'a dog ran'])", state="(sorted(v.vocabulary_.items()), v.transform(['cat dog']).toarray())")
sk("svc", "SVC", "from sklearn.svm import SVC\nVAR = SVC()", "VAR.fit(X_sk, y_sk)", state="v.predict(X_sk)")
sk("knn", "KNeighborsClassifier", "from sklearn.neighbors import KNeighborsClassifier\nVAR = KNeighborsClassifier(3)",
   "VAR.fit(X_sk, y_sk)", state="v.predict(X_sk)")
sk("nb", "GaussianNB", "from sklearn.naive_bayes import GaussianNB\nVAR = GaussianNB()", "VAR.fit(X_sk, y_sk)", state=SKSTATE)
sk("label", "LabelEncoder", "from sklearn.preprocessing import LabelEncoder\nVAR = LabelEncoder()", "VAR.fit(['b', 'a', 'b'])",
   state=SKSTATE)
sk("gbr", "GradientBoostingRegressor", "from sklearn.ensemble import GradientBoostingRegressor\n"
   "VAR = GradientBoostingRegressor(n_estimators=5, random_state=0)", "VAR.fit(X_sk, y_sk)", state="v.predict(X_sk)")
sk("bunch", "utils.Bunch (load_iris)", "from sklearn.datasets import load_iris\nVAR = load_iris()", "VAR['note'] = 'seen'",
   state="(sorted(v), v.data.sum(), v['note'])")

# --- plotting ------------------------------------------------------------------------------
FIG = ("(v.get_size_inches().tolist(), v.dpi, [(a.get_title(), a.get_xlabel(), [l.get_xydata().tolist() for l in a.get_lines()])"
       " for a in v.axes])")
mpl = group("plots", "matplotlib", "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt")
mpl("figure", "Figure", "VAR, VAR_ax = plt.subplots()\nVAR_ax.plot([1, 2, 3], [4, 5, 6])", "VAR.axes[0].set_title('t')", state=FIG)
mpl("axes", "Axes", "VAR_fig, VAR = plt.subplots()", "VAR.plot([0, 1], [1, 0])\nVAR.set_xlabel('x')",
    state="(v.get_xlabel(), [l.get_xydata().tolist() for l in v.get_lines()])")
mpl("line", "Line2D", "VAR_fig, VAR_ax = plt.subplots()\n(VAR,) = VAR_ax.plot([1, 2], [3, 4])", "VAR.set_color('red')",
    state="(v.get_xydata().tolist(), v.get_color())")
mpl("cmap", "Colormap", "VAR = matplotlib.colormaps['viridis']", state="(v.name, v(0.5))")
mpl("subplots", "Figure with a grid of Axes", "VAR = plt.figure()\nVAR.subplots(2, 2)", "VAR.axes[3].plot([1, 2])", state=FIG)
sns = group("plots", "seaborn", "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nimport seaborn as sns\nimport pandas as pd")
SNSDF = "VAR_df = pd.DataFrame({'x': [1, 2, 3, 4], 'y': [2, 4, 1, 3], 'g': ['a', 'a', 'b', 'b']})\n"
sns("facet", "FacetGrid", SNSDF + "VAR = sns.FacetGrid(VAR_df, col='g')", "VAR.map(sns.scatterplot, 'x', 'y')",
    state="[[c.get_offsets().tolist() for c in a.collections] for a in v.axes.flat]")
sns("pair", "PairGrid", SNSDF + "VAR = sns.PairGrid(VAR_df[['x', 'y']])", "VAR.map(sns.scatterplot)",
    state="[[c.get_offsets().tolist() for c in a.collections] for a in v.axes.flat]")
sns("joint", "JointGrid", SNSDF + "VAR = sns.JointGrid(data=VAR_df, x='x', y='y')", "VAR.plot_joint(sns.scatterplot)",
    state="[c.get_offsets().tolist() for c in v.ax_joint.collections]")
sns("sns_axes", "Axes from seaborn.lineplot", SNSDF + "VAR = sns.lineplot(data=VAR_df, x='x', y='y', ax=plt.figure().gca())",
    state="[l.get_xydata().tolist() for l in v.get_lines()]")
plotly = group("plots", "plotly", "import plotly.graph_objects as go\nimport plotly.express as px")
plotly("go_figure", "graph_objects.Figure", "VAR = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))", "VAR.update_layout(title='t')",
       state="v.to_dict()")
plotly("px_figure", "plotly.express figure", "VAR = px.bar(x=['a', 'b'], y=[1, 2])", "VAR.data[0].marker.color = 'red'",
       state="v.to_dict()")
plotly("widget_less", "graph_objects.Scatter trace", "VAR = go.Scatter(x=[1], y=[2])", "VAR.name = 'n'", state="v.to_plotly_json()")

# --- other light libraries -----------------------------------------------------------------
nx = group("misc", "networkx", "import networkx as nx")
nx("graph", "Graph", "VAR = nx.Graph()\nVAR.add_edge(1, 2, w=3)", "VAR.add_edge(2, 3)", state="(sorted(v.edges(data=True)), dict(v.nodes))")
nx("digraph", "DiGraph", "VAR = nx.DiGraph([(1, 2)])", "VAR.nodes[1]['label'] = 'a'", state="(sorted(v.edges), dict(v.nodes))")
nx("multigraph", "MultiGraph", "VAR = nx.MultiGraph([(1, 2), (1, 2)])", "VAR.add_edge(2, 3)", state="sorted(v.edges(keys=True))")
nx("karate", "Graph (karate club)", "VAR = nx.karate_club_graph()", "VAR.graph['seen'] = True", state="(v.graph, sorted(v.edges))")
pil = group("misc", "pillow", "from PIL import Image, ImageDraw")
pil("rgb", "Image (RGB)", "VAR = Image.new('RGB', (8, 6), (10, 20, 30))", "VAR.putpixel((1, 1), (255, 0, 0))",
    state="(v.mode, v.size, v.tobytes())")
pil("gray", "Image (L)", "VAR = Image.new('L', (5, 5), 7)", "ImageDraw.Draw(VAR).line((0, 0, 4, 4), fill=200)",
    state="(v.mode, v.size, v.tobytes())")
pil("rgba", "Image (RGBA)", "VAR = Image.new('RGBA', (4, 4), (1, 2, 3, 4))", state="(v.mode, v.tobytes())")
pil("palette", "Image (P)", "VAR = Image.new('RGB', (4, 4), (9, 9, 9)).convert('P')", state="(v.mode, v.tobytes(), v.getpalette()[:6])")
misc = group("misc", "tqdm", "")
misc("tqdm", "tqdm", "from tqdm.auto import tqdm\nVAR = tqdm(total=10, disable=True)", "VAR.update(3)", state="(v.n, v.total)")
misc("session", "requests.Session", "import requests\nVAR = requests.Session()", "VAR.headers['X-Test'] = '1'",
     state="dict(v.headers)", lib="requests")
misc("prepared", "requests.PreparedRequest", "import requests\nVAR = requests.Request('GET', 'http://127.0.0.1/x', params={'a': 1}).prepare()",
     state="(v.method, v.url)", lib="requests")
misc("soup", "BeautifulSoup", "from bs4 import BeautifulSoup\nVAR = BeautifulSoup('<p class=\"a\">hi</p>', 'html.parser')",
     "VAR.p['class'] = 'b'", state="str(v)", lib="beautifulsoup4")
misc("tag", "bs4 Tag", "from bs4 import BeautifulSoup\nVAR = BeautifulSoup('<ul><li>1</li></ul>', 'html.parser').ul", "VAR.li.string = '2'",
     state="str(v)", lib="beautifulsoup4")
misc("attrs", "attrs class (notebook)", ("import attr\n@attr.define\nclass VAR_A:\n    x: int\n    ys: list", "VAR = VAR_A(1, [])"),
     "VAR.ys.append(2)", state="(v.x, v.ys)", lib="attrs")
misc("relativedelta", "dateutil.relativedelta", "from dateutil.relativedelta import relativedelta\nVAR = relativedelta(months=1, days=2)",
     lib="python-dateutil")
misc("sortedlist", "sortedcontainers.SortedList", "from sortedcontainers import SortedList\nVAR = SortedList([3, 1])", "VAR.add(2)",
     state="list(v)", lib="sortedcontainers")
misc("sorteddict", "sortedcontainers.SortedDict", "from sortedcontainers import SortedDict\nVAR = SortedDict(b=1)", "VAR['a'] = 2",
     state="list(v.items())", lib="sortedcontainers")
misc("joblib_memory", "joblib.Memory", "import joblib\nVAR = joblib.Memory(None, verbose=0)", state="v.location", lib="joblib")
misc("threadpool", "concurrent.futures.ThreadPoolExecutor", "import concurrent.futures\nVAR = concurrent.futures.ThreadPoolExecutor(2)",
     state="v._max_workers", lib="python")

# --- data libraries of the light extra ------------------------------------------------------
pl = group("data", "polars", "import polars as pl")
pl("pl_df", "polars.DataFrame", "VAR = pl.DataFrame({'a': [1, 2], 'b': ['x', 'y']})", "VAR.insert_column(0, pl.Series('c', [0.5, 1.5]))",
   state="(v.schema, v.to_dicts())")
pl("pl_series", "polars.Series", "VAR = pl.Series('s', [1, 2, 3])", "VAR[0] = 10", state="(v.name, v.to_list())")
pl("pl_lazy", "polars.LazyFrame", "VAR = pl.LazyFrame({'a': [3, 1]}).sort('a')", state="v.collect().to_dicts()")
pa = group("data", "pyarrow", "import pyarrow as pa")
pa("pa_table", "pyarrow.Table", "VAR = pa.table({'a': [1, 2], 'b': ['x', None]})", state="v.to_pydict()")
pa("pa_array", "pyarrow.Array", "VAR = pa.array([1.5, None])", state="(str(v.type), v.to_pylist())")
pa("pa_chunked", "pyarrow.ChunkedArray", "VAR = pa.chunked_array([[1, 2], [3]])", state="(v.num_chunks, v.to_pylist())")
pa("pa_batch", "pyarrow.RecordBatch", "VAR = pa.RecordBatch.from_pydict({'x': [1, 2]})", state="v.to_pydict()")
pa("pa_schema", "pyarrow.Schema", "VAR = pa.schema([('a', pa.int32()), ('b', pa.string())])")
xr = group("data", "xarray", "import numpy as np\nimport xarray as xr")
xr("dataarray", "xarray.DataArray", "VAR = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=('y', 'x'), coords={'x': [10, 20, 30]})",
   "VAR[0, 0] = -1.0\nVAR.attrs['units'] = 'm'", state="(v.to_dict(), v.attrs)")
xr("dataset", "xarray.Dataset", "VAR = xr.Dataset({'t': (('x',), np.arange(3.0))})", "VAR['u'] = VAR['t'] * 2",
   state="v.to_dict()")
sm = group("data", "statsmodels", "import numpy as np\nimport statsmodels.api as sm")
sm("ols", "OLS results", "VAR_X = sm.add_constant(np.arange(10.0))\nVAR = sm.OLS(np.arange(10.0) * 2 + 1, VAR_X).fit()",
   state="(v.params.round(8).tolist(), round(float(v.rsquared), 8))")
sm("glm", "GLM results", "VAR_X = sm.add_constant(np.arange(8.0))\nVAR = sm.GLM(np.arange(8) % 2, VAR_X, family=sm.families.Binomial()).fit()",
   state="v.params.round(6).tolist()")
sm("ols_formula", "OLS (formula) results", "import pandas as pd\nimport statsmodels.formula.api as smf\n"
   "VAR = smf.ols('y ~ x', pd.DataFrame({'x': range(6), 'y': [1.0, 3, 5, 7, 9, 12]})).fit()", state="v.params.round(8).to_dict()")
sy = group("data", "sympy", "import sympy as sp")
sy("symbol", "Symbol", "VAR = sp.Symbol('x', positive=True)")
sy("expr", "expression", "VAR = sp.sin(sp.Symbol('x')) ** 2 + sp.Rational(1, 3)")
sy("sy_matrix", "Matrix (mutable)", "VAR = sp.Matrix([[1, 2], [3, 4]])", "VAR[0, 0] = sp.Symbol('a')")
sy("poly", "Poly", "VAR = sp.Poly(sp.Symbol('x') ** 2 + 1)")
sy("eq", "Eq", "VAR = sp.Eq(sp.Symbol('y'), 2)")
sy("lambdify", "lambdify function", "VAR = sp.lambdify(sp.Symbol('x'), sp.Symbol('x') ** 2)", state="v(3)")
mp = group("data", "mpmath", "import mpmath")
mp("mpf", "mpmath.mpf", "VAR = mpmath.mpf('1.25')")
sh = group("data", "shapely", "from shapely.geometry import Point, Polygon")
sh("point", "Point", "VAR = Point(1, 2)")
sh("polygon", "Polygon", "VAR = Polygon([(0, 0), (1, 0), (1, 1)])", state="v.wkt")
nl = group("data", "nltk", "import nltk")
nl("freqdist", "FreqDist", "VAR = nltk.FreqDist('abracadabra')", "VAR['z'] += 1", state="dict(v)")
nl("tree", "Tree", "VAR = nltk.Tree('S', [nltk.Tree('NP', ['I']), 'ran'])", "VAR[1] = 'walked'", state="str(v)")
nl("cfd", "ConditionalFreqDist", "VAR = nltk.ConditionalFreqDist([('a', 'x'), ('b', 'y')])", "VAR['a']['x'] += 1",
   state="{k: dict(d) for k, d in v.items()}")
pyd = group("data", "pydantic", "import pydantic")
pyd("model", "BaseModel (notebook)", ("class VAR_M(pydantic.BaseModel):\n    x: int\n    tags: list[str] = []", "VAR = VAR_M(x=1)"),
    "VAR.tags.append('a')", state="v.model_dump()")
ox = group("data", "openpyxl", "import openpyxl")
ox("workbook", "Workbook", "VAR = openpyxl.Workbook()", "VAR.active['A1'] = 5", state="[[c.value for c in r] for r in v.active.iter_rows()]")
yml = group("data", "PyYAML", "import yaml")
yml("yaml_loaded", "dict from yaml.safe_load", "VAR = yaml.safe_load('a: [1, 2]')", "VAR['a'].append(3)")
mi = group("data", "more-itertools", "import more_itertools")
mi("peekable", "more_itertools.peekable", "VAR = more_itertools.peekable(iter([1, 2, 3]))", "next(VAR)", state="list(v)")
tz = group("data", "pytz", "import pytz, datetime")
tz("pytz", "pytz timezone", "VAR = pytz.timezone('Asia/Tokyo').localize(datetime.datetime(2024, 1, 1))")

# --- the full set: large or slow to install -------------------------------------------------
tor = group("torch", "torch", "import torch", full=True)
tor("tensor", "Tensor (CPU)", "VAR = torch.arange(6.0).reshape(2, 3)", "VAR[0, 0] = -1",
    note="a CUDA tensor cannot be tried here (no GPU on this machine or CI)")
tor("tensor_grad", "Tensor (requires_grad)", "VAR = torch.ones(3, requires_grad=True)", "VAR.data.mul_(2)")
tor("tensor_view", "Tensor view", "VAR_base = torch.zeros(4)\nVAR = VAR_base[1:3]", "VAR_base[1] = 5")
tor("from_numpy", "Tensor from torch.from_numpy", "import numpy as np\nVAR_a = np.zeros(3, dtype=np.float32)\nVAR = torch.from_numpy(VAR_a)",
    "VAR_a[0] = 5", note="shares the array's memory, before and after a restore")
tor("int_tensor", "Tensor (int64)", "VAR = torch.tensor([1, 2, 3])", "VAR.add_(1)")
tor("parameter", "nn.Parameter", "VAR = torch.nn.Parameter(torch.ones(2))", "VAR.data[0] = 3")
tor("linear", "nn.Linear", "torch.manual_seed(0)\nVAR = torch.nn.Linear(3, 2)", "VAR.weight.data.fill_(0.5)")
tor("sequential", "nn.Sequential", "torch.manual_seed(0)\nVAR = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))",
    "VAR.eval()")
tor("module", "nn.Module subclass (notebook)",
    ("class VAR_Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(2, 1)\n"
     "    def forward(self, x):\n        return self.fc(x)", "torch.manual_seed(0)\nVAR = VAR_Net()"), "VAR.fc.bias.data.zero_()")
tor("sgd", "optim.SGD", "torch.manual_seed(0)\nVAR_m = torch.nn.Linear(2, 1)\nVAR = torch.optim.SGD(VAR_m.parameters(), lr=0.1, momentum=0.9)",
    "VAR_m(torch.ones(1, 2)).sum().backward()\nVAR.step()", state="v.state_dict()['param_groups']")
tor("adam", "optim.Adam", "torch.manual_seed(0)\nVAR_m = torch.nn.Linear(2, 1)\nVAR = torch.optim.Adam(VAR_m.parameters())",
    "VAR_m(torch.ones(1, 2)).sum().backward()\nVAR.step()", state="v.state_dict()")
tor("tdataset", "utils.data.TensorDataset", "VAR = torch.utils.data.TensorDataset(torch.arange(4.0), torch.arange(4))",
    state="[tuple(t.tolist() for t in v[i]) for i in range(len(v))]")
tor("dataloader", "utils.data.DataLoader", "VAR = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(6.0)), batch_size=4)",
    state="[b[0].tolist() for b in v]")
tor("generator_t", "torch.Generator", "VAR = torch.Generator().manual_seed(3)", "torch.rand(2, generator=VAR)")
tor("scheduler", "optim.lr_scheduler.StepLR", "VAR_m = torch.nn.Linear(1, 1)\nVAR_o = torch.optim.SGD(VAR_m.parameters(), lr=1.0)\n"
    "VAR = torch.optim.lr_scheduler.StepLR(VAR_o, step_size=1, gamma=0.5)", "VAR_o.step()\nVAR.step()", state="v.state_dict()")
dd = group("fullmisc", "duckdb", "import duckdb", full=True)
dd("duckdb", "DuckDBPyConnection", "VAR = duckdb.connect()\nVAR.execute('create table t (x int)')", "VAR.execute('insert into t values (1)')",
   state="v.execute('select * from t').fetchall()")
h5 = group("fullmisc", "h5py", "import io, h5py, numpy as np", full=True)
h5("h5file", "h5py.File (in memory)", "VAR = h5py.File(io.BytesIO(), 'w')", "VAR['d'] = np.arange(3)",
   state="v['d'][()].tolist()")
