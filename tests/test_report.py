"""Plans, checkpoints and restores formatted for people: the key facts, and escaped HTML."""

from __future__ import annotations

from colab_elastic.checkpoint import CheckpointResult
from colab_elastic.planner import GroupDecision, Plan
from colab_elastic.report import (
    checkpoint_html,
    checkpoint_text,
    human_bytes,
    human_seconds,
    plan_html,
    plan_text,
    restore_html,
    restore_text,
    status_html,
    status_text,
)
from colab_elastic.restore import CellFailure, RestoreReport

PLAN = Plan(
    groups=(
        GroupDecision(("df", "view"), 2_500_000, "store", "store+load 0.1 s < rerun 40 s", 1, (1,), 0.05),
        GroupDecision(("model",), 1_000, "recompute", "rerun 0.2 s < store+load 0.3 s", 3, (2, 3)),
        GroupDecision(("<gen>",), 64, "lost", "a generator cannot be serialized, and recomputing it needs cell 0", 0),
    ),
    reruns=(2, 3),
    checkpoint_seconds=0.05,
    restore_seconds=2.75,
    recompute_all_seconds=42.5,
    cell_runtimes={2: 0.5, 3: 2.2},
)


def test_human_units():
    assert human_bytes(512) == "512 B"
    assert human_bytes(2_500_000) == "2.5 MB"
    assert human_bytes(3e12) == "3000.0 GB"
    assert human_seconds(0.0001) == "<1 ms"
    assert human_seconds(0.25) == "250 ms"
    assert human_seconds(42.5) == "42.5 s"
    assert human_seconds(600) == "10.0 min"


def test_plan_text_states_what_is_stored_recomputed_and_lost():
    text = plan_text(PLAN)
    summary = text.splitlines()[0]
    assert "2 variables stored (2.5 MB)" in summary
    assert "1 recomputed via 2 cells" in summary
    assert "est. checkpoint 50 ms, restore 2.8 s" in summary
    assert "rerun everything: 42.5 s" in summary
    assert "1 cannot be restored: <gen>" in summary
    assert "df, view" in text and "model" in text
    assert "a generator cannot be serialized" in text
    assert "cells rerun on restore: 2 (500 ms), 3 (2.2 s)" in text
    assert repr(PLAN) == text


def test_plan_without_reruns_says_so():
    empty = Plan(groups=(), reruns=(), checkpoint_seconds=0.0, restore_seconds=0.0)
    assert "cells rerun" not in plan_text(empty)
    assert "cells rerun on restore: none" in plan_html(empty)


def test_plan_html_escapes_names_and_reasons():
    page = plan_html(PLAN)
    assert page.startswith("<div>") and "<table>" in page
    assert "&lt;gen&gt;" in page
    assert "<gen>" not in page
    assert "store+load 0.1 s &lt; rerun 40 s" in page
    assert "cells rerun on restore: 2, 3" in page
    assert PLAN._repr_html_() == page


def test_long_name_lists_are_shortened():
    many = Plan(
        groups=(GroupDecision(tuple(f"v{i:02}" for i in range(12)), 10, "store", "cheap", 1),),
        reruns=(),
        checkpoint_seconds=0.0,
        restore_seconds=0.0,
    )
    text = plan_text(many)
    assert "v07 (+4 more)" in text
    assert "v08" not in text


def _checkpoint() -> CheckpointResult:
    return CheckpointResult(
        checkpoint="2024-05-01T12-00-00-abc",
        url="gs://bucket/<run>",
        plan=PLAN,
        bytes_written=2_500_000,
        blobs_written=3,
        blobs_reused=1,
        seconds=1.5,
    )


def test_checkpoint_report_contains_the_key_facts():
    text = checkpoint_text(_checkpoint())
    assert "checkpoint 2024-05-01T12-00-00-abc at gs://bucket/<run>" in text
    assert "wrote 3 blobs (2.5 MB), reused 1" in text
    assert "in 1.5 s" in text
    assert "2 variables stored" in text  # the plan's summary is part of it


def test_checkpoint_html_escapes():
    page = checkpoint_html(_checkpoint())
    assert "gs://bucket/&lt;run&gt;" in page
    assert "<run>" not in page and "<gen>" not in page


def _restore(**changes) -> RestoreReport:
    report = RestoreReport(
        url="/tmp/ckpt",
        checkpoint="ck-1",
        loaded=["df", "view"],
        recomputed=["model"],
        reruns=[2, 3],
        bytes_read=2_500_000,
        read_seconds=0.4,
        rerun_seconds=2.7,
        seconds=3.2,
    )
    for name, value in changes.items():
        setattr(report, name, value)
    return report


def test_successful_restore_report():
    text = restore_text(_restore())
    assert text.startswith("restored ck-1 from /tmp/ckpt: 2 loaded (2.5 MB in 400 ms), 1 recomputed by rerunning 2 cells (2.7 s)")
    assert "all variables restored and verified in 3.2 s" in text
    assert "df, view" in text and "model" in text


def test_a_restore_report_says_what_importing_took_apart_from_loads_and_reruns():
    text = restore_text(_restore(import_seconds=1.2, modules_imported=1400))
    assert "1 recomputed by rerunning 2 cells (2.7 s), 1.2 s importing 1400 modules;" in text
    assert "importing" not in restore_text(_restore(import_seconds=0.01, modules_imported=3))


def test_restore_report_with_problems_names_each_one():
    report = _restore(
        failures=[CellFailure(3, "model = fit(x)", "ValueError: <bad> input", "Traceback (most recent call last):\n  ...\nValueError: <bad> input\n")],
        missing={"conn": "a socket cannot be serialized"},
        differs=["noise"],
        fallbacks={"df, view": "blob digest mismatch"},
    )
    text = restore_text(report)
    assert "restored with problems" in text
    assert "cell 3 failed on rerun" in text and "ValueError: <bad> input" in text
    assert "NOT restored" in text and "conn: a socket cannot be serialized" in text
    assert "differs from the original" in text and "noise" in text
    assert "recomputed instead of loaded" in text and "df, view: blob digest mismatch" in text
    assert "cell 3 traceback:" in text and "Traceback (most recent call last):" in text

    page = restore_html(report)
    assert "ValueError: &lt;bad&gt; input" in page
    assert "<bad>" not in page
    assert "<details><summary>cell 3 traceback</summary>" in page


def test_status_tables():
    status = {"recording": True, "location": "<memory://x>"}
    assert "recording  True" in status_text(status)
    assert "&lt;memory://x&gt;" in status_html(status)


def test_fact_lists_have_no_empty_header_row():
    from colab_elastic.report import status_html, status_text

    fields = {"session": "analysis", "location": "/content/drive/MyDrive/colab_elastic/analysis"}
    assert status_text(fields).splitlines()[0].startswith("session")
    assert "<thead>" not in status_html(fields) and "<th" not in status_html(fields)


def test_restore_tables_start_with_their_first_fact():
    text = restore_text(_restore())
    summary, blank, first = text.splitlines()[:3]
    assert summary.startswith("restored ck-1") and blank == "" and first.startswith("loaded"), text
    page = restore_html(_restore())
    assert "<thead>" not in page and "<th" not in page and "<tr><td style='text-align:left'>loaded</td>" in page
