#!/usr/bin/env python3
"""The kernel matrix: the kernel-dependent tests in other kernels, under qemu.

    sudo scripts/kernel_matrix.py [--kernel VMLINUZ]... [--jobs N]
    sudo scripts/kernel_matrix.py --patch-stress SECONDS [--tcg-threads T]

The tests marked ``kernel`` and not ``docker`` (feature probes, loading and
attaching through every mechanism, the tracers' Docker-free tests) run
first on the host, then inside each kernel that scripts/setup.sh unpacked
into /var/cache/dockertrace/kernels (Debian's 6.1 and 6.12, which allow
fentry/fexit and kprobes; this machine's kernel does not). Each kernel is
booted by virtme-ng under pure emulation (no KVM: the host's /dev/kvm
cannot run stock kernels) with the host's root filesystem shared
read-only; tests/matrix/guest.sh runs pytest inside, and the results come
back through a shared directory, build/matrix/<kernel>/.

At the end it prints a table of kernel x tracer x mechanism x result, and
the probe points whose mechanism differs between kernels. The exit code
is 1 when any test failed or any guest did not finish in time, and the
output of every guest that failed is printed.

--patch-stress runs tests/matrix/patch_stress.sh in each guest instead of
the tests: whether the emulated guest survives live kernel code patching,
which every attach and detach causes (see guest_cmd).
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
KERNELS_DIR = pathlib.Path(os.environ.get(
    "DOCKERTRACE_KERNELS", "/var/cache/dockertrace/kernels"))
OUT_DIR = ROOT / "build" / "matrix"
GUEST_SCRIPT = ROOT / "tests" / "matrix" / "guest.sh"
STRESS_SCRIPT = ROOT / "tests" / "matrix" / "patch_stress.sh"
MARKERS = "kernel and not docker"
# Boot to the first command takes 10-40 s under emulation. With both
# vCPUs on one host thread (see guest_cmd) pytest took 88 s in 6.12 and
# 159 s in 6.1 (64 s each with a thread per vCPU); in 6.1 the fentry
# throttle test alone went from 5 s to 44 s. guest.sh enforces pytest's
# limit itself. Two guests that both hang end within 20 minutes.
BOOT_ALLOWANCE_S = 90
PYTEST_TIMEOUT_S = 480
HOST_TIMEOUT_S = 300
# Mechanisms in the engine's order of preference, then single-kind points.
MECH_ORDER = ("fentry", "kprobe", "tp_btf", "raw_tp", "tp", "iter", "lsm")


def log(msg):
    print(f"==> {msg}", flush=True)


class MatrixError(Exception):
    """Something outside the tests themselves went wrong."""


# ------------------------------------------------------------- kernels

def _version_key(text):
    return [int(n) for n in re.findall(r"\d+", text)]


def find_kernels(kernels_dir=KERNELS_DIR):
    """The kernel images setup.sh unpacked, oldest series first."""
    images = sorted(kernels_dir.glob("*/boot/vmlinuz-*"),
                    key=lambda p: _version_key(p.parent.parent.name))
    if not images:
        raise MatrixError(
            f"no kernels in {kernels_dir}/*/boot (run scripts/setup.sh)")
    return images


def release_of(vmlinuz):
    return pathlib.Path(vmlinuz).name[len("vmlinuz-"):]


def find_vng():
    # Next to the interpreter first: under sudo, PATH may lack it.
    here = pathlib.Path(sysconfig.get_path("scripts")) / "vng"
    if here.exists():
        return str(here)
    found = shutil.which("vng")
    if not found:
        raise MatrixError("vng (virtme-ng) not found (run scripts/setup.sh)")
    return found


# --------------------------------------------------------------- tests

def selected_files():
    """Test files holding tests marked ``kernel`` and not ``docker``."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q",
         "-p", "no:cacheprovider", "-m", MARKERS, "tests"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise MatrixError("collecting the kernel tests failed:\n"
                          + proc.stdout[-3000:] + proc.stderr[-3000:])
    files = []
    for line in proc.stdout.splitlines():
        path = line.split("::", 1)[0]
        if "::" in line and path not in files:
            files.append(path)
    if not files:
        raise MatrixError(f"no tests marked '{MARKERS}'")
    return files


