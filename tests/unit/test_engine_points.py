"""Grouping programs into probe points and choosing mechanisms (no root)."""

import pytest

from dockertrace.engine import points
from dockertrace.engine.points import Point, candidates, group_points

S, N, U = "supported", "not supported", "unknown"


def feats(**outcomes):
    """A feature map: every mechanism supported unless overridden."""
    base = {f: S for f in points.FEATURE_OF.values()}
    base.update(outcomes)
    return base


@pytest.mark.parametrize("name, expected", [
    ("dt_copyup_e__fentry", ("dt_copyup", "fentry")),
    ("dt_copyup_x__fentry", ("dt_copyup", "fentry")),
    ("dt_copyup_e__kprobe", ("dt_copyup", "kprobe")),
    ("dt_copyup__tp_btf", ("dt_copyup", "tp_btf")),
    ("dt_copyup__raw_tp", ("dt_copyup", "raw_tp")),
    ("dt_st_openat_x__tp", ("dt_st_openat", "tp")),
    # Without "__" a program is a point of its own, _e/_x included.
    ("dt_iter_tasks", ("dt_iter_tasks", None)),
    ("dt_su_execve_e", ("dt_su_execve_e", None)),
    # Only one trailing _e/_x is the entry/exit mark.
    ("dt_a_e_x__tp", ("dt_a_e", "tp")),
    ("dt_exe__tp", ("dt_exe", "tp")),
])
def test_split_name(name, expected):
    assert points.split_name(name) == expected


@pytest.mark.parametrize("name, message", [
    ("dt_copyup__uprobe", "unknown mechanism suffix __uprobe"),
    ("dt_copyup__", "unknown mechanism suffix __"),
    ("__fentry", "no point name"),
])
def test_split_name_rejects(name, message):
    with pytest.raises(ValueError, match=message):
        points.split_name(name)


@pytest.mark.parametrize("section, kind", [
    ("fentry/ovl_copy_up_one", "fentry"),
    ("fexit/ovl_copy_up_one", "fentry"),
    ("kprobe/do_sys_openat2", "kprobe"),
    ("kretprobe/do_sys_openat2", "kprobe"),
    ("tp_btf/sched_process_exec", "tp_btf"),
    ("raw_tp/sched_process_exec", "raw_tp"),
    ("raw_tracepoint/sched_process_exec", "raw_tp"),
    ("tracepoint/syscalls/sys_enter_openat", "tp"),
    ("tp/syscalls/sys_enter_openat", "tp"),
    ("iter/task", "iter"),
    ("lsm/file_open", "lsm"),
    ("socket", "socket"),
])
def test_section_kind(section, kind):
    assert points.section_kind(section) == kind


def test_group_points_design_example():
    # The example of docs/design.md.
    grouped = group_points([
        ("dt_copyup_e__fentry", "fentry/ovl_copy_up_one"),
        ("dt_copyup_x__fentry", "fexit/ovl_copy_up_one"),
        ("dt_copyup_e__kprobe", "kprobe/ovl_copy_up_one"),
        ("dt_copyup_x__kprobe", "kretprobe/ovl_copy_up_one"),
        ("dt_copyup__tp_btf", "tp_btf/ext4_request_inode"),
        ("dt_iter", "iter/task"),
    ])
    assert list(grouped) == ["dt_copyup", "dt_iter"]
    copyup = grouped["dt_copyup"]
    assert copyup.programs == {
        "fentry": ("dt_copyup_e__fentry", "dt_copyup_x__fentry"),
        "kprobe": ("dt_copyup_e__kprobe", "dt_copyup_x__kprobe"),
        "tp_btf": ("dt_copyup__tp_btf",),
    }
    assert copyup.mechanisms == ("fentry", "kprobe", "tp_btf")
    assert not copyup.fixed
    assert grouped["dt_iter"] == Point("dt_iter", {None: ("dt_iter",)})
    assert grouped["dt_iter"].fixed
    assert grouped["dt_iter"].mechanisms == ()


def test_group_points_names_only():
    grouped = group_points(["dt_a__tp", "dt_b", "dt_a__raw_tp"])
    assert grouped["dt_a"].mechanisms == ("raw_tp", "tp")


