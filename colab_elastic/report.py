"""Formatting plans, checkpoints, restores and status for people (pure: strings in, strings out).

Each report has a plain-text form (terminals, logs, `__repr__`) and a compact HTML table
(`_repr_html_`, for notebooks). Nothing here prints.
"""

from __future__ import annotations

import html
import unicodedata
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:
    from .checkpoint import CheckpointResult
    from .manifest import Manifest
    from .planner import Plan
    from .restore import RestoreReport


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def human_seconds(s: float) -> str:
    if s < 0.001:
        return "<1 ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.1f} min"


def _names(names: Iterable[str], limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    head = ""
    if any(headers):  # a two-column list of facts gets no empty header row above it
        cells = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in headers)
        head = f"<thead><tr>{cells}</tr></thead>"
    return f"<table>{cap}{head}<tbody>{body}</tbody></table>"


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    if not any(headers):
        return "\n".join(lines[1:])  # a two-column list of facts: no empty header row above it
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# Plan ---------------------------------------------------------------------------------------
def plan_rows(plan: "Plan") -> list[tuple[str, str, str, str]]:
    return [(_names(g.names), human_bytes(g.size), g.action, g.reason) for g in plan.groups]


def plan_summary(plan: "Plan") -> str:
    stored = plan.by_action("store")
    recomputed = plan.by_action("recompute")
    lost = plan.by_action("lost")
    parts = [
        f"{sum(len(g.names) for g in stored)} variables stored ({human_bytes(sum(g.size for g in stored))})",
        f"{sum(len(g.names) for g in recomputed)} recomputed via {len(plan.reruns)} cells",
        f"est. checkpoint {human_seconds(plan.checkpoint_seconds)}, restore {human_seconds(plan.restore_seconds)}"
        + (f" with {human_seconds(plan.import_seconds)} of imports" if plan.import_seconds >= 0.05 else "")
        + f" (rerun everything: {human_seconds(plan.recompute_all_seconds)})",
    ]
    if lost:
        parts.append(f"{sum(len(g.names) for g in lost)} cannot be restored: {_names(n for g in lost for n in g.names)}")
    return "; ".join(parts)


_MAX_CELL_ROWS = 40


def cell_rows(plan: "Plan") -> list[tuple[str, str, str, str]]:
    """Per recorded cell: rerun on restore or not (the most recent cells when there are many)."""
    rerun, settings = set(plan.reruns), set(plan.settings)
    cells = sorted(plan.cell_lines)[-_MAX_CELL_ROWS:]
    return [(str(c), human_seconds(plan.cell_runtimes.get(c, 0.0)),
             "rerun" if c in rerun else "settings" if c in settings else "-", plan.cell_lines[c]) for c in cells]


def plan_text(plan: "Plan") -> str:
    lines = [plan_summary(plan), "", _text_table(("variables", "size", "action", "why"), plan_rows(plan))]
    if plan.reruns:
        lines += ["", "cells rerun on restore: " + ", ".join(f"{c} ({human_seconds(plan.cell_runtimes.get(c, 0))})" for c in plan.reruns)]
    if plan.settings:
        lines += ["", "settings replayed on restore (cells not rerun): " + ", ".join(map(str, plan.settings))]
    if plan.cell_lines:
        lines += ["", _text_table(("cell", "runtime", "restore", "code"), cell_rows(plan))]
    return "\n".join(lines)


def plan_html(plan: "Plan") -> str:
    reruns = ", ".join(str(c) for c in plan.reruns) or "none"
    cells = _table(("cell", "runtime", "restore", "code"), cell_rows(plan)) if plan.cell_lines else ""
    return (f"<div><p>{html.escape(plan_summary(plan))}</p>"
            + _table(("variables", "size", "action", "why"), plan_rows(plan))
            + f"<p>cells rerun on restore: {html.escape(reruns)}</p>"
            + (f"<p>settings replayed on restore (cells not rerun): {', '.join(map(str, plan.settings))}</p>"
               if plan.settings else "") + cells + "</div>")


# Checkpoint ---------------------------------------------------------------------------------
def checkpoint_summary(result: "CheckpointResult") -> str:
    text = (f"checkpoint {result.checkpoint} at {result.url}: {plan_summary(result.plan)}; "
            f"wrote {result.blobs_written} blobs ({human_bytes(result.bytes_written)}), reused {result.blobs_reused}, "
            f"in {human_seconds(result.seconds)}")
    return f"{text}\nnote: {result.note}" if result.note else text


def checkpoint_text(result: "CheckpointResult") -> str:
    return checkpoint_summary(result)


def checkpoint_html(result: "CheckpointResult") -> str:
    return f"<div><p>{html.escape(checkpoint_summary(result))}</p></div>"


