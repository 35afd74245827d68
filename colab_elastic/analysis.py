"""What a cell may read and write, from its source alone (pure: no IPython, no fsspec).

The input is the cell *after* IPython's input transformation, so `%time x = f()`, `!ls` and
cell magics are plain Python calls here. The answer is an over-approximation on purpose: a
name wrongly counted as read only costs a fingerprint; a name missed could lose a dependency.
"""

from __future__ import annotations

import ast
import dis
import functools
import itertools
import re
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Magics whose argument (or cell body) is Python code run in the user namespace.
_CODE_MAGICS = frozenset({"time", "timeit", "prun", "capture", "debug", "memit"})
_SHELL_CALLS = frozenset({"run_line_magic", "run_cell_magic", "system", "getoutput"})
# Ways to reach the namespace without naming the variable: called by name, they make a cell
# read and write everything. `vars` only without an argument (`vars(args)` is an object's).
_DYNAMIC_CALLS = frozenset({"exec", "eval", "globals", "locals", "execfile"})
_DYNAMIC_ATTRIBUTES = frozenset({"user_ns", "user_global_ns"})
_DYNAMIC_MAGICS = frozenset({"run", "store"})
# Calls whose result comes from the OS entropy pool: a rerun draws something else.
_ENTROPY_CALLS = frozenset({"urandom", "getrandom", "SystemRandom", "uuid1", "uuid4", "token_bytes",
                            "token_hex", "token_urlsafe", "randbits", "randbelow"})
# Generators that seed themselves from the OS when given no seed.
_SELF_SEEDING = frozenset({"default_rng", "RandomState", "Random", "PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"})
# Calls that read the clock: their value is kept only when assigned.
_CLOCK_CALLS = frozenset({"time", "time_ns", "now", "utcnow", "today", "monotonic", "perf_counter",
                          "process_time", "ctime", "localtime", "gmtime"})