# Plugin options must be on the command line itself: pytest reads an
# @file of arguments only after it has loaded its plugins.
PLUGIN_ARGS = ("-p", "no:cacheprovider", "-p", "matrix_plugin")


def pytest_args(files):
    return ["-m", MARKERS, "-v", "-rs", "--color=no", *files]


def _clean(out):
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)


class Run:
    """One kernel's run: where its files are and how it ended."""

    def __init__(self, name, out):
        self.name = name            # kernel release
        self.out = out
        self.problem = None         # why it failed outside the tests
        self.seconds = 0.0
        self.results = None

    @property
    def log(self):
        return self.out / "output.log"

    def load(self):
        path = self.out / "results.json"
        if path.exists():
            self.results = json.loads(path.read_text())
        elif self.problem is None:
            self.problem = "no results.json: pytest did not finish"

    @property
    def failed_tests(self):
        tests = (self.results or {}).get("tests", {})
        return [n for n, t in tests.items()
                if t["outcome"] in ("failed", "error")]

    @property
    def ok(self):
        return (self.problem is None and self.results is not None
                and self.results["exitstatus"] == 0
                and not self.failed_tests)


def _pump(pipe, path):
    """Copy a guest's output to its log as it comes (qemu truncates a
    plain file given as stdout, so it writes to a pipe)."""
    with open(path, "wb") as f:
        for chunk in iter(lambda: pipe.read1(65536), b""):
            f.write(chunk)
            f.flush()


def _run_logged(cmd, run, timeout_s, **kwargs):
    """Run ``cmd`` in a session of its own, output to ``run.log``; kill
    the whole session when it takes longer than ``timeout_s``."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            start_new_session=True, **kwargs)
    pump = threading.Thread(target=_pump, args=(proc.stdout, run.log))
    pump.start()
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        run.problem = f"did not finish within {timeout_s} s (killed)"
        rc = None
    pump.join()
    run.seconds = time.monotonic() - start
    return rc


def run_host(files):
    run = Run(os.uname().release + " (host)", OUT_DIR / "host")
    _clean(run.out)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests" / "matrix"),
               DOCKERTRACE_MATRIX_OUT=str(run.out))
    _run_logged([sys.executable, "-m", "pytest", *PLUGIN_ARGS,
                 *pytest_args(files)],
                run, HOST_TIMEOUT_S, cwd=ROOT, env=env)
    run.load()
    return run


# The first line a dying kernel prints, for the summary: the whole console
# is in the log and printed with the failures.
_CRASH = re.compile(
    r"\] ((?:Oops|BUG|kernel BUG|Kernel panic|rcu: INFO)\b.*)")


def _log_text(run):
    try:
        return run.log.read_text(errors="replace")
    except OSError:     # the guest never got as far as writing to it
        return ""


def kernel_crash(run):
    """The guest kernel's first oops, panic or stall line in its log."""
    found = _CRASH.search(_log_text(run))
    return found.group(1).strip() if found else None


def _guest_started(run):
    """Whether guest.sh began: its first line is in the log."""
    return "guest[" in _log_text(run)


