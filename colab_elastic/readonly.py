"""Names a cell uses only through a library's read-only API: they need no fingerprint after it.

Pure: no IPython, no fsspec; the libraries are looked up in `sys.modules`, never imported.

Telling whether a cell changed a value means fingerprinting it after the cell, and a fitted
200-tree forest takes ~25 ms to walk, a 3x3 grid of histograms ~0.5 s: paid by every cell that
merely names them (`clf.predict(X_test)`, `fig.savefig("plot.png")`). Two libraries promise
that some uses change nothing the value is:

- scikit-learn: `predict`, `score`, `transform` and the like never change a fitted estimator
  (its common estimator checks test exactly that);
- matplotlib: `savefig`, `show` and the `get_*` getters change only caches (a draw lays out
  text and ticks; the figure is the same figure).

A name is light in a cell when every occurrence of it is such a call or a plain attribute read,
whose result is bound to a name, shown, compared or computed with, never chained on
(`fig.get_axes()[0].set_title(...)`) nor handed to a function that could change it, and when
none occurs inside a function, a lambda or a comprehension. The recorder still fingerprints a
light value after the cell when a name the cell bound shares an object with it (`coef =
clf.coef_; coef *= 2`): what escapes into the namespace is looked at.

pandas objects are read through chains (`sales.groupby('region')['revenue'].agg(['sum'])`), and
hashing a 3M-row frame after every such cell costs ~13 ms (seconds at larger scale). A chain is
vouched for when every step is a method or attribute pandas documents as returning a new object
or a view and never writing (no `apply`, `update`, `pipe`, nothing with `inplace=`), and every
argument is data: constants, containers of them, names bound to non-callable values the cell does
not rebind (or binds, before, only to constants, and hands only to pandas reads: `cols = ['a',
'b']; X = sales[cols]`), or an expression computed from them (a mask). A callable handed to pandas (a lambda,
a function, `np.sort`) may be run on the frame's own columns, so it is never vouched for. A view
the chain returns and the cell keeps (`col = sales['x']; col[0] = 1`) shares the frame's memory,
and the recorder's escape check sees it.

numpy arrays are read the same way (`len(X)`, `X.shape`, `float(X[:, 0].mean())`): hashing a
1 GB array after a cell that only asked its shape costs ~31 ms. A chain is vouched for when every
step is an ndarray method that writes nothing (`sum`, `mean`, `reshape`, `copy`, ...) and every
argument is a constant: an array handed on could be an `out=` (`X.sum(0, None, buf)` writes into
`buf`, which may be a view of `X`), and `out=` is refused by name. Only plain `ndarray`s of a
dtype without Python objects: an element's own `__add__` could change it.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Methods that leave a fitted estimator as it was.
_ESTIMATOR_READS = frozenset({
    "predict", "predict_proba", "predict_log_proba", "decision_function", "score", "score_samples",
    "transform", "inverse_transform", "get_feature_names_out", "staged_predict", "staged_predict_proba",
    "staged_decision_function", "apply", "decision_path", "kneighbors",
})
_FIGURE_READS = frozenset({"savefig", "show", "tight_layout_is_set"})
# Builtins (and IPython's `display`) that only look at their arguments.
_LOOKING_CALLS = frozenset({"print", "display", "len", "repr", "str", "type", "id", "bool", "float", "int",
                            "round", "abs", "sum", "min", "max", "sorted", "list", "tuple", "isinstance"})
# Parents that consume a value without keeping or changing it (the value of an `Assign` is
# kept under a name: the recorder's escape check covers it).
_CONSUMERS = (ast.Expr, ast.Compare, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.FormattedValue, ast.JoinedStr)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class Uses:
    """How a cell uses one name: the methods it calls on it, and whether anything else
    (`other`) happens to it that we cannot vouch for. Read as pandas is (chains of steps, see
    `_chain`): the methods called along them (`calls`, None when some use is no such chain or hands
    on a name the cell binds), the attributes read (`reads`), the names handed as arguments (`handed`)."""

    methods: frozenset[str] = frozenset()
    other: bool = False
    calls: frozenset[str] | None = frozenset()
    reads: frozenset[str] = frozenset()
    handed: frozenset[str] = frozenset()
    # Names of the values whose chains a list of constants the cell binds is handed to
    # (`cols = ['a']; x = sales[cols]`): each must be pandas', whose reads leave it as it is.
    guards: frozenset[str] = frozenset()


def uses(code: str) -> dict[str, Uses]:
    """Every global name the cell mentions -> how it uses it (unparsable code: {})."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return {}
    parents: dict[ast.AST, ast.AST] = {}
    scoped: set[ast.AST] = set()
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, inside = stack.pop()
        if inside:
            scoped.add(node)
        for child in ast.iter_child_nodes(node):
            parents[child] = node
            stack.append((child, inside or isinstance(node, _SCOPES)))
    found: dict[str, _Found] = {}
    chains: dict[ast.Name, tuple[set[str], set[str], set[ast.Name]] | None] = {}
    for node in parents:
        if isinstance(node, ast.Name):
            seen = found.setdefault(node.id, _Found())
            method = None if node in scoped else _read_only_use(node, parents)
            if method is None:
                seen.other = True
            elif method:
                seen.methods.add(method)
            chains[node] = None if node in scoped else _chain(node, parents)
    stored = _bound_names(parents)
    # A name the cell binds is data where it is handed on only if it holds constants by then,
    # and if the cell uses it nowhere else: `cols.append(f)` would put a function in it, and so
    # could a method of a value that is not pandas' (the chains it is handed to are `guards`).
    roots = {h: node for node, chain in chains.items() if chain is not None and chain[0] <= _FRAME_CALLS
             for h in chain[2]}
    elsewhere = {n.id for n in chains if isinstance(n.ctx, ast.Load) and n not in roots}
    constants = {name: first for name, first in _constant_bindings(tree, parents).items() if name not in elsewhere}
    guards = {name: {roots[h].id for h in roots if h.id == name} for name in constants}
    statement = _statements(tree, parents)
    for node, chain in chains.items():
        seen = found[node.id]
        if seen.calls is None:
            continue
        if chain is None or any(h.id in stored and (constants.get(h.id, len(tree.body)) >= statement[node]
                                                    or guards[h.id] & stored) for h in chain[2]):
            seen.calls = None
            continue
        seen.calls |= chain[0]
        seen.reads |= chain[1]
        seen.handed |= {h.id for h in chain[2]} - stored  # the others are checked when the cell runs
        seen.guards |= {g for h in chain[2] if h.id in stored for g in guards[h.id]}
    return {name: Uses(frozenset(f.methods), f.other, None if f.calls is None else frozenset(f.calls),
                       frozenset(f.reads), frozenset(f.handed), frozenset(f.guards)) for name, f in found.items()}