# Restore ------------------------------------------------------------------------------------
def restore_summary(report: "RestoreReport") -> str:
    if not report.ok:
        verdict = "restored with problems"
    elif report.unverified:
        verdict = f"all variables restored, verified but {len(report.unverified)} that cannot be compared"
    else:
        verdict = "all variables restored and verified"
    if report.skipped:
        verdict += f" (an older checkpoint: {len(report.skipped)} newer ones were missing or damaged)"
    # Imports apart: no storage and no plan makes them faster, and they are what a restore of a
    # pandas or scikit-learn notebook spends much of its time on.
    imports = (f", {human_seconds(report.import_seconds)} importing {report.modules_imported} modules"
               if report.import_seconds >= 0.05 else "")
    return (f"restored {report.checkpoint} from {report.url}: {len(report.loaded)} loaded "
            f"({human_bytes(report.bytes_read)} in {human_seconds(report.read_seconds)}), "
            f"{len(report.recomputed)} recomputed by rerunning {len(report.reruns)} cells "
            f"({human_seconds(report.rerun_seconds)}){imports}; {verdict} in {human_seconds(report.seconds)}")


def restore_rows(report: "RestoreReport") -> list[tuple[str, str]]:
    rows = []
    for checkpoint, why in report.skipped.items():
        rows.append(("skipped a newer checkpoint", f"{checkpoint}: {why}"))
    for line in report.environment:
        rows.append(("runtime", line))
    if report.loaded:
        rows.append(("loaded", _names(report.loaded, 20)))
    if report.recomputed:
        rows.append(("recomputed", _names(report.recomputed, 20)))
    if report.reruns:
        rows.append(("cells rerun", ", ".join(map(str, report.reruns))))
    if report.settings:
        rows.append(("settings replayed (cells not rerun)", ", ".join(map(str, report.settings))))
    for setting, why in report.unapplied.items():
        rows.append(("setting NOT restored", f"{setting}: {why}"))
    for names, why in report.fallbacks.items():
        rows.append(("recomputed instead of loaded", f"{names}: {why}"))
    for failure in report.failures:
        rows.append((f"cell {failure.index} failed on rerun", failure.error))
    for name, why in report.missing.items():
        rows.append(("NOT restored", f"{name}: {why}"))
    if report.differs:
        rows.append(("differs from the original (fingerprint)", _names(report.differs, 20)))
    for why in sorted(set(report.unverified.values())):
        names = sorted(n for n, w in report.unverified.items() if w == why)
        rows.append(("restored, not compared", f"{_names(names, 20)} ({why})"))
    for name, how in report.aliasing.items():
        rows.append(("aliasing differs from the original", f"{name}: {how}"))
    return rows


def restore_text(report: "RestoreReport") -> str:
    lines = [restore_summary(report)]
    rows = restore_rows(report)
    if rows:
        lines += ["", _text_table(("", ""), rows)]
    for failure in report.failures:
        lines += ["", f"cell {failure.index} traceback:", failure.traceback.rstrip()]
    return "\n".join(lines)


def restore_html(report: "RestoreReport") -> str:
    tracebacks = "".join(
        f"<details><summary>cell {f.index} traceback</summary><pre>{html.escape(f.traceback)}</pre></details>"
        for f in report.failures
    )
    return f"<div><p>{html.escape(restore_summary(report))}</p>{_table(('', ''), restore_rows(report))}{tracebacks}</div>"


# Status -------------------------------------------------------------------------------------
def status_rows(status: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, str(v)) for k, v in status.items()]


def status_text(status: dict[str, Any]) -> str:
    return _text_table(("", ""), status_rows(status))


def status_html(status: dict[str, Any]) -> str:
    return _table(("", ""), status_rows(status))


# Foreign checkpoints ------------------------------------------------------------------------
# Characters that move the cursor or reorder text: a `\r` in a cell's code can hide the line
# before it, a bidi override can show code in another order than it runs.
_HIDING = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})


def _escaped(ch: str) -> str:
    code = ord(ch)
    if ch in "\r\n\t":
        return {"\r": "\\r", "\n": "\\n", "\t": "\\t"}[ch]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: Any, *, lines: bool = True) -> str:
    """`text` with every control character, bidi override and line separator shown escaped
    (`\\r`, `\\x1b`, `\\u202e`); `lines` keeps newlines and tabs as they are."""
    text = str(text)
    if text.isprintable():
        return text
    kept = "\n\t" if lines else ""
    return "".join(ch if ch in kept or unicodedata.category(ch) not in _HIDING else _escaped(ch) for ch in text)


def _code_lines(index: int, code: Any) -> list[str]:
    """A cell's whole code, each line escaped and indented under its number."""
    shown = visible(code if isinstance(code, str) else repr(code)).rstrip("\n").split("\n") or [""]
    return [f"  [{index}] {shown[0]}"] + [f"      {line}" for line in shown[1:]]


def could_run(manifest: Manifest) -> tuple[list[int], list[int]]:
    """The cells a restore of `manifest` runs as planned, and those a new plan could add.

    A stored value that is missing, damaged or fails to load makes the restore plan again:
    any cell the history marks rerunnable may then run. (Conservative: not every one would.)"""
    planned = sorted(set(manifest.plan.reruns))
    rerunnable = {e.index for e in manifest.graph.executions if e.rerunnable}
    return planned, sorted(rerunnable - set(planned))