def guest_cmd(vng, vmlinuz, cpus, out, command, tcg_threads="single"):
    """vng's command line to boot ``vmlinuz`` and run ``command`` in it,
    with ``out`` writable."""
    # --verbose puts the guest kernel's console in the log: without it a
    # guest that dies while booting leaves an empty log and vng's 255.
    return [vng, "--verbose", "--disable-kvm", "--force-9p",
            "--cpus", str(cpus), "--memory", "2G",
            # Attaching to a tracepoint rewrites kernel code that another
            # vCPU may be running. Multi-threaded TCG (qemu's default)
            # does not keep that coherent: under --patch-stress a 6.12
            # guest hit a stale int3 (oops, panic) and a 6.1 guest stalled
            # within seconds, and one CI run's 6.12 guest panicked that way
            # in the throttle tests. With one host thread running the
            # vCPUs in turn, both kernels survived the same stress.
            f"--qemu-opts=-accel tcg,thread={tcg_threads}",
            "--run", str(vmlinuz),
            # The host's /dev/kvm is not for these kernels (and not used).
            "--append", "modprobe.blacklist=kvm,kvm_amd,kvm_intel",
            "--rwdir", str(out), "--cwd", str(ROOT),
            "--exec", command]


def run_guest(vmlinuz, files, vng, cpus, tcg_threads="single"):
    release = release_of(vmlinuz)
    run = Run(release, OUT_DIR / release)
    _clean(run.out)
    (run.out / "guest.env").write_text(
        f"ROOT='{ROOT}'\nPYTHON='{sys.executable}'\n"
        f"TIMEOUT_S={PYTEST_TIMEOUT_S}\nCI='{os.environ.get('CI', '')}'\n")
    (run.out / "pytest.args").write_text(
        "\n".join(pytest_args(files)) + "\n")
    cmd = guest_cmd(vng, vmlinuz, cpus, run.out,
                    f"sh {GUEST_SCRIPT} {run.out}", tcg_threads)
    rc_file = run.out / "pytest.rc"
    failed = run.out / "boot-failure.log"
    seconds = 0.0
    for attempt in (1, 2):
        rc = _run_logged(cmd, run, BOOT_ALLOWANCE_S + PYTEST_TIMEOUT_S,
                         cwd=ROOT)
        seconds += run.seconds
        if (attempt == 2 or run.problem is not None or rc_file.exists()
                or _guest_started(run)):
            break
        # The guest died before any test code ran (once in a CI run, a
        # 6.12 guest after 5 s under emulation). That is qemu or the
        # boot, not what is tested: boot once more, keep the first log.
        run.log.replace(failed)
        log(f"{release}: guest ended while booting (vng exit code {rc}), "
            f"booting again; its log: {failed}")
    run.seconds = seconds
    if run.problem is None and not rc_file.exists():
        run.problem = f"guest ended (vng exit code {rc}) before pytest did"
        if failed.exists():
            run.problem += f"; the boot before it failed too ({failed})"
    elif run.problem is None and rc_file.read_text().strip() == "124":
        run.problem = (f"pytest did not finish within {PYTEST_TIMEOUT_S} s "
                       "in the guest")
    crash = kernel_crash(run)
    if crash:
        # A guest kernel that oopsed fails the run even if pytest ended.
        run.problem = "; ".join(filter(None, (run.problem,
                                              f"its kernel said: {crash}")))
    run.load()
    return run


def patch_stress(vmlinuz, vng, cpus, seconds, tcg_threads):
    """Boot ``vmlinuz`` and run tests/matrix/patch_stress.sh: whether the
    emulated guest survives live kernel code patching."""
    release = release_of(vmlinuz)
    run = Run(release, OUT_DIR / "patch-stress" / release)
    _clean(run.out)
    cmd = guest_cmd(vng, vmlinuz, cpus, run.out,
                    f"sh {STRESS_SCRIPT} {seconds}", tcg_threads)
    # The script's load outlives its patching by 5 s; 60 s more is slack
    # for a slow guest, after which a stalled one is killed.
    rc = _run_logged(cmd, run, BOOT_ALLOWANCE_S + seconds + 60, cwd=ROOT)
    survived = re.search(r"patch_stress: survived.*", _log_text(run))
    crash = kernel_crash(run)
    if crash or not survived:
        reason = crash or run.problem or f"vng exit code {rc}"
        run.problem = f"did not survive: {reason}"
    else:
        run.results = {"summary": survived.group(0)}
    return run