def _bound_names(nodes: dict[ast.AST, ast.AST]) -> set[str]:
    """Every name the cell binds or deletes: assigned, defined, imported, caught, matched."""
    assigned = {n.id for n in nodes if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    return assigned | _bound_otherwise(nodes)


def _bound_otherwise(nodes: dict[ast.AST, ast.AST]) -> set[str]:
    """The names bound by a definition, an import, an `except ... as` or a `match` capture."""
    bound = set()
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound


def _constant_bindings(tree: ast.Module, nodes: dict[ast.AST, ast.AST]) -> dict[str, int]:
    """Names the cell binds only by top-level `name = <constants>` (`cols = ['hour', 'n']`),
    each with the index of the first such statement: from there on it holds data, whatever the
    session held before (top-level statements run in order)."""
    first: dict[str, int] = {}
    otherwise = _bound_otherwise(nodes)
    for node in nodes:
        if not isinstance(node, ast.Name) or isinstance(node.ctx, ast.Load):
            continue
        parent = nodes.get(node)
        named: set[ast.Name] = set()
        if (isinstance(parent, ast.Assign) and nodes.get(parent) is tree and node in parent.targets
                and _data(parent.value, named) and not named):
            first[node.id] = min(first.get(node.id, len(tree.body)), tree.body.index(parent))
        else:
            otherwise.add(node.id)
    return {name: index for name, index in first.items() if name not in otherwise}


def _statements(tree: ast.Module, nodes: dict[ast.AST, ast.AST]) -> dict[ast.AST, int]:
    """Each node -> the index of the top-level statement holding it."""
    index = {stmt: i for i, stmt in enumerate(tree.body)}
    found: dict[ast.AST, int] = {}
    for node in nodes:
        path = [node]
        while path[-1] not in index and path[-1] not in found:
            path.append(nodes[path[-1]])
        at = index.get(path[-1], found.get(path[-1], 0))
        for step in path:
            found[step] = at
    return found


@dataclass
class _Found:
    """What `uses` has gathered of one name so far."""

    methods: set[str] = field(default_factory=set)
    other: bool = False
    calls: set[str] | None = field(default_factory=set)
    reads: set[str] = field(default_factory=set)
    handed: set[str] = field(default_factory=set)
    guards: set[str] = field(default_factory=set)


def _chain(name: ast.Name, parents: dict[ast.AST, ast.AST]) -> tuple[set[str], set[str], set[ast.Name]] | None:
    """(methods called, attributes read, names handed on) along the chain read from `name`,
    whose result is only looked at or bound; None when a step writes or hands on something else."""
    if not isinstance(name.ctx, ast.Load):
        return None
    calls: set[str] = set()
    reads: set[str] = set()
    handed: set[ast.Name] = set()
    node: ast.AST = name
    parent = parents.get(node)
    while True:
        if isinstance(parent, ast.Attribute) and parent.value is node and isinstance(parent.ctx, ast.Load):
            above = parents.get(parent)
            if isinstance(above, ast.Call) and above.func is parent:
                if not _data_call(above, handed):
                    return None
                calls.add(parent.attr)
                node = above
            else:
                reads.add(parent.attr)
                node = parent
        elif isinstance(parent, ast.Subscript) and parent.value is node and isinstance(parent.ctx, ast.Load):
            if not _data(parent.slice, handed):
                return None
            node = parent
        else:
            break
        parent = parents.get(node)
    return (calls, reads, handed) if _consumed(node, parent, parents) else None


def _data_call(call: ast.Call, handed: set[ast.Name]) -> bool:
    """Are all of `call`'s arguments data (see `_data`), and none of them `inplace=` or numpy's
    `out=` (a destination written into)?"""
    return (all(_data(a, handed) for a in call.args)
            and all(k.arg not in (None, "inplace", "out") and _data(k.value, handed) for k in call.keywords))


def _data(node: ast.AST | None, handed: set[ast.Name]) -> bool:
    """Can `node` evaluate to nothing but data (never a callable pandas would run)? Names are
    added to `handed`: their values are checked when the cell runs."""
    if node is None or isinstance(node, (ast.Constant, ast.JoinedStr)):
        return True
    if isinstance(node, ast.Name):
        handed.add(node)
        return isinstance(node.ctx, ast.Load)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(_data(e, handed) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(_data(k, handed) and _data(v, handed) for k, v in zip(node.keys, node.values))
    if isinstance(node, ast.Slice):
        return _data(node.lower, handed) and _data(node.upper, handed) and _data(node.step, handed)
    # A comparison gives a mask or a bool, whatever it compares (each name in it is a use of
    # its own, classified on its own); arithmetic may give back what it combines (`funcs + [f]`).
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BinOp):
        return _data(node.left, handed) and _data(node.right, handed)
    if isinstance(node, ast.UnaryOp):
        return _data(node.operand, handed)
    if isinstance(node, ast.BoolOp):
        return all(_data(v, handed) for v in node.values)
    return False


def _read_only_use(name: ast.Name, parents: dict[ast.AST, ast.AST]) -> str | None:
    """"" for a plain read, the method's name for a read-only-looking call, None otherwise."""
    if not isinstance(name.ctx, ast.Load):
        return None
    parent = parents.get(name)
    if _consumed(name, parent, parents):
        return ""
    if not (isinstance(parent, ast.Attribute) and parent.value is name and isinstance(parent.ctx, ast.Load)):
        return None
    above = parents.get(parent)
    if isinstance(above, ast.Call) and above.func is parent:
        return parent.attr if _consumed(above, parents.get(above), parents) else None
    return "" if _consumed(parent, above, parents) else None


def _consumed(node: ast.AST, parent: ast.AST | None, parents: dict[ast.AST, ast.AST]) -> bool:
    """Is `node`'s value only looked at by `parent` (not chained on, not handed on to change)?"""
    if isinstance(parent, _CONSUMERS):
        return True
    if isinstance(parent, ast.Assign):
        return parent.value is node and all(isinstance(t, ast.Name) for t in parent.targets)
    if isinstance(parent, ast.Call):
        return (node in parent.args and isinstance(parent.func, ast.Name) and parent.func.id in _LOOKING_CALLS
                and _consumed(parent, parents.get(parent), parents))
    if isinstance(parent, (ast.List, ast.Tuple, ast.Set)) and isinstance(getattr(parent, "ctx", ast.Load()), ast.Load):
        return _consumed(parent, parents.get(parent), parents)  # `{'rows': len(sales)}`: as the literal is
    if isinstance(parent, ast.Dict):
        return node in parent.values and _consumed(parent, parents.get(parent), parents)
    return False


# pyplot calls that start, show or close figures without drawing on an existing one.
_PYPLOT_NEW = frozenset({"show", "figure", "subplots", "subplot_mosaic", "close", "ion", "ioff", "isinteractive",
                         "get_fignums", "switch_backend", "rc_context", "style"})
# Modules whose functions draw on pyplot's current figure without naming it (`plt.title("x")`).
_DRAWING_MODULES = frozenset({"matplotlib.pyplot", "seaborn", "pylab"})


def draws_on_current_figure(namespace: dict[str, Any], uses_of: dict[str, Uses]) -> bool:
    """Does the cell call pyplot or seaborn in a way that may change an existing figure?
    Then every figure held by a variable may change without being named."""
    for name, use in uses_of.items():
        module = namespace.get(name)
        if getattr(module, "__name__", None) in _DRAWING_MODULES and isinstance(module, type(sys)):
            if module.__name__ != "matplotlib.pyplot" or use.other or not use.methods <= _PYPLOT_NEW:
                return True
    return False


def is_artist(value: Any) -> bool:
    """Is `value` a matplotlib figure, axes or other artist?"""
    artist = sys.modules.get("matplotlib.artist")
    return artist is not None and isinstance(value, artist.Artist)


def is_figure(value: Any) -> bool:
    """Is `value` a matplotlib figure (or subfigure)?"""
    figure = sys.modules.get("matplotlib.figure")
    # By type: `isinstance` asks the value's own `__class__`, which a hostile object may refuse.
    return figure is not None and issubclass(type(value), figure.FigureBase)


def is_light(value: Any, use: Uses, namespace: Mapping[str, Any] | None = None) -> bool:
    """May a cell that uses `value` only as `use` says be trusted to leave it unchanged?
    (`namespace` holds the names a pandas chain hands on, checked to be no callables.)"""
    pandas = sys.modules.get("pandas")
    if pandas is not None and issubclass(type(value), (pandas.DataFrame, pandas.Series)):
        return _light_frame(value, use, namespace or {})
    numpy = sys.modules.get("numpy")
    if numpy is not None and type(value) is numpy.ndarray:
        return _light_array(value, use, namespace or {})
    if use.other:
        return False
    base = sys.modules.get("sklearn.base")
    if base is not None and isinstance(value, base.BaseEstimator):
        return use.methods <= _ESTIMATOR_READS
    axes = sys.modules.get("matplotlib.axes")
    if is_figure(value) or (axes is not None and isinstance(value, axes.Axes)):
        return all(m in _FIGURE_READS or m.startswith("get_") for m in use.methods)
    return False


# pandas methods that return a new object or a view and write nothing, neither the object nor
# what it was read from (`DataFrame`, `Series`, `GroupBy`, window, and `.str`/`.dt`/`.cat`
# accessors). Left out on purpose: what exists to run a function on the data (`apply`, `map`,
# `transform`, `pipe`), what writes without `inplace=` (`update`, `insert`, `pop`), what
# evaluates text that may call a function (`eval`, `query`), and `plot` (it draws on figures
# the cell does not name). Where a listed method takes a function (`assign(x=f)`, a group
# `filter(f)`), the argument rule refuses it: only data is handed on.
_FRAME_CALLS = frozenset({
    "abs", "add", "agg", "aggregate", "all", "any", "astype", "between", "ceil", "clip", "contains", "copy",
    "corr", "count", "cov", "cummax", "cummin", "cumprod", "cumsum", "day_name", "describe", "diff", "div",
    "drop", "drop_duplicates", "dropna", "duplicated", "endswith", "eq", "ewm", "expanding", "explode",
    "fillna", "filter", "first", "floor", "ge", "get", "groupby", "gt", "head", "idxmax", "idxmin", "isin",
    "isna", "isnull", "join", "kurt", "last", "le", "len", "lower", "lt", "mask", "max", "mean", "median",
    "melt", "memory_usage", "merge", "min", "mod", "mode", "month_name", "mul", "ne", "nlargest", "normalize",
    "notna", "notnull", "nsmallest", "nunique", "pct_change", "pivot", "pivot_table", "pow", "prod",
    "quantile", "rank", "reindex", "rename", "replace", "reset_index", "resample", "rolling", "round",
    "sample", "select_dtypes", "sem", "set_index", "shift", "size", "skew", "slice", "sort_index",
    "sort_values", "split", "stack", "startswith", "std", "strftime", "strip", "sub", "sum", "tail",
    "to_frame", "to_list", "to_numpy", "to_period", "to_timestamp", "tolist", "transpose", "truediv",
    "unique", "unstack", "upper", "value_counts", "var", "where", "assign", "info", "nth",
    "cumcount", "ngroup", "isnumeric", "isdigit", "title", "zfill", "pad", "find", "extract", "ohlc",
})
# Attributes read along the way: accessors, indexers and data (a column read as an attribute,
# `sales.revenue`, is let in separately when it is not also a method).
_FRAME_READS = frozenset({
    "str", "dt", "cat", "loc", "iloc", "at", "iat", "T", "shape", "columns", "index", "dtypes", "dtype",
    "values", "size", "ndim", "empty", "name", "names", "codes", "categories", "year", "month", "day",
    "hour", "minute", "second", "dayofweek", "day_of_week", "weekday", "dayofyear", "day_of_year",
    "quarter", "date", "is_unique", "is_monotonic_increasing", "hasnans", "nbytes", "ngroups", "groups",
})


def _light_frame(value: Any, use: Uses, namespace: Mapping[str, Any]) -> bool:
    """Is every use of a DataFrame or Series a plain read or a chain of pandas reads?"""
    if use.calls is None or not use.calls <= _FRAME_CALLS:
        return False
    columns = getattr(value, "columns", ())
    for attribute in use.reads - _FRAME_READS:
        # `sales.revenue` is the column unless a method or property has that name.
        if hasattr(type(value), attribute) or attribute not in columns:
            return False
    pandas = sys.modules["pandas"]
    frames = (pandas.DataFrame, pandas.Series)
    return (all(name in namespace and issubclass(type(namespace[name]), frames) for name in use.guards)
            and _all_handed(use, namespace, _is_data))


# ndarray methods that return a new array, a scalar or a view, and write nothing: no `sort`,
# `fill`, `put`, `resize`, `partition`, `setfield`, `byteswap`, `itemset`, `setflags`.
_ARRAY_CALLS = frozenset({
    "all", "any", "argmax", "argmin", "argsort", "astype", "clip", "conj", "conjugate", "copy", "cumprod",
    "cumsum", "diagonal", "dot", "flatten", "item", "max", "mean", "min", "nonzero", "prod", "ravel", "repeat",
    "reshape", "round", "searchsorted", "squeeze", "std", "sum", "swapaxes", "take", "tobytes", "tolist",
    "trace", "transpose", "var", "view",
})
# Attributes that describe the array or are views of it (no `data`, `base`, `flat`, `ctypes`,
# `flags`: what they return can write through to it without a name the recorder looks at).
_ARRAY_READS = frozenset({"shape", "ndim", "size", "dtype", "T", "nbytes", "itemsize", "strides", "real", "imag"})


def _light_array(value: Any, use: Uses, namespace: Mapping[str, Any]) -> bool:
    """Is every use of a numpy array a plain read or a chain of its read-only methods with
    constant arguments?"""
    if (value.dtype.hasobject or use.calls is None or use.guards
            or not use.calls <= _ARRAY_CALLS or not use.reads <= _ARRAY_READS):
        return False
    return _all_handed(use, namespace, _is_constant)


def _all_handed(use: Uses, namespace: Mapping[str, Any], acceptable: Any) -> bool:
    """Is every name `use` hands on `acceptable` as its value, or a builtin scalar type (`float`)?"""
    return all(acceptable(namespace[name]) if name in namespace else name in _SCALAR_TYPES for name in use.handed)


_CONSTANT_TYPES = (int, float, complex, bool, str, bytes, type(None), slice, type(Ellipsis))


def _is_constant(value: Any) -> bool:
    """Is `value` a Python scalar, or a tuple or list of them (an axis, a shape, an index)?"""
    if isinstance(value, (tuple, list)):
        return len(value) <= _DATA_ITEMS and all(isinstance(item, _CONSTANT_TYPES) for item in value)
    return isinstance(value, _CONSTANT_TYPES)


# Builtin types pandas and numpy take as a dtype (`astype(float)`): a call of one never changes its argument.
_SCALAR_TYPES = frozenset({"int", "float", "str", "bool", "complex", "bytes", "object"})


_DATA_ITEMS = 10_000  # items of handed lists and dicts looked at before giving up


def _is_data(value: Any) -> bool:
    """Is `value` free of callables pandas could run (`agg(funcs)` with a dict of functions)?
    Lists, tuples, sets and dicts are looked into; arrays and frames are data."""
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > _DATA_ITEMS or callable(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return True


def axes_of(value: Any) -> tuple[Any, ...] | None:
    """The Index objects a pandas value shares with what is derived from it: a DataFrame's index
    and columns, a Series' index, and the categories of categorical columns. None for anything else."""
    pandas = sys.modules.get("pandas")
    if pandas is None:
        return None
    if issubclass(type(value), pandas.DataFrame):
        parts, dtypes = [value.index, value.columns], list(value.dtypes)
    elif issubclass(type(value), pandas.Series):
        parts, dtypes = [value.index], [value.dtype]
    else:
        return None
    return (*parts, *(d.categories for d in dtypes if isinstance(d, pandas.CategoricalDtype)))
