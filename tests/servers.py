"""Real servers on loopback for storage tests (filled in by the storage tests)."""
