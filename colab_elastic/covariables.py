"""Co-variables: names whose values share objects, stored or recomputed as one.

Pure: works on fingerprints (see `fingerprint`), whose `objects` are the ids of the mutable
objects each value reaches.
"""

from __future__ import annotations

from .fingerprint import Fingerprint


def overlapping(fingerprints: dict[str, Fingerprint]) -> list[frozenset[str]]:
    """Partition names into co-variable groups: names whose reachable objects overlap.

    `b = a`, `d = {"k": a}` and a numpy view of an array all land in one group, so that
    they are stored or recomputed together and their aliasing survives a restore.
    """
    parent = {name: name for name in fingerprints}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    owner: dict[int, str] = {}
    for name in sorted(fingerprints):
        for obj in fingerprints[name].objects:
            other = owner.setdefault(obj, name)
            if other != name:
                parent[find(name)] = find(other)
    groups: dict[str, set[str]] = {}
    for name in fingerprints:
        groups.setdefault(find(name), set()).add(name)
    return sorted((frozenset(g) for g in groups.values()), key=lambda g: sorted(g))
