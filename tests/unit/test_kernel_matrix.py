"""How the kernel matrix reads the ways a guest can end: dying while
booting, an oops or stall of its kernel, failed tests.

vng is replaced by a shell script here: what is under test is how the
matrix reads the ways a guest can end (the real guests run in
scripts/kernel_matrix.py from .ci/run), and a real boot failure cannot be
made on demand.
"""

import importlib.util
import json
import pathlib
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def km(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "kernel_matrix", ROOT / "scripts" / "kernel_matrix.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "OUT_DIR", tmp_path / "matrix")
    return mod


def fake_vng(tmp_path, script):
    """A vng that counts its calls in ``calls``, keeps its last arguments
    in ``args`` (one a line) and finds the guest's output directory after
    --rwdir, as $out."""
    path = tmp_path / "vng"
    path.write_text("#!/bin/sh\n" + textwrap.dedent("""\
        echo x >>"$(dirname "$0")/calls"
        printf '%s\\n' "$@" >"$(dirname "$0")/args"
        while [ $# -gt 0 ]; do
            [ "$1" = --rwdir ] && out=$2
            shift
        done
        n=$(wc -l <"$(dirname "$0")/calls")
        """) + textwrap.dedent(script))
    path.chmod(0o755)
    return path


KERNEL = "/boot/vmlinuz-9.9.9-test"
# guest.sh's first line: the guest booted.
STARTED = 'echo "guest[0s]: kernel 9.9.9-test, 2 cpus"\n'
# A guest that boots and whose pytest passes: what guest.sh and the
# matrix plugin leave behind.
PASSES = STARTED + """\
    echo '{"kernel": "9.9.9-test", "exitstatus": 0, "tests": {}}' \\
        >"$out/results.json"
    echo 0 >"$out/pytest.rc"
    exit 0
"""


def boot(km, vng, tcg_threads="single"):
    """One guest run of the matrix, with the stand-in vng."""
    return km.run_guest(KERNEL, ["tests/x.py"], str(vng), 2, tcg_threads)


def calls(tmp_path):
    return len((tmp_path / "calls").read_text().splitlines())


def test_a_guest_that_dies_while_booting_is_booted_again(km, tmp_path):
    vng = fake_vng(tmp_path, """\
        if [ "$n" = 1 ]; then echo "Kernel panic - not syncing"; exit 255; fi
    """ + PASSES)
    run = boot(km, vng)
    assert calls(tmp_path) == 2
    assert run.ok, run.problem
    # The failed boot's log is kept for whoever wants to know why.
    failed = run.out / "boot-failure.log"
    assert "Kernel panic" in failed.read_text()
    assert "guest[0s]" in run.log.read_text()


def test_a_guest_that_never_boots_fails_after_two_tries(km, tmp_path):
    vng = fake_vng(tmp_path, "exit 255\n")
    run = boot(km, vng)
    assert calls(tmp_path) == 2
    assert not run.ok
    assert run.problem == (
        "guest ended (vng exit code 255) before pytest did; the boot "
        f"before it failed too ({run.out / 'boot-failure.log'})")


def test_a_guest_that_dies_in_the_tests_is_not_run_again(km, tmp_path):
    # guest.sh had started: the failure is the tests', not the boot's.
    vng = fake_vng(tmp_path, STARTED + """\
        echo "guest[5s]: pytest (limit 360s)"
        exit 255
    """)
    run = boot(km, vng)
    assert calls(tmp_path) == 1
    assert not run.ok
    assert run.problem == "guest ended (vng exit code 255) before pytest did"
    assert not (run.out / "boot-failure.log").exists()


def test_failed_tests_in_a_guest_fail_its_run(km, tmp_path):
    vng = fake_vng(tmp_path, STARTED + """\
        echo '{"kernel": "9.9.9-test", "exitstatus": 1, "tests":
               {"tests/x.py::t": {"outcome": "failed"}}}' >"$out/results.json"
        echo 1 >"$out/pytest.rc"
        exit 1
    """)
    run = boot(km, vng)
    assert calls(tmp_path) == 1
    assert run.problem is None
    assert run.failed_tests == ["tests/x.py::t"]
    assert not run.ok
    assert json.loads((run.out / "results.json").read_text())["exitstatus"] == 1


# Console lines as Debian's 6.12 and 6.1 printed them under multi-threaded
# TCG (tests/matrix/patch_stress.sh), after the tests had started.
OOPS = "[   64.237102] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI"
STALL = "[   29.601190] rcu: INFO: rcu_preempt self-detected stall on CPU"


def test_a_guest_kernel_oops_is_named_in_the_problem(km, tmp_path):
    vng = fake_vng(tmp_path, STARTED + f"""\
        echo "[   60.676449] Scheduler tracepoints stat_sleep need schedstats"
        echo "{OOPS}"
        echo "[   64.241477] Kernel panic - not syncing: Fatal exception"
        exit 255
    """)
    run = boot(km, vng)
    assert calls(tmp_path) == 1
    assert not run.ok
    assert run.problem == (
        "guest ended (vng exit code 255) before pytest did; its kernel "
        "said: Oops: int3: 0000 [#1] PREEMPT SMP NOPTI")


def test_an_oops_fails_a_guest_whose_tests_passed(km, tmp_path):
    # The kernel survived the oops (the oopsing task was killed) and
    # pytest ended well: the run still fails.
    vng = fake_vng(tmp_path, f'echo "{OOPS}"\n' + PASSES)
    run = boot(km, vng)
    assert run.failed_tests == []
    assert not run.ok
    assert run.problem == (
        "its kernel said: Oops: int3: 0000 [#1] PREEMPT SMP NOPTI")


def test_a_stalled_guest_that_is_killed_names_the_stall(km, tmp_path,
                                                         monkeypatch):
    monkeypatch.setattr(km, "BOOT_ALLOWANCE_S", 1)
    monkeypatch.setattr(km, "PYTEST_TIMEOUT_S", 1)
    vng = fake_vng(tmp_path, STARTED + f"""\
        echo "{STALL}"
        sleep 30
    """)
    run = boot(km, vng)
    assert run.problem == (
        "did not finish within 2 s (killed); its kernel said: rcu: INFO: "
        "rcu_preempt self-detected stall on CPU")


def test_the_guest_runs_single_threaded_tcg_unless_asked(km, tmp_path):
    vng = fake_vng(tmp_path, PASSES)
    boot(km, vng)
    args = (tmp_path / "args").read_text().splitlines()
    assert "--qemu-opts=-accel tcg,thread=single" in args
    boot(km, vng, "multi")
    args = (tmp_path / "args").read_text().splitlines()
    assert "--qemu-opts=-accel tcg,thread=multi" in args


@pytest.mark.parametrize("script, problem", [
    ('echo "patch_stress: survived, 726 enable/disable pairs"', None),
    (f'echo "{OOPS}"; exit 255',
     "did not survive: Oops: int3: 0000 [#1] PREEMPT SMP NOPTI"),
    ("exit 3", "did not survive: vng exit code 3"),
])
def test_patch_stress_verdict(km, tmp_path, script, problem):
    vng = fake_vng(tmp_path, script + "\n")
    run = km.patch_stress(KERNEL, str(vng), 2, 1,
                          "single")
    assert run.problem == problem
    if problem is None:
        assert run.results["summary"] == (
            "patch_stress: survived, 726 enable/disable pairs")