_CLOCK_MODULES = frozenset({"time", "datetime", "date", "dt", "pd", "pandas", "np", "numpy", "Timestamp"})
_NEVER_RERUN = re.compile(r"#\s*elastic\s*:\s*never-rerun\b")
# Calls with effects outside the session that a rerun would repeat: Colab's mount and login
# (a popup in the new runtime), sending mail, writing to a database, a bucket or a web API.
# (owner, call), with owner "" for any owner.
_SIDE_EFFECTS = frozenset({
    ("drive", "mount"), ("auth", "authenticate_user"), ("", "sendmail"), ("", "send_message"),
    ("", "to_sql"), ("", "to_gbq"), ("", "upload_from_filename"), ("", "upload_from_string"),
    ("", "upload_from_file"), ("", "upload_file"), ("", "upload_blob"), ("", "put_object"),
    ("requests", "post"), ("requests", "put"), ("requests", "patch"), ("requests", "delete"),
    ("httpx", "post"), ("httpx", "put"), ("httpx", "patch"), ("httpx", "delete"),
})

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
    `dynamic` is True when the cell reaches the namespace by means the source does not show
    (exec, eval, globals(), %run, `__main__`, `user_ns`): it may read and write any variable.
    `unrepeatable` says why a rerun could not reproduce the cell (it draws from the OS or the
    clock, or the user marked it), "" when nothing says so.
    """

    loads: frozenset[str]
    stores: frozenset[str]
    deletes: frozenset[str]
    parsed: bool = True
    dynamic: bool = False
    unrepeatable: str = ""
    attribute_stores: frozenset[str] = frozenset()  # `x` in `x.attr = v`, `setattr(x, ...)`


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
        self.dynamic = False
        self.unrepeatable = ""
        self.attribute_stores: set[str] = set()
        self._assigning = 0  # >0 inside the value of a top-level assignment

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
        self._effects(node)
        self.generic_visit(node)

    def _effects(self, node: ast.Call) -> None:
        """Note calls that reach the namespace dynamically or that a rerun cannot repeat."""
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        # The name just before the call's: `secrets` in secrets.choice, `datetime` in dt.datetime.now.
        value = func.value if isinstance(func, ast.Attribute) else None
        owner = value.id if isinstance(value, ast.Name) else value.attr if isinstance(value, ast.Attribute) else ""
        if isinstance(func, ast.Name) and (name in _DYNAMIC_CALLS or (name == "vars" and not node.args)):
            self.dynamic = True
        if name in ("setattr", "delattr") and node.args and isinstance(node.args[0], ast.Name):
            self.attribute_stores.add(node.args[0].id)
        if self.unrepeatable:
            return
        unseeded = not node.keywords and (not node.args or (
            len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and node.args[0].value is None))
        if name in _ENTROPY_CALLS or owner == "secrets" or (name in _SELF_SEEDING and unseeded):
            self.unrepeatable = f"it draws from the OS ({ast.unparse(func)}()): a rerun would draw something else"
        elif self._assigning and name in _CLOCK_CALLS and (owner in _CLOCK_MODULES or isinstance(func, ast.Name)):
            self.unrepeatable = f"it keeps a value read from the clock ({ast.unparse(func)}())"
        elif (owner, name) in _SIDE_EFFECTS or ("", name) in _SIDE_EFFECTS:
            self.unrepeatable = f"a rerun would repeat its side effect ({ast.unparse(func)}())"

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _DYNAMIC_ATTRIBUTES:
            self.dynamic = True  # get_ipython().user_ns
        if isinstance(node.ctx, (ast.Store, ast.Del)) and isinstance(node.value, ast.Name):
            self.attribute_stores.add(node.value.id)
        self.generic_visit(node)

    def _assignment(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign) -> None:
        top = self._depth == 0
        self._assigning += top
        self.generic_visit(node)
        self._assigning -= top

    visit_Assign = visit_AnnAssign = _assignment

    def _magic(self, call: str, texts: list[str]) -> None:
        name, rest = (texts[0], texts[1:]) if call.startswith("run_") else ("", texts)
        if name in _DYNAMIC_MAGICS:
            self.dynamic = True  # %run runs a script in the namespace; %store -r writes into it
        if name in _CODE_MAGICS and rest:
            inner = analyze_cell(rest[-1]) if call == "run_cell_magic" else analyze_cell(rest[0])
            if inner.parsed:
                self.loads |= inner.loads
                self.stores |= inner.stores
                self.deletes |= inner.deletes
                self.attribute_stores |= inner.attribute_stores
                self.dynamic |= inner.dynamic
                self.unrepeatable = self.unrepeatable or inner.unrepeatable
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
        self._assignment(node)

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
            if alias.name == "__main__" or getattr(node, "module", None) == "__main__":
                self.dynamic = True  # the namespace itself, as a module
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
    unrepeatable = visitor.unrepeatable
    if _NEVER_RERUN.search(code):
        unrepeatable = "it is marked `# elastic: never-rerun`"
    # Builtin names stay in: a notebook variable may shadow one (`input`, `id`, `sum`), and
    # the caller intersects with the namespace, where unshadowed builtins never appear.
    return CellAnalysis(frozenset(visitor.loads), frozenset(visitor.stores), frozenset(visitor.deletes),
                        dynamic=visitor.dynamic, unrepeatable=unrepeatable,
                        attribute_stores=frozenset(visitor.attribute_stores))


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
    """Close `seed` over the globals read by notebook-defined functions it names or holds.

    A cell that calls `f()` reads whatever globals `f` reads, and whatever the functions it
    calls read, so we follow `__code__` of every function defined in the notebook: those bound
    to a name, and those held in the values read (`hooks['add'](1)` runs a lambda in a dict).
    """
    result: set[str] = set()
    pending = [n for n in seed if n in namespace]
    classes: dict[int, list[str]] | None = None  # id of a class -> the names bound to it
    while pending:
        name = pending.pop()
        if name in result:
            continue
        result.add(name)
        value = namespace.get(name)
        kind = type(value)
        if not issubclass(kind, type) and is_notebook_function(kind):
            # An instance's methods may change its class's attributes (`self.items.append`
            # on a class-level list): the class's variable is read too.
            if classes is None:
                classes = {}
                for other, item in list(namespace.items()):
                    if issubclass(type(item), type):
                        classes.setdefault(id(item), []).append(other)
            pending.extend(n for klass in kind.__mro__ for n in classes.get(id(klass), ()) if n not in result)
        codes = _notebook_code_objects(value, is_notebook_function) + _held_code(value, is_notebook_function)
        for code in codes:
            if _reaches_namespace(code):
                return set(namespace)  # a function calling exec or globals() may touch anything
            pending.extend(n for n in code_global_names(code) if n in namespace and n not in result)
    return result


@functools.lru_cache(maxsize=1024)
def _reaches_namespace(code: types.CodeType) -> bool:
    """Does this code (or code nested in it) call exec, eval, globals(), ... by name?

    From the instructions, not `co_names`, where `model.eval()` would look the same. Cached:
    the same notebook functions are followed cell after cell.
    """
    if not _DYNAMIC_CALLS & set(code.co_names):
        return False
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME") and instruction.argval in _DYNAMIC_CALLS:
            return True
    return any(_reaches_namespace(c) for c in code.co_consts if isinstance(c, types.CodeType))


_HELD_BUDGET = 2_000  # objects looked at per value: a cheap, bounded look, not a full walk
_HELD_DEPTH = 4


def _held_code(value: Any, is_notebook_function: Callable[[Any], bool]) -> list[types.CodeType]:
    """Code of the notebook functions (and notebook-class methods) held inside `value`: in
    dicts, lists, tuples, sets, instance attributes, bound methods, partials and closures, a
    few levels deep. Bounded: a value with more than `_HELD_BUDGET` objects is looked at only
    in part (arrays not at all)."""
    found: list[types.CodeType] = []
    classes: set[type] = set()
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(value, 0)]
    budget = _HELD_BUDGET
    while stack and budget > 0:
        obj, depth = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        budget -= 1
        kind = type(obj)  # type(), not isinstance(): a hostile `__class__` must not raise here
        if kind is types.FunctionType:
            if depth and is_notebook_function(obj):
                found.append(obj.__code__)  # depth 0 is the value itself: the caller follows it
            children = [c.cell_contents for c in obj.__closure__ or () if _filled(c)]
        elif depth >= _HELD_DEPTH:
            continue
        elif kind is dict:
            children = list(itertools.islice(obj.values(), budget))
        elif kind in (list, tuple, set, frozenset):
            children = list(itertools.islice(obj, budget))
        elif kind is types.MethodType:
            children = [obj.__func__, obj.__self__]
        elif kind.__module__ == "functools" and kind.__name__ == "partial":
            children = [obj.func, *obj.args, *obj.keywords.values()]
        else:
            if depth and kind not in classes and is_notebook_function(kind):
                classes.add(kind)  # an instance held somewhere: its methods may be called
                found.extend(_notebook_code_objects(obj, is_notebook_function))
            attrs = _instance_dict(obj)
            children = list(itertools.islice(attrs.values(), budget)) if attrs else []
        stack.extend((c, depth + 1) for c in children if not issubclass(type(c), _SCALARS))
    return found


_SCALARS = (type(None), bool, int, float, complex, str, bytes, type)


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty closure cell: the variable is not bound yet
        return False
    return True


def _instance_dict(obj: Any) -> dict[str, Any] | None:
    """An object's own `__dict__`, read without running its code (no `__getattr__`)."""
    if issubclass(type(obj), types.ModuleType):
        return None  # a module's functions are not the notebook's, and it may be huge
    try:
        attrs = object.__getattribute__(obj, "__dict__")
    except Exception:  # noqa: BLE001 - a class's own `__dict__` property may raise anything
        return None  # nothing we can see is held there
    return attrs if type(attrs) is dict else None


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