@pytest.mark.parametrize("programs, message", [
    ([("dt_a__tp", "fentry/vfs_read")], "section 'fentry/vfs_read' is a "
     "fentry program"),
    ([("dt_a__kprobe", "tp_btf/sched_switch")], "suffix __kprobe"),
    (["dt_a", "dt_a__tp"], "mixes"),
    (["dt_a__tp", "dt_a"], "mixes"),
])
def test_group_points_rejects(programs, message):
    with pytest.raises(ValueError, match=message):
        group_points(programs)


OPENAT = Point("dt_st_openat", {"fentry": ("e", "x"), "kprobe": ("e", "x"),
                                "tp": ("e", "x")})
EXEC = Point("dt_st_exec", {"tp_btf": ("p",), "raw_tp": ("p",)})
ALL = Point("dt_all", {m: ("p",) for m in points.MECHANISMS})


@pytest.mark.parametrize("point, features, allow, exclude, expected", [
    # Best first when everything is there.
    (ALL, feats(), None, None, ["fentry", "kprobe", "tp_btf", "raw_tp",
                                "tp"]),
    # This machine: no fentry, no kprobes.
    (OPENAT, feats(fentry=N, kprobe=N), None, None, ["tp"]),
    (EXEC, feats(fentry=N, kprobe=N), None, None, ["tp_btf", "raw_tp"]),
    # A typical distribution kernel.
    (OPENAT, feats(), None, None, ["fentry", "kprobe", "tp"]),
    # fentry denied, kprobes there.
    (OPENAT, feats(fentry=N), None, None, ["kprobe", "tp"]),
    # An unknown answer is tried, after the sure ones.
    (OPENAT, feats(fentry=U), None, None, ["kprobe", "tp", "fentry"]),
    (OPENAT, {}, None, None, ["fentry", "kprobe", "tp"]),
    # No BTF: no tp_btf, raw_tp remains.
    (EXEC, feats(tp_btf=N), None, None, ["raw_tp"]),
    (EXEC, feats(tp_btf=N, raw_tp=N), None, None, []),
    # allow / exclude, global and per point.
    (OPENAT, feats(), {"tp"}, None, ["tp"]),
    (OPENAT, feats(), "kprobe", None, ["kprobe"]),
    (OPENAT, feats(), None, {"fentry"}, ["kprobe", "tp"]),
    (OPENAT, feats(), {"dt_st_openat": {"kprobe", "tp"}}, None,
     ["kprobe", "tp"]),
    (OPENAT, feats(), {"dt_st_exec": {"raw_tp"}}, None,
     ["fentry", "kprobe", "tp"]),
    (OPENAT, feats(), None, {"dt_st_openat": "tp"}, ["fentry", "kprobe"]),
    (EXEC, feats(), {"tp"}, None, []),
    # allow cannot bring back what the kernel lacks.
    (OPENAT, feats(fentry=N), {"fentry"}, None, []),
])
def test_candidates(point, features, allow, exclude, expected):
    assert candidates(point, features, allow, exclude) == expected


def test_candidates_fixed_point():
    fixed = Point("dt_iter", {None: ("dt_iter",)})
    assert candidates(fixed, feats(), {"tp"}, None) == [None]


def test_candidates_accepts_probe_objects():
    class Answer:  # what engine.features returns, without the C layer
        def __init__(self, outcome):
            self.outcome = outcome

    features = {"fentry": Answer(N), "kprobe": Answer(S),
                "tracepoint": Answer(S)}
    assert candidates(OPENAT, features) == ["kprobe", "tp"]


def test_candidates_rejects_unknown_mechanism():
    with pytest.raises(ValueError, match="unknown mechanism 'uprobe'"):
        candidates(OPENAT, feats(), {"uprobe"})


def test_choose():
    grouped = {"dt_st_openat": OPENAT, "dt_st_exec": EXEC}
    assert points.choose(grouped, feats(fentry=N, kprobe=N)) == {
        "dt_st_openat": ["tp"], "dt_st_exec": ["tp_btf", "raw_tp"]}