# --------------------------------------------------------------- table

def area(nodeid):
    """The tracer or layer a test file is about: test_copyup.py -> copyup,
    test_startup_unshare.py -> startup."""
    stem = pathlib.PurePath(nodeid.split("::", 1)[0]).stem
    return stem[len("test_"):].split("_", 1)[0]


def _mechs(records):
    """``tp_btf(4) tp(26)``: how many probe points used each mechanism,
    over the records' union of points."""
    points = {}
    for rec in records:
        points.update(rec["mechanisms"])
    counts = {}
    for mech in points.values():
        mech = mech or "off"    # an optional point left out
        counts[mech] = counts.get(mech, 0) + 1
    return " ".join(f"{m}({counts[m]})" for m in _ordered(counts)) or "-"


def _ordered(mechs):
    order = {m: i for i, m in enumerate(MECH_ORDER)}
    return sorted(mechs, key=lambda m: (order.get(m, 99), m))


def _forced(records):
    mechs = {m for rec in records for m in rec["mechanisms"].values() if m}
    return " ".join(_ordered(mechs)) or "-"


def rows(run):
    """(tracer, chosen, forced, tests, result) per tracer of one run."""
    by_area = {}
    for nodeid, t in (run.results or {}).get("tests", {}).items():
        by_area.setdefault(area(nodeid), []).append(t)
    out = []
    for name in sorted(by_area):
        tests = by_area[name]
        records = [r for t in tests for r in t["mechanisms"]]
        chosen = [r for r in records if not r["forced"]]
        forced = [r for r in records if r["forced"]]
        n = {k: sum(1 for t in tests if t["outcome"] == k)
             for k in ("passed", "failed", "error", "skipped")}
        ran = len(tests) - n["skipped"]
        count = f"{n['passed']}/{ran}"
        if n["skipped"]:
            count += f" +{n['skipped']}s"
        result = "pass" if n["failed"] + n["error"] == 0 else "FAIL"
        out.append((name, _mechs(chosen), _forced(forced), count, result))
    return out


def _points(run):
    points = {}
    for t in (run.results or {}).get("tests", {}).values():
        for rec in t["mechanisms"]:
            if not rec["forced"]:
                points.update(rec["mechanisms"])
    return points


def print_table(runs):
    head = ("kernel", "tracer", "chosen mechanism (points)",
            "also forced", "tests", "result")
    lines = []
    for run in runs:
        rs = rows(run)
        if not rs:
            lines.append((run.name, "-", "-", "-", "-",
                          "FAIL" if not run.ok else "pass"))
        for r in rs:
            lines.append((run.name, *r))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    log("kernel matrix: kernel x tracer x mechanism x result")
    print(fmt.format(*head).rstrip())
    print(fmt.format(*("-" * w for w in widths)).rstrip())
    last = None
    for line in lines:
        shown = list(line)
        if line[0] == last:
            shown[0] = ""
        last = line[0]
        print(fmt.format(*shown).rstrip())

    # The probe points whose mechanism is not the same everywhere.
    per_run = [_points(r) for r in runs]
    names = sorted({p for pts in per_run for p in pts})
    differ = [p for p in names
              if len({pts.get(p, "-") for pts in per_run}) > 1]
    if differ:
        print()
        print("probe points whose mechanism differs between kernels:")
        cols = ["point"] + [r.name for r in runs]
        table = [[p] + [pts.get(p, "-") or "off" for pts in per_run]
                 for p in differ]
        w = [max(len(x) for x in col) for col in zip(cols, *table)]
        f = "  ".join(f"{{:<{x}}}" for x in w)
        print(f.format(*cols).rstrip())
        for row in table:
            print(f.format(*row).rstrip())
    print()
    for run in runs:
        state = "ok" if run.ok else f"FAILED ({run.problem or 'tests failed'})"
        print(f"{run.name}: {run.seconds:.0f} s, {state}")


