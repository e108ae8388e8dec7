"""The audit's checks over recorded fixture trees: containers that cannot
be started here (privileged) and kernel states that Docker would not
produce by itself (capabilities or limits the configuration does not
declare).  No root and no daemon needed.
"""

import os

import pytest

from dockertrace.audit import Severity, report_from
from dockertrace.audit.collect import load_recorded

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "audit")


def _audit(name):
    report = report_from(load_recorded(os.path.join(FIXTURES, name)))
    (container,) = report.containers
    assert container.status == "audited", container.notes
    return report, container.findings


def _by_id(findings):
    out = {}
    for f in findings:
        out.setdefault(f.check_id, []).append(f)
    return out


def test_privileged_declared_and_evidenced():
    _, findings = _audit("privileged")
    got = _by_id(findings)
    (priv,) = got["privileged"]
    assert priv.severity == Severity.CRITICAL
    assert priv.title == "runs privileged"
    assert priv.declared == {"Privileged": True}
    assert priv.effective == {"full capability set": True,
                              "seccomp off": True, "all devices": True}
    assert any("devices.list" in k for k in priv.evidence)
    assert priv.cis == ("5.4",)
    # Declared privileged means the full set is what was asked for.
    assert "caps.mismatch" not in got
    assert "seccomp.disabled" in got
    # Its devices are part of the privileged finding, not a second one.
    assert "devices.host" not in got


def test_privileged_without_the_flag_is_still_found():
    _, findings = _audit("privileged_undeclared")
    got = _by_id(findings)
    (priv,) = got["privileged"]
    assert priv.title == "has every privilege without --privileged"
    assert priv.declared == {"Privileged": False}
    assert "caps.dangerous" in got
    # CapAdd ALL grants the full set, so the kernel matches the config.
    assert "caps.mismatch" not in got
    (dev,) = got["devices.host"]
    assert dev.severity == Severity.CRITICAL


def test_capability_beyond_declaration():
    _, findings = _audit("caps_mismatch")
    got = _by_id(findings)
    (mis,) = got["caps.mismatch"]
    assert mis.severity == Severity.HIGH
    assert "SYS_ADMIN" in mis.title
    assert "SYS_ADMIN" not in mis.declared["bounding"]
    assert "SYS_ADMIN" in mis.effective["bounding"]
    assert "SYS_ADMIN" in got["caps.dangerous"][0].title


def test_default_container():
    _, findings = _audit("default")
    got = set(_by_id(findings))
    assert {"caps.defaults", "nnp.off", "user.root", "rootfs.writable",
            "limits.memory", "limits.pids", "limits.cpu", "health.none",
            "image.unpinned", "net.default_bridge", "ns.cgroup"} == got


def test_hardened_container_has_no_findings():
    _, findings = _audit("hardened")
    assert findings == ()


def test_remapped_root_is_not_host_root():
    _, findings = _audit("userns")
    got = set(_by_id(findings))
    assert "user.root" not in got
    assert "ns.user" not in got


def test_limit_the_kernel_does_not_enforce():
    _, findings = _audit("limits_mismatch")
    (mis,) = [f for f in findings if f.check_id == "limits.mismatch"]
    assert mis.declared == {"Memory": 64 * 2**20}
    assert mis.effective == "1073741824"
    assert list(mis.evidence) == [
        p for p in mis.evidence if p.endswith("memory.limit_in_bytes")]


def test_daemon_checks_on_recorded_host():
    report, _ = _audit("default")
    got = {f.check_id for f in report.daemon_findings}
    # This host: no userns-remap, no live-restore, icc on, no MAC LSM.
    assert {"daemon.userns", "daemon.live_restore",
            "daemon.icc"} <= got
    runc = [f for f in report.daemon_findings
            if f.check_id == "daemon.runc_cve"]
    # Debian's 1.1.5+ds1-1+deb12u1 carries the CVE-2024-21626 fix.
    assert not any("CVE-2024-21626" in f.title for f in runc)


def test_gone_when_the_pid_is_someone_elses(tmp_path):
    import shutil
    import json
    d = tmp_path / "reused"
    shutil.copytree(os.path.join(FIXTURES, "default"), d, symlinks=True)
    data = json.loads((d / "inspect.json").read_text())
    pid = data["State"]["Pid"]
    (d / "root" / "proc" / str(pid) / "cgroup").write_text(
        "0::/user.slice/other\n")
    report = report_from(load_recorded(str(d)))
    (c,) = report.containers
    assert c.status == "gone"
    assert c.findings == ()


@pytest.mark.parametrize("name", ["default", "hardened", "privileged"])
def test_every_finding_is_complete(name):
    report, findings = _audit(name)
    for f in list(findings) + list(report.daemon_findings):
        d = f.to_dict()
        assert d["check"] and d["title"] and d["remedy"]
        assert d["severity"] in ("info", "low", "medium", "high",
                                 "critical")
        assert all(c.startswith("CIS ") for c in d["cis"])
        if f.container is not None:
            assert set(d["container"]) == {"id", "name", "image"}
