"""Every effect a cell has survives a disconnect: changes made through aliases, class and
module attributes, functions reached through objects, dynamic code, values drawn from the OS
or the clock, cells that failed part-way, and cells the user marks as never to be rerun."""

from __future__ import annotations

import pytest

from tests.kernels import roundtrip

pytestmark = pytest.mark.kernel

OFF = {"COLAB_ELASTIC_AUTO": "off"}


def _trip(tmp_path, kernels, cells, **kwargs):
    trip = roundtrip(tmp_path, cells, env=OFF, **kwargs)
    kernels.append(trip.kernel)
    return trip


def test_change_through_a_name_then_rebound_reaches_its_aliases(tmp_path, kernels):
    # The lock keeps b's list from being stored, and the slow cell is not worth rerunning for
    # a: the plan recomputes b from its own writers.
    cells = ["import threading, time\na = [1, 2, threading.Lock()]\nb = a", "a.append(3)\ntime.sleep(0.5)\na = []"]
    trip = _trip(tmp_path, kernels, cells)
    assert trip.value("(len(b), b[-1], a)") == "(4, 3, [])"


def test_class_attribute_changed_in_place(tmp_path, kernels):
    cells = ["class Registry:\n    items = []\n    def add(self, item):\n        self.items.append(item)",
             "Registry.items.append('x')", "r = Registry()", "r.add('y')"]
    trip = _trip(tmp_path, kernels, cells)
    trip.assert_identical()
    assert trip.value("(Registry.items, r.items is Registry.items)") == "(['x', 'y'], True)"


def test_attribute_set_on_an_imported_module(tmp_path, kernels):
    trip = _trip(tmp_path, kernels, ["import json", "json.custom_flag = 5", "import csv\ncsv.extra = 'y'"])
    trip.assert_identical()
    assert trip.value("getattr(json, 'custom_flag', None)") == "5"
    assert trip.value("getattr(csv, 'extra', None)") == "'y'"


def test_function_reached_through_a_dict_writes_its_globals(tmp_path, kernels):
    cells = ["log = []\nhooks = {'add': lambda v: log.append(v)}", "hooks['add'](1)"]
    trip = _trip(tmp_path, kernels, cells)
    trip.assert_identical()
    assert trip.value("log") == "[1]"


def test_dynamic_code_reads_and_writes_everything(tmp_path, kernels):
    cells = ["log = []", "exec('log.append(99)')", "globals()['log'].append(100)",
             "def run(code):\n    exec(code)", "run('log.append(101)')"]
    trip = _trip(tmp_path, kernels, cells)
    trip.assert_identical()
    assert trip.value("log") == "[99, 100, 101]"


def test_values_drawn_from_the_os_or_the_clock_are_stored(tmp_path, kernels):
    cells = [
        "import uuid\nimport time\nimport numpy as np\nstamp = time.time()",
        "token = uuid.uuid4().hex",
        "draws = np.random.default_rng().random(3).tolist()",
    ]
    trip = _trip(tmp_path, kernels, cells)
    trip.assert_identical()


def test_a_cell_that_failed_part_way_is_not_rerun(tmp_path, kernels):
    cells = ["events = []", "events.append('a')\nraise ValueError('boom')\nevents.append('b')",
             "open('runs.txt', 'a').write('x')\nevents.append(len(open('runs.txt').read()))\n"
             "raise RuntimeError('after the side effect')"]
    trip = _trip(tmp_path, kernels, cells, allow_errors=[1, 2])
    trip.assert_identical()
    assert trip.value("events") == "['a', 1]"


def test_an_interrupted_cell_is_not_rerun(tmp_path, kernels):
    # Where an interrupt lands depends on timing: a rerun would not stop at the same place.
    # The padding makes storing `done` dearer than rerunning its cells.
    cells = ["import os\ndone = [bytes(20_000_000)]",
             "for i in range(3):\n    done.append(i)\n    if i == 1 and not os.path.exists('stop'):\n"
             "        open('stop', 'w').close()\n        raise KeyboardInterrupt"]
    trip = _trip(tmp_path, kernels, cells, allow_errors=[1])
    trip.assert_identical()
    assert trip.value("done[1:]") == "[0, 1]"


def test_a_cell_marked_never_rerun_is_stored(tmp_path, kernels):
    cells = ["# elastic: never-rerun\nopen('runs.txt', 'a').write('x')\nruns = len(open('runs.txt').read())",
             "# elastic: never-rerun\nimport threading\nguard = threading.Lock()"]
    trip = _trip(tmp_path, kernels, cells)
    assert trip.verdicts["runs"] == "same"
    assert trip.value("runs") == "1"
    assert trip.value("len(open('runs.txt').read())") == "1"
    # The lock cannot be stored and its cell may not be rerun: the restore says so, and why.
    assert "guard" in trip.verdicts and trip.verdicts["guard"] != "same"
    assert "never-rerun" in trip.restore.text
