"""What a cell may read and write, from its source alone (pure: no IPython, no fsspec).

The input is the cell *after* IPython's input transformation, so `%time x = f()`, `!ls` and
cell magics are plain Python calls here. The answer is an over-approximation on purpose: a
name wrongly counted as read only costs a fingerprint; a name missed could lose a dependency.
"""

from __future__ import annotations

import ast
import re
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Magics whose argument (or cell body) is Python code run in the user namespace.
_CODE_MAGICS = frozenset({"time", "timeit", "prun", "capture", "debug", "memit"})
_SHELL_CALLS = frozenset({"run_line_magic", "run_cell_magic", "system", "getoutput"})

# Lines that drive colab_elastic itself. They are recorded but never replayed: replaying
# `%elastic checkpoint` during a restore would write a checkpoint from a half-built session.
_OWN_MAGIC = re.compile(
    r"^\s*%(?:elastic\b|(?:load_ext|reload_ext|unload_ext)\s+colab_elastic\b)[^\n]*$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class CellAnalysis:
    """Names a cell's code may touch in the global namespace.

    `loads` are names read (including through notebook-defined functions the cell calls),
    `stores` names bound at top level or through `global`, `deletes` names removed with `del`.
    `parsed` is False when the code could not be parsed; then nothing is known.
    """

    loads: frozenset[str]
    stores: frozenset[str]
    deletes: frozenset[str]
    parsed: bool = True


def replayable_code(raw_cell: str) -> str:
    """The cell as it should be rerun on restore: our own magics become no-ops."""
    return _OWN_MAGIC.sub("pass  # colab_elastic magic, not replayed", raw_cell)


class _TopLevelNames(ast.NodeVisitor):
    """Collects global-scope loads/stores/deletes; function bodies count only via `global`."""

    def __init__(self) -> None:
        self.loads: set[str] = set()
        self.stores: set[str] = set()
        self.deletes: set[str] = set()
        self._scopes: list[set[str]] = []  # `global` names declared in enclosing functions
        self._depth = 0  # >0 inside a function or lambda body
        self._comprehensions = 0  # >0 inside a comprehension: its loop targets are its own

    # Names --------------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        in_function = self._depth > 0
        declared_global = any(node.id in scope for scope in self._scopes)
        if isinstance(node.ctx, ast.Load):
            # A load inside a function body may read a global when the function runs; count
            # it (over-approximation) unless it is certainly local: we do not track locals.
            self.loads.add(node.id)
        elif isinstance(node.ctx, ast.Store):
            if not (in_function or self._comprehensions) or declared_global:
                self.stores.add(node.id)
        elif isinstance(node.ctx, ast.Del):
            if not in_function or declared_global:
                self.deletes.add(node.id)
                self.loads.add(node.id)  # `del x` needs x to exist

    def visit_Call(self, node: ast.Call) -> None:
        # After transformation `%time y = f(x)` is get_ipython().run_line_magic('time', 'y = f(x)')
        # and `!echo $x` is get_ipython().system('echo $x'): the code hides in strings.
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _SHELL_CALLS:
            texts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if texts and len(texts) == len(node.args):
                self._magic(func.attr, texts)
        self.generic_visit(node)

    def _magic(self, call: str, texts: list[str]) -> None:
        name, rest = (texts[0], texts[1:]) if call.startswith("run_") else ("", texts)
        if name in _CODE_MAGICS and rest:
            inner = analyze_cell(rest[-1]) if call == "run_cell_magic" else analyze_cell(rest[0])
            if inner.parsed:
                self.loads |= inner.loads
                self.stores |= inner.stores
                self.deletes |= inner.deletes
                if call == "run_cell_magic":
                    rest = rest[:-1]
                else:
                    rest = []
        # Anything else may expand `$x` or `{x}`: every identifier might be read.
        for text in rest:
            self.loads.update(_IDENTIFIER.findall(text))

    def _comprehension(self, node: ast.AST) -> None:
        self._comprehensions += 1
        self.generic_visit(node)
        self._comprehensions -= 1

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        # `(y := f(v))`, even inside a comprehension, binds y in the enclosing scope.
        self.visit(node.value)
        if self._depth == 0 or any(node.target.id in scope for scope in self._scopes):
            self.stores.add(node.target.id)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        # `x += 1` reads x before it writes it.
        if isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)
        self.generic_visit(node)

    # Scopes ---------------------------------------------------------------------------------
    def _function(self, node: ast.AST, name: str | None) -> None:
        if name is not None and self._depth == 0:
            self.stores.add(name)
        for deco in getattr(node, "decorator_list", []):
            self.visit(deco)
        args = getattr(node, "args", None)
        if args is not None:
            for default in list(args.defaults) + [d for d in args.kw_defaults if d is not None]:
                self.visit(default)
        declared: set[str] = set()
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in ast.walk(ast.Module(body=body, type_ignores=[])):
            if isinstance(stmt, ast.Global):
                declared.update(stmt.names)
        self._scopes.append(declared)
        self._depth += 1
        for stmt in body:
            self.visit(stmt)
        self._depth -= 1
        self._scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node, node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, None)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if self._depth == 0:
            self.stores.add(node.name)
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        # A class body runs now, in its own scope; its loads may read globals.
        self._depth += 1
        self._scopes.append(set())
        for stmt in node.body:
            self.visit(stmt)
        self._scopes.pop()
        self._depth -= 1

    def visit_Global(self, node: ast.Global) -> None:
        if self._depth == 0:
            self.stores.update(node.names)

    # Imports ---------------------------------------------------------------------------------
    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        if self._depth > 0:
            return
        for alias in node.names:
            if alias.name == "*":
                continue  # unknowable from the source; the namespace diff sees the result
            bound = alias.asname or alias.name.split(".")[0]
            self.stores.add(bound)

    def visit_Import(self, node: ast.Import) -> None:
        self._import(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._import(node)


def analyze_cell(code: str) -> CellAnalysis:
    """Names the (transformed) cell source may read, bind and delete at global scope."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return CellAnalysis(frozenset(), frozenset(), frozenset(), parsed=False)
    visitor = _TopLevelNames()
    visitor.visit(tree)
    # Builtin names stay in: a notebook variable may shadow one (`input`, `id`, `sum`), and
    # the caller intersects with the namespace, where unshadowed builtins never appear.
    return CellAnalysis(frozenset(visitor.loads), frozenset(visitor.stores), frozenset(visitor.deletes))


def code_global_names(code: types.CodeType) -> set[str]:
    """Every name a code object (and the code objects nested in it) may look up globally.

    `co_names` also holds attribute names; that over-approximation is harmless because the
    caller intersects the result with the names that exist in the namespace.
    """
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        names.update(current.co_names)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return names


def reachable_names(
    seed: Iterable[str],
    namespace: Mapping[str, Any],
    is_notebook_function: Callable[[Any], bool],
) -> set[str]:
    """Close `seed` over the globals read by notebook-defined functions it names.

    A cell that calls `f()` reads whatever globals `f` reads, and whatever the functions it
    calls read, so we follow `__code__` of every function defined in the notebook.
    """
    result: set[str] = set()
    pending = [n for n in seed if n in namespace]
    while pending:
        name = pending.pop()
        if name in result:
            continue
        result.add(name)
        value = namespace.get(name)
        for code in _notebook_code_objects(value, is_notebook_function):
            pending.extend(n for n in code_global_names(code) if n in namespace and n not in result)
    return result


def _notebook_code_objects(value: Any, is_notebook_function: Callable[[Any], bool]) -> list[types.CodeType]:
    """Code objects of a notebook function, or of the methods of a notebook class."""
    # type(), not isinstance(): isinstance asks the value for its `__class__`, and a hostile
    # value's `__getattribute__` may raise (which would cost the cell its analysis).
    kind = type(value)
    if kind is types.FunctionType:
        return [value.__code__] if is_notebook_function(value) else []
    # A notebook class, or an instance of one: calling its methods reads their globals.
    cls = value if issubclass(kind, type) else kind
    codes = []
    for klass in getattr(cls, "__mro__", ()):
        for attr in vars(klass).values():
            # Methods, static/class methods (`__func__`) and property accessors.
            funcs = (attr.fget, attr.fset, attr.fdel) if isinstance(attr, property) else (getattr(attr, "__func__", attr),)
            for func in funcs:
                if isinstance(func, types.FunctionType) and is_notebook_function(func):
                    codes.append(func.__code__)
    return codes
