"""`colab_elastic.__all__` is exactly what the package exports (as httpx's test of the same name)."""

from __future__ import annotations

import importlib
import pkgutil
import types

import colab_elastic

INCLUDED_PRIVATE_MEMBERS = {"__version__"}


def public_members() -> list[str]:
    """Names the package itself defines or re-exports from its own modules.

    Left out: submodules (importing `colab_elastic.store` binds `store` on the package) and
    names borrowed from elsewhere for the package's own use (`Any`, `annotations`).
    """
    return sorted(
        name
        for name, value in vars(colab_elastic).items()
        if name in INCLUDED_PRIVATE_MEMBERS
        or (
            not name.startswith("_")
            and not isinstance(value, types.ModuleType)
            and (getattr(value, "__module__", None) or "").startswith("colab_elastic")
        )
    )


def test_all_imports_are_exported():
    assert colab_elastic.__all__ == sorted(colab_elastic.__all__)
    assert colab_elastic.__all__ == public_members()


def test_every_exported_name_resolves_and_star_import_gives_exactly_them():
    namespace: dict = {}
    exec("from colab_elastic import *", namespace)
    namespace.pop("__builtins__")
    assert sorted(namespace) == sorted(colab_elastic.__all__)
    assert all(namespace[name] is getattr(colab_elastic, name) for name in colab_elastic.__all__)


def test_submodules_do_not_shadow_the_public_functions():
    # `checkpoint` and `restore` are both submodules and public functions: importing every
    # submodule must leave the functions in place.
    for module in pkgutil.iter_modules(colab_elastic.__path__):
        importlib.import_module(f"colab_elastic.{module.name}")
    for name in ("checkpoint", "restore", "plan", "load_ipython_extension", "unload_ipython_extension"):
        assert isinstance(getattr(colab_elastic, name), types.FunctionType), name
    assert colab_elastic.__all__ == public_members()


def test_version_is_a_plain_string():
    from colab_elastic._version import __version__

    assert isinstance(colab_elastic.__version__, str) and colab_elastic.__version__ == __version__
