"""The copy-up tracer with real BPF: real containers (root + docker), and
a hand-made overlay mount that needs no Docker (root only), which the
kernel matrix also runs on kernels with fentry and kprobes."""

import os
import pathlib
import subprocess

import pytest

from dockertrace.copyup import CopyupTracer, layers_of

DOCKER = [pytest.mark.root, pytest.mark.docker]

# dockertrace-bigfiles: sizes from a few bytes to tens of MiB.
# SHA256SUMS holds three lines of "<64 hex>  <name>\n".
IMAGE_FILES = {"/data/SHA256SUMS": 3 * (64 + 2 + 1) + 3 + 3 + 4,
               "/data/f4k": 4096, "/data/f1m": 1 << 20,
               "/data/f64m": 64 << 20}


@pytest.fixture(scope="module")
def tracer():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with CopyupTracer() as t:
        yield t


def _run(container_factory, image, script, **kw):
    """Run ``script`` in a container to its end; return the container."""
    c = container_factory(["sh", "-c", script], image=image, **kw)
    assert c.wait(timeout=60)["StatusCode"] == 0, c.logs()
    return c


def _mine(tracer, c):
    tracer.settle()
    return [e for e in tracer.seen() if e.container_id == c.id]


@pytest.mark.root
@pytest.mark.docker
def test_each_image_file_written_is_one_copyup(tracer, container_factory,
                                               bigfiles_image):
    # `: >>` opens for appending and writes nothing: the size copied is
    # the image's.
    script = "; ".join(f": >> {p}" for p in IMAGE_FILES)
    c = _run(container_factory, bigfiles_image, script)
    evs = _mine(tracer, c)

    assert [(e.path, e.size_bytes) for e in evs] == list(
        IMAGE_FILES.items())
    for e in evs:
        assert (e.file_type, e.copy, e.trigger) == ("file", "data",
                                                     "open-write")
        assert e.container_name == c.name
        assert e.comm == "sh" and e.syscall in ("openat", "open")
        assert e.mechanism == tracer.mechanism
        assert 0 < e.latency_ns <= (e.syscall_ns or e.latency_ns)
    # /data itself came up with the first file, as a parent.
    assert [e.dirs_copied for e in evs] == [1, 0, 0, 0]
    # Bigger files take longer to copy.
    assert evs[3].latency_ns > evs[1].latency_ns
    assert tracer.dropped_events == 0


@pytest.mark.root
@pytest.mark.docker
def test_own_files_and_second_writes_make_no_copyup(tracer,
                                                    container_factory,
                                                    bigfiles_image):
    # /own is new in the upper layer, whose root always exists there, so
    # nothing is copied for it; the second write finds f4k already up.
    c = _run(container_factory, bigfiles_image,
             "mkdir /own && echo a > /own/f && echo b >> /own/f && "
             "chmod 600 /own/f && : >> /data/f4k && : >> /data/f4k && "
             "echo c >> /data/f4k && chmod 600 /data/f4k")
    evs = _mine(tracer, c)
    assert [(e.path, e.trigger) for e in evs] == [("/data/f4k",
                                                   "open-write")]


@pytest.mark.root
@pytest.mark.docker
def test_triggers_other_than_open(tracer, container_factory,
                                  bigfiles_image):
    c = _run(container_factory, bigfiles_image,
             "chmod 600 /data/f4k; chown 1:1 /data/f1m; cd /data && "
             "touch SHA256SUMS; ln /bin/cat /hl; mv /bin/cp /cp2")
    got = [(e.trigger, e.path, e.file_type) for e in _mine(tracer, c)]
    assert got == [("chmod", "/data/f4k", "file"),
                   ("chown", "/data/f1m", "file"),
                   ("utimes", "/data/SHA256SUMS", "file"),
                   ("link", "/bin/cat", "symlink"),
                   ("rename", "/bin/cp", "symlink")]


@pytest.mark.root
@pytest.mark.docker
def test_two_containers_at_once(tracer, container_factory, bigfiles_image):
    script = ("sleep 0.5; for i in 1 2 3; do : >> /data/f1m; "
              ": >> /data/f4k; done; : >> /data/SHA256SUMS")
    cs = [container_factory(["sh", "-c", script], image=bigfiles_image)
          for _ in range(2)]
    for c in cs:
        assert c.wait(timeout=60)["StatusCode"] == 0
    tracer.settle()
    for c in cs:
        evs = [e for e in tracer.seen() if e.container_id == c.id]
        assert [e.path for e in evs] == ["/data/f1m", "/data/f4k",
                                         "/data/SHA256SUMS"]
        assert {e.container_name for e in evs} == {c.name}


