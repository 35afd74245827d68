"""Cases known to fail, with the reason: listed in the table, expected to fail in the tests.

Keyed by case id. A case that starts passing makes its test XPASS (not an error): remove it here.
Each is a detection gap of the fingerprint (colab_elastic/fingerprint*.py): the changing cell is
not recorded as writing the variable. The value still comes back equal when the plan stores
it (it is stored as it is at the checkpoint), but a plan that recomputes it would rerun the
cell that created it without the change.
"""

from __future__ import annotations

KNOWN_FAILING: dict[str, str] = {
    "tqdm": "tqdm.update() is not seen (tqdm reduces to its constructor arguments, not its count)",
}