def foreign_text(manifest: Manifest) -> str:
    """What restoring a checkpoint that is not yours would do: who says they wrote it, every
    value it unpickles, every file it writes, and every cell it could run (whole, escaped)."""
    executions = manifest.graph.executions
    cells = {e.index: e.code for e in executions}
    signed = (f"signed with key {visible(manifest.signature.key, lines=False)}, not yours"
              if manifest.signature is not None else "not signed")
    lines = [visible(f"checkpoint {manifest.checkpoint} by {manifest.author.name or 'unknown'} "
                     f"(author id {manifest.author.id or '?'}, as the checkpoint itself says), "
                     f"created {manifest.created or '?'}, Python {manifest.environment.python or '?'}; {signed}",
                     lines=False)]
    loaded = [entry for entry in manifest.groups if entry.blob is not None]
    total = sum(entry.blob.size for entry in loaded if entry.blob is not None)
    lines.append(f"it loads (unpickles) {len(loaded)} stored values ({human_bytes(total)})" + (":" if loaded else ""))
    for entry in loaded:
        assert entry.blob is not None
        lines.append(visible(f"  {', '.join(entry.decision.names) or '?'}  ({human_bytes(entry.blob.size)})",
                             lines=False))
    settings = sorted({e.index for e in executions if e.ambient} | set(manifest.plan.settings))
    drawn = sorted(e.index for e in executions if e.rng)
    if settings:  # environment variables, sys.path, the working folder, extensions it loads
        lines.append("it unpickles and applies the recorded session settings of cells " + ", ".join(map(str, settings)))
    if drawn or manifest.graph.rng:
        lines.append("it unpickles the recorded random-number states" +
                     (f" of cells {', '.join(map(str, drawn))}" if drawn else "") + " (and sets the last one)")
    files = manifest.files.entries if manifest.files is not None else ()
    if files:
        lines.append(f"before any cell runs, it writes {len(files)} files:")
        lines += [visible(f"  {f.rel or f.path}", lines=False) for f in files]
    log = manifest.files.log if manifest.files is not None else {}
    installs = [line for c in (log.get("cells") or {}).values() if isinstance(c, dict)
                for line in (c.get("installs") or []) if isinstance(line, str)] if isinstance(log.get("cells"), dict) else []
    if installs:
        lines.append("with --install, it first runs:")
        lines += [visible(f"  {line}", lines=False) for line in installs]

    planned, replanned = could_run(manifest)
    lines.append(f"it runs {len(planned)} cells:" if planned else "it runs no cells as planned")
    for index in planned:
        lines += _code_lines(index, cells.get(index, ""))
    if replanned:
        lines.append(f"if a stored value is missing or fails to load, a new plan may also run any of these "
                     f"{len(replanned)} cells:")
        for index in replanned:
            lines += _code_lines(index, cells.get(index, ""))
    return "\n".join(lines)


# Checkpoint log -----------------------------------------------------------------------------
_LOG_HEADERS = ("checkpoint", "taken (UTC)", "cells", "variables", "stored", "written by", "state")


def _when(created: str) -> str:
    return created[:19].replace("T", " ") if created else "?"


def log_rows(entries: Iterable[Any]) -> list[tuple[str, ...]]:
    rows = []
    lineages: dict[str | None, int] = {}
    for e in entries:
        lineage = lineages.setdefault(e.lineage, len(lineages) + 1)
        state = "intact" if e.intact else f"damaged: {e.problem}"
        if e.latest:
            state = f"LATEST, {state}"
        writer = " / ".join(x for x in (e.writer, e.notebook or e.session) if x)
        rows.append((e.checkpoint, _when(e.created), str(e.cells) if e.created else "?",
                     str(e.variables) if e.created else "?", human_bytes(e.stored_bytes) if e.created else "?",
                     f"{writer} (lineage {lineage})" if writer else f"lineage {lineage}", state))
    return rows


def log_summary(entries: Sequence[Any], url: str, listed: bool) -> str:
    if not entries:
        return f"no checkpoints at {url}"
    how = "" if listed else " (this location cannot be listed: found through each checkpoint's parent)"
    count = f"{len(entries)} checkpoint{'s' if len(entries) != 1 else ''}"
    return (f"{count} at {url}, newest first{how}; "
            "restore one with %elastic restore --at CHECKPOINT")


def log_text(log: Any) -> str:
    lines = [log_summary(log.entries, log.url, log.listed)]
    if log.entries:
        lines += ["", _text_table(_LOG_HEADERS, log_rows(log.entries))]
    return "\n".join(lines)


def log_html(log: Any) -> str:
    table = _table(_LOG_HEADERS, log_rows(log.entries)) if log.entries else ""
    return f"<div><p>{html.escape(log_summary(log.entries, log.url, log.listed))}</p>{table}</div>"
