"""The `colab-elastic` command: `demo`, `inspect URL`, `verify URL`, `log URL`, `export`, `gc`."""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager
from typing import Iterator

from .errors import ElasticError


def _inspect(url: str) -> int:
    from .lineage import read_latest
    from .report import human_bytes, plan_text
    from .sharing import open_for_restore

    manifest = read_latest(open_for_restore(url))
    author = manifest.author.name or "unknown"
    print(f"checkpoint {manifest.checkpoint} of session {manifest.session!r} by {author}, created {manifest.created}")
    env = manifest.environment
    print(f"python {env.python}, colab_elastic {manifest.colab_elastic}, "
          + ", ".join(f"{k} {v}" for k, v in sorted(env.packages.items())))
    stored = sum(e.blob.size for e in manifest.groups if e.blob is not None)
    print(f"{len(manifest.graph.executions) - 1} cells recorded, {human_bytes(stored)} stored\n")
    print(plan_text(manifest.plan))
    return 0


def _verify(url: str) -> int:
    from .lineage import read_latest
    from .sharing import open_for_restore

    store = open_for_restore(url)
    manifest = read_latest(store)
    bad = 0
    for entry in manifest.groups:
        blob = entry.blob
        if blob is None:
            continue
        try:
            store.read_blob(blob.key, blob.digest, blob.size)
            print(f"ok       {blob.key}  {', '.join(entry.decision.names)}")
        except ElasticError as exc:
            bad += 1
            print(f"BAD      {blob.key}  {', '.join(entry.decision.names)}: {exc}")
    print(f"checkpoint {manifest.checkpoint}: {'all blobs verified' if not bad else f'{bad} bad blobs'}")
    return 1 if bad else 0


def _log(url: str) -> int:
    from .lineage import read_log
    from .sharing import open_for_restore

    print(repr(read_log(open_for_restore(url))))
    return 0


def _at_least(low: float, kind: type = int):
    """An argparse type: a number of `kind` no smaller than `low` (a one-line usage error otherwise)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        return value

    return parse


@contextmanager
def _logging(verbose: bool) -> Iterator[None]:
    """Our own warnings in one line each; other libraries' log records (gcsfs's tracebacks of a
    failure we report ourselves, google-auth's probing) only with --verbose."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    if not verbose:
        handler.addFilter(logging.Filter("colab_elastic"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="colab-elastic", description="Checkpoint and restore notebook sessions.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="record, checkpoint, kill, restore and compare, in real kernels, locally")
    demo.add_argument("--dir", help="folder for the demo's files (default: a new temporary folder)")
    sub.add_parser("inspect", help="describe the newest checkpoint at URL").add_argument("url")
    sub.add_parser("verify", help="check every blob of the newest checkpoint at URL").add_argument("url")
    sub.add_parser("log", help="every checkpoint at URL, newest first, intact or damaged").add_argument("url")
    export = sub.add_parser("export", help="write the newest checkpoint at URL into one .zip FILE")
    export.add_argument("url")
    export.add_argument("file")
    gc = sub.add_parser("gc", help="delete old checkpoints and unreferenced blobs at URL")
    gc.add_argument("url")
    gc.add_argument("--keep", type=_at_least(1), default=5, help="checkpoints to keep (default 5)")
    gc.add_argument("--grace", type=_at_least(0.0, float), default=3600.0,
                    help="never delete a blob younger than this many seconds (default 3600)")
    gc.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    args = parser.parse_args(argv)
    with _logging(args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "demo":
            from .demo import run_demo

            return 0 if run_demo(args.dir) else 1
        if args.command == "inspect":
            return _inspect(args.url)
        if args.command == "log":
            return _log(args.url)
        if args.command == "export":
            from .sharing import export as export_zip

            size = export_zip(args.url, args.file, notify=lambda text: print(f"colab-elastic: {text}", file=sys.stderr))
            print(f"wrote {args.file} ({size / 1e6:.1f} MB of stored values); restore it with "
                  f"%elastic restore {args.file} --trust")
            return 0
        if args.command == "gc":
            from .retention import collect_garbage
            from .store import Store

            report = collect_garbage(Store(args.url), keep=args.keep, grace=args.grace, dry_run=args.dry_run)
            print(("would have " if args.dry_run else "") + str(report))
            return 0
        return _verify(args.url)
    except ElasticError as exc:
        print(f"colab-elastic: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