@pytest.mark.root
@pytest.mark.docker
def test_daemon_mount_work_is_not_reported(tracer, container_factory,
                                           busybox_image):
    before = len(tracer.seen())
    c = _run(container_factory, busybox_image, "true")
    tracer.settle()
    # dockerd creates inodes in the new work dir at mount time; none of
    # it is a copy-up.
    assert tracer.seen()[before:] == []
    assert _mine(tracer, c) == []


@pytest.mark.root
@pytest.mark.docker
def test_summary_and_container_filter(container_factory, bigfiles_image):
    c = container_factory(["sh", "-c", "sleep 2; : >> /data/f1m"],
                          image=bigfiles_image)
    other = container_factory(["sh", "-c", "sleep 2; : >> /data/f4k"],
                              image=bigfiles_image)
    with CopyupTracer(containers=[c.name]) as t:
        c.wait(timeout=30)
        other.wait(timeout=30)
        t.settle()
        s = t.summary()
    assert [x.container_name for x in s.containers] == [c.name]
    cs = s.containers[0]
    assert (cs.count, cs.bytes) == (1, 1 << 20)
    assert cs.top_by_bytes[0].path == "/data/f1m"
    assert cs.p50_latency_ns == cs.p99_latency_ns > 0


@pytest.mark.root
@pytest.mark.docker
def test_layers_of_a_container(container_factory, bigfiles_image):
    c = container_factory(["sleep", "30"], image=bigfiles_image)
    lay = layers_of(c.name)
    roles = [x.role for x in lay.layers]
    # The image's layer and Docker's init layer under the upper.
    assert roles == ["upper", "lower", "lower"]
    assert lay.layers[-1].size_bytes > 64 << 20
    assert lay.copy_options["metacopy"] == "off"
    assert lay.whole_file_copies
    assert lay.work_dir.endswith("/work")


# Without Docker: a hand-made overlay in a private mount namespace.

SIZES = {"tiny": 5, "k4": 4096, "m1": 1 << 20, "m8": 8 << 20}


def _ext4_dir():
    """A directory on ext4: the tracepoint mechanism sees only ext4."""
    for d in ("/var/tmp", "/tmp", "/root", "/"):
        try:
            out = subprocess.run(["stat", "-f", "-c", "%T", d],
                                 capture_output=True, text=True).stdout
        except OSError:
            break
        if out.startswith("ext2/ext3"):
            return d
    return None


def _expected_mechanism():
    from dockertrace import engine
    feats = engine.probe_all()
    if feats["fentry"].supported:
        return "fentry"
    if feats["kprobe"].supported:
        return "kprobe"
    return "tracepoint"


@pytest.mark.root
@pytest.mark.kernel
def test_hand_made_overlay_exact_events(tmp_path, record_mechanism):
    expected = _expected_mechanism()
    base = tmp_path
    if expected == "tracepoint":
        ext4 = _ext4_dir()
        if ext4 is None:
            pytest.skip("tracepoint mechanism needs an ext4 directory")
        import tempfile
        base = pathlib.Path(tempfile.mkdtemp(prefix="dt-copyup-",
                                             dir=ext4))
    try:
        _hand_made(base, expected, record_mechanism)
    finally:
        if base != tmp_path:
            subprocess.run(["rm", "-rf", str(base)])


def _hand_made(base, expected, record_mechanism):
    lower, upper, work, merged = (base / n for n in ("lower", "upper",
                                                     "work", "merged"))
    for d in (lower / "sub", upper, work, merged):
        d.mkdir(parents=True)
    for name, size in SIZES.items():
        (lower / "sub" / name).write_bytes(b"d" * size)
    (lower / "sub" / "untouched").write_bytes(b"u")

    writes = " ".join(f"{merged}/sub/{n}" for n in SIZES)
    script = (
        f"mount -t overlay overlay -o lowerdir={lower},upperdir={upper},"
        f"workdir={work} {merged} && "
        f"for f in {writes}; do : >> $f; : >> $f; done && "
        f"echo new > {merged}/sub/own && echo more >> {merged}/sub/own && "
        # Keep the namespace (and its mount table) alive a moment.
        "sleep 1")
    got = []
    with CopyupTracer(on_event=got.append) as t:
        assert t.mechanism == expected, t.failures
        record_mechanism("copyup", t.mechanisms)
        proc = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             script], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        t.settle(quiet_s=0.5)
        dropped = t.dropped_events
    assert [(e.path, e.size_bytes) for e in got] == [
        (f"/sub/{n}", s) for n, s in SIZES.items()]
    assert [e.dirs_copied for e in got] == [1, 0, 0, 0]
    assert all(e.container_id is None and e.mechanism == expected
               for e in got)
    assert all(e.latency_ns > 0 for e in got)
    assert dropped == 0
