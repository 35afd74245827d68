"""Which names in the shell's namespace are the user's, and which values the notebook defined.

Pure: works on any mapping; the IPython glue passes `user_ns` and `user_ns_hidden`.
"""

from __future__ import annotations

import re
import types
from typing import Any, Mapping

# IPython's own bookkeeping: _, __, ___, _i, _ii, _iii, _5, _i5, _oh, In, Out, exit, ...
_SHELL_NAME = re.compile(r"^(?:_+|_i+|_i?\d+|_oh|_ih|_dh|In|Out|exit|quit|get_ipython|__\w+__)$")


def user_names(namespace: Mapping[str, Any], hidden: Mapping[str, Any] | None = None) -> list[str]:
    """Names the user created, in namespace order (IPython's own names left out)."""
    hidden = hidden or {}
    names = []
    for name, value in list(namespace.items()):
        if _SHELL_NAME.match(name):
            continue
        if name in hidden and hidden[name] is value:
            continue
        names.append(name)
    return names


def notebook_predicate(namespace: Mapping[str, Any]):
    """A test for "defined in this notebook": functions whose globals are the namespace,
    classes whose module is `__main__`."""

    def is_notebook_defined(obj: Any) -> bool:
        if isinstance(obj, types.FunctionType):
            return obj.__globals__ is namespace
        if isinstance(obj, type):
            return obj.__module__ == "__main__"
        return False

    return is_notebook_defined