def report_failures(runs):
    for run in runs:
        if run.ok:
            continue
        print()
        log(f"{run.name} failed: {run.problem or 'tests failed'}")
        for nodeid in run.failed_tests:
            print(f"    {nodeid}")
        print(f"---- output of {run.name} ({run.log}) ----")
        try:
            sys.stdout.write(run.log.read_text(errors="replace"))
        except OSError as err:
            print(f"(no output: {err})")
        print(f"---- end of output of {run.name} ----", flush=True)


# ---------------------------------------------------------------- main

def main_patch_stress(kernels, vng, args):
    ok = True
    for vmlinuz in kernels:
        log(f"booting {release_of(vmlinuz)} under qemu (TCG, "
            f"thread={args.tcg_threads}) for {args.patch_stress} s of "
            "code patching")
        run = patch_stress(vmlinuz, vng, args.cpus, args.patch_stress,
                           args.tcg_threads)
        if run.problem:
            ok = False
            log(f"{run.name}: {run.problem} ({run.seconds:.0f} s; "
                f"its log: {run.log})")
        else:
            log(f"{run.name}: {run.results['summary']} "
                f"({run.seconds:.0f} s)")
    return 0 if ok else 1


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Run the kernel-dependent tests on the host and in "
                    "other kernels under qemu.")
    parser.add_argument("--kernel", action="append", type=pathlib.Path,
                        help="a kernel image to boot (repeatable; default: "
                             f"every {KERNELS_DIR}/*/boot/vmlinuz-*); its "
                             "modules must be in ../lib/modules")
    parser.add_argument("--jobs", type=int, default=1,
                        help="guests booted at once (default 1: on 2 cores "
                             "two guests at once took longer in all, 384 s "
                             "against 261 s, and timing-bound tests failed)")
    parser.add_argument("--cpus", type=int, default=2,
                        help="CPUs of each guest (default 2)")
    parser.add_argument("--no-host", action="store_true",
                        help="skip the run on the host's kernel")
    parser.add_argument("--patch-stress", type=int, metavar="SECONDS",
                        help="instead of the tests, check that each guest "
                             "survives SECONDS of live kernel code "
                             "patching (tests/matrix/patch_stress.sh)")
    parser.add_argument("--tcg-threads", choices=("single", "multi"),
                        default="single",
                        help="qemu's TCG threading (default single; multi "
                             "is qemu's own default, which crashes guests "
                             "under --patch-stress)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("must run as root (BPF, qemu's 9p export of /)")
    if args.patch_stress is not None and args.patch_stress < 1:
        parser.error("--patch-stress needs a positive number of seconds")

    start = time.monotonic()
    try:
        kernels = args.kernel or find_kernels()
        vng = find_vng()
        if args.patch_stress is not None:
            return main_patch_stress(kernels, vng, args)
        log("building (make)")
        subprocess.run(["make", "-s", f"PYTHON={sys.executable}"],
                       cwd=ROOT, check=True, timeout=600)
        files = selected_files()
        log(f"kernel tests: {' '.join(files)}")
    except (MatrixError, subprocess.SubprocessError) as err:
        print(f"kernel_matrix: {err}", file=sys.stderr)
        return 2

    runs = []
    if not args.no_host:
        log(f"host kernel {os.uname().release}")
        runs.append(run_host(files))
        print(f"    {runs[-1].seconds:.0f} s, "
              f"{'ok' if runs[-1].ok else 'FAILED'}", flush=True)

    def one(vmlinuz):
        log(f"booting {release_of(vmlinuz)} under qemu (TCG)")
        run = run_guest(vmlinuz, files, vng, args.cpus, args.tcg_threads)
        log(f"{run.name}: {run.seconds:.0f} s, "
            f"{'ok' if run.ok else 'FAILED'}")
        return run

    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        runs += list(pool.map(one, kernels))

    print_table(runs)
    report_failures(runs)
    log(f"kernel matrix took {time.monotonic() - start:.0f} s")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
