"""The audit's pure parts: version ranges, Docker's capability
arithmetic, mountinfo parsing, the CIS table against the catalogue, and
the three output formats."""

import json
import os

import pytest

from dockertrace import Error
from dockertrace.audit import (EXIT_FINDINGS, RULES, AuditFailed,
                               Severity, report_from)
from dockertrace.audit import cis, report
from dockertrace.audit.caps import DEFAULT_MASK, declared_bounding
from dockertrace.audit.collect import load_recorded
from dockertrace.audit.daemon import parse_version, vulnerable
from dockertrace.audit.procfs import cap_mask, cap_names, parse_mounts

FULL = (1 << 41) - 1
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "audit")


@pytest.mark.parametrize("version,fixed,expected", [
    ("1.1.5+ds1", ("1.1.12",), True),
    ("1.1.12", ("1.1.12",), False),
    ("1.1.15", ("1.1.12",), False),
    ("1.0.0-rc6", ("1.0.0-rc7",), True),
    ("1.0.0-rc93", ("1.0.0-rc95",), True),
    ("1.0.0", ("1.0.0-rc95",), False),
    ("1.2.7", ("1.2.8", "1.3.3", "1.4.0-rc.3"), True),
    ("1.3.3", ("1.2.8", "1.3.3", "1.4.0-rc.3"), False),
    ("1.1.14", ("1.2.8", "1.3.3", "1.4.0-rc.3"), True),
    ("1.4.0-rc.2", ("1.2.8", "1.3.3", "1.4.0-rc.3"), True),
    ("1.4.0", ("1.2.8", "1.3.3", "1.4.0-rc.3"), False),
    ("1.6.20~ds1", ("1.4.13", "1.5.10", "1.6.1"), False),
    ("1.4.12", ("1.4.13", "1.5.10", "1.6.1"), True),
    ("garbage", ("1.0",), False),
])
def test_vulnerable_ranges(version, fixed, expected):
    assert vulnerable(version, fixed) is expected


def test_release_candidates_sort_before_release():
    assert parse_version("1.0.0-rc95") < parse_version("1.0.0")
    assert parse_version("1.4.0-rc.3") < parse_version("1.4.0")


def test_default_capability_set_is_dockers():
    # CapEff of a default container, measured on Docker 20.10.
    assert DEFAULT_MASK == 0xa80425fb


@pytest.mark.parametrize("hc,expected", [
    ({}, 0xa80425fb),
    ({"CapAdd": ["SYS_ADMIN"]}, 0xa80425fb | 1 << 21),
    ({"CapAdd": ["CAP_SYS_ADMIN"]}, 0xa80425fb | 1 << 21),
    ({"CapDrop": ["ALL"]}, 0),
    ({"CapDrop": ["ALL"], "CapAdd": ["NET_BIND_SERVICE"]}, 1 << 10),
    ({"CapAdd": ["ALL"], "CapDrop": ["SYS_RESOURCE"]}, FULL & ~(1 << 24)),
    ({"Privileged": True, "CapDrop": ["ALL"]}, FULL),
    ({"CapDrop": ["NET_RAW", "MKNOD"]},
     0xa80425fb & ~cap_mask(["NET_RAW", "MKNOD"])),
])
def test_declared_bounding(hc, expected):
    assert declared_bounding(hc, FULL) == expected


def test_cap_names_roundtrip():
    names = cap_names(0xa80425fb)
    assert "NET_RAW" in names and "SYS_ADMIN" not in names
    assert cap_mask(names) == 0xa80425fb


def test_mountinfo_tags_and_escapes():
    text = ("81 54 0:41 / / rw,relatime master:2 - overlay overlay rw\n"
            "90 81 0:60 / /sh\\040ared rw shared:7 master:3 - tmpfs x rw\n"
            "91 81 254:0 /run/docker.sock /odd ro - ext4 /dev/vda rw\n")
    root, shared, sock = parse_mounts(text)
    assert not root.shared and not root.read_only
    assert shared.shared and shared.mount_point == "/sh ared"
    assert sock.read_only and sock.root == "/run/docker.sock"
    assert sock.dev == "254:0" and sock.fstype == "ext4"


def test_cis_table_names_existing_checks():
    for cid, (_title, checks, _why) in cis.SECTION_5.items():
        for check in checks:
            assert check in RULES, (cid, check)
    assert len(cis.SECTION_5) == 31
    # Every rule that claims a 5.x item is listed under it.
    for r in RULES.values():
        for c in r.cis:
            if c.startswith("5."):
                assert r.id in cis.SECTION_5[c][1], (r.id, c)


def test_severity_parse_and_order():
    assert Severity.parse("High") == Severity.HIGH
    assert Severity.CRITICAL > Severity.HIGH > Severity.INFO
    with pytest.raises(ValueError):
        Severity.parse("urgent")


def test_audit_failed_exit_code_is_distinct():
    from dockertrace import errors
    codes = {cls.exit_code for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, Error)
             and cls is not Error}
    assert EXIT_FINDINGS == 9 and EXIT_FINDINGS not in codes
    err = AuditFailed(Severity.HIGH, [])
    assert isinstance(err, Error) and err.exit_code == 9


@pytest.fixture(scope="module")
def privileged_report():
    return report_from(load_recorded(os.path.join(FIXTURES, "privileged")))


def test_table_fits_80_columns(privileged_report):
    for verbose in (False, True):
        text = report.to_table(privileged_report, verbose=verbose)
        assert max(len(ln) for ln in text.splitlines()) <= 79
    text = report.to_table(privileged_report)
    assert "critical privileged" in " ".join(text.split())
    assert "1 container(s) audited" in text


def test_table_hides_below_min_severity(privileged_report):
    text = report.to_table(privileged_report,
                           min_severity=Severity.CRITICAL)
    assert "caps.dangerous" not in text or "critical" in text
    assert " low " not in text


def test_json_roundtrips(privileged_report):
    d = json.loads(report.to_json(privileged_report))
    (c,) = d["containers"]
    assert c["status"] == "audited"
    checks = {f["check"] for f in c["findings"]}
    assert "privileged" in checks
    assert d["counts"]["critical"] >= 1


def test_sarif_shape(privileged_report):
    doc = json.loads(report.to_sarif(privileged_report))
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == set(RULES)
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
        assert res["locations"][0]["logicalLocations"][0]["name"]
    priv = [r for r in run["results"] if r["ruleId"] == "privileged"]
    assert priv[0]["level"] == "error"
    assert priv[0]["properties"]["security-severity"] == "9.5"
