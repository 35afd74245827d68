"""Cases known to fail, with the reason: listed in the table, expected to fail in the tests.

Keyed by case id. A case that starts passing makes its test XPASS (not an error): remove it here.
"""

from __future__ import annotations

KNOWN_FAILING: dict[str, str] = {}
