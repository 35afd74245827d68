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
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
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
    (`other`) happens to it that we cannot vouch for."""

    methods: frozenset[str] = frozenset()
    other: bool = False


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
    found: dict[str, tuple[set[str], bool]] = {}
    for node in parents:
        if isinstance(node, ast.Name):
            methods, other = found.get(node.id, (set(), False))
            method = None if node in scoped else _read_only_use(node, parents)
            if method is None:
                other = True
            elif method:
                methods.add(method)
            found[node.id] = (methods, other)
    return {name: Uses(frozenset(m), o) for name, (m, o) in found.items()}


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


def is_light(value: Any, use: Uses) -> bool:
    """May a cell that uses `value` only as `use` says be trusted to leave it unchanged?"""
    if use.other:
        return False
    base = sys.modules.get("sklearn.base")
    if base is not None and isinstance(value, base.BaseEstimator):
        return use.methods <= _ESTIMATOR_READS
    figure, axes = sys.modules.get("matplotlib.figure"), sys.modules.get("matplotlib.axes")
    if (figure is not None and isinstance(value, figure.FigureBase)) or (axes is not None and isinstance(value, axes.Axes)):
        return all(m in _FIGURE_READS or m.startswith("get_") for m in use.methods)
    return False
