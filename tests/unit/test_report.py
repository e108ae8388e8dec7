"""The report renderers on a SuiteResult built here by hand: what is under
test is the rendering, so the numbers only need to be plausible."""

import base64
import json
import os
import re
import struct

import pytest
from click.testing import CliRunner

import dockertrace
from dockertrace.bench.model import (Environment, Figure, Section, Series,
                                     SuiteResult, Table)
from dockertrace.report import (build_report, load, summarize_audit,
                                write_report)
from dockertrace.report.data import AuditSummary, audit_unavailable


def _env():
    return Environment(
        kernel="6.1.0-test", os="Debian GNU/Linux 12 (bookworm)",
        docker_version="20.10.24", api_version="1.41",
        containerd_version="1.6.20", runc_version="1.1.5",
        storage_driver="overlay2", cgroup_driver="cgroupfs",
        cgroup_version="2", cpu_model="Test CPU @ 2.0GHz", cpus=2,
        memory_bytes=24 * 1024 ** 3, python="3.11.7",
        dockertrace_version="0.1.0", features={"fentry": "supported"})


PHASES = ("api", "rootfs", "runc", "network", "exec")


def _startup():
    durs = {"warm": [8.0, 9.0, 12.0, 150.0, 2.0],
            "cold": [9.0, 30.0, 14.0, 160.0, 3.0]}
    starts = {k: [sum(v[:i]) for i in range(len(v))]
              for k, v in durs.items()}
    return Section(
        name="startup", title="Container start",
        figures=(
            Figure("startup.warm.bridge.total_ms", "warm start, bridge",
                   181.0, "ms", (170.2, 190.9), "median of 3 starts"),
            Figure("startup.warm.host.total_ms", "warm start, host",
                   0.12, "s", None, "median of 3 starts"),
        ),
        tables=(Table("Phases (ms)", ("phase", "warm"),
                      tuple((p, d) for p, d in zip(PHASES,
                                                   durs["warm"]))),),
        series=(Series("startup.waterfall.bridge", "Start waterfall",
                       "waterfall", PHASES, starts, durs),),
        explanation=("The network hook is most of a bridge start.",),
        rerun="sudo dockertrace startup --runs 3 -- dockertrace-busybox",
        mechanisms={"dt_su_exec": "tp_btf", "dt_su_mount": "fentry"},
        dropped_events=0)


def _io():
    sizes = (4096, 1 << 20, 64 << 20)
    return Section(
        name="io", title="Copy-up | OverlayFS",
        figures=(Figure("io.copyup.f64m.cost_ms", "copy-up of 64 MiB",
                        0.7, "s"),
                 Figure("io.unknown.key", "something new", 3.0, "widgets")),
        series=(Series("io.copyup", "Copy-up cost by size", "line", sizes,
                       {"copy-up": [0.05, 2.0, 700.0]},
                       x_label="file size (bytes)", y_label="ms",
                       log_x=True),),
        rerun="sudo dockertrace bench io --runs 3")


def _cpu():
    t = tuple(i * 0.1 for i in range(20))
    return Section(
        name="cpu", title="CPU throttling",
        figures=(Figure("cpu.limit_0_5.throttled_pct", "periods throttled",
                        97.5, "%"),
                 Figure("cpu.limit_0_5.tick_delay_p95_ms", "ticker delay",
                        4.2, "ms")),
        series=(
            Series("cpu.timeline", "Throttling timeline", "timeline", t,
                   {"throttled ms": [i % 3 for i in range(20)]},
                   y2={"usage ms": [5 + i % 2 for i in range(20)]}),
            Series("cpu.bars", "Latency by network mode", "bars",
                   ("bridge", "host", "none"),
                   {"p50": [40.0, 20.0, 18.0], "p99": [90.0, 30.0, None]}),
        ),
        rerun="sudo dockertrace bench cpu")


def _suite(*sections):
    return SuiteResult(
        environment=_env(),
        sections=sections or (_startup(), _io(), _cpu(),
                              Section("network", "Network",
                                      error="dockerd went away")),
        started_at="2026-11-01T10:00:00+00:00", duration_s=42.5,
        command="sudo dockertrace report --runs 3")


def _audit():
    finding = {
        "check": "caps.dangerous", "title": "adds SYS_ADMIN",
        "severity": "high",
        "container": {"id": "abc" * 8, "name": "web", "image": "nginx"},
        "declared": ["SYS_ADMIN"], "effective": "0x00000000a82425fb",
        "evidence": {"/proc/1/status": "CapEff: ..."},
        "remedy": "--cap-drop SYS_ADMIN", "cis": ["CIS 5.3"]}
    return AuditSummary(available=True,
                        counts={"high": 1, "medium": 0, "info": 2},
                        findings=(finding,), scope="1 container",
                        elapsed_s=0.31)


# ------------------------------------------------------------- verdicts

def test_verdicts_grade_convert_and_say_what_is_missing():
    rep = build_report(_suite(), _audit())
    by = {v.key: v for v in rep.verdicts}
    bridge = by["startup.warm.bridge.total_ms"]
    assert (bridge.grade, bridge.value) == ("good", 181.0)
    # Reported in seconds, judged in the threshold's milliseconds.
    host = by["startup.warm.host.total_ms"]
    assert (host.value, host.grade) == (pytest.approx(120.0), "excellent")
    copy = [v for v in rep.verdicts if v.section == "io"][0]
    assert (copy.value, copy.grade) == (pytest.approx(700.0), "fair")
    cpu = [v for v in rep.verdicts if v.section == "cpu"][0]
    assert cpu.grade == "good"
    net = [v for v in rep.verdicts if v.section == "network"][0]
    assert net.grade == "not measured"
    assert "dockerd went away" in net.note
    audit = by["audit.high"]
    assert (audit.value, audit.grade) == (1.0, "fair")


def test_threshold_rules_and_boundaries():
    from dockertrace.report.verdicts import THRESHOLDS
    start = THRESHOLDS[0]
    assert start.rule() == ("< 150 ms excellent, < 300 ms good, "
                            "< 600 ms fair, else poor")
    assert [start.grade(v) for v in (149.9, 150, 299, 600, 10000)] == [
        "excellent", "good", "good", "poor", "poor"]
    audit = THRESHOLDS[-1]
    assert audit.rule() == "≤ 0 excellent, ≤ 2 fair, else poor"
    assert [audit.grade(n) for n in (0, 1, 2, 3)] == [
        "excellent", "fair", "fair", "poor"]


def test_incomparable_unit_is_not_measured():
    sec = Section("startup", "s", figures=(
        Figure("startup.warm.bridge.total_ms", "x", 3.0, "MiB"),))
    v = build_report(_suite(sec)).verdicts[0]
    assert v.grade == "not measured" and "'MiB'" in v.note


# ------------------------------------------------------------------ HTML

def _png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_html_is_self_contained_with_every_part(tmp_path):
    out = tmp_path / "r.html"
    write_report(build_report(_suite(), _audit(), command="CMD-LINE"),
                 "html", str(out))
    page = out.read_text()

    # Nothing the browser would fetch: every src is a data: URI, no link
    # or script elements, no url() in the styles.
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 4
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    for tag in ("<script", "<link", "url(", "@import", "http://",
                "https://"):
        assert tag not in page
    for s in srcs:
        w, h = _png_size(base64.b64decode(s.split(",", 1)[1]))
        assert w == 760 and 200 < h < 1000

    for text in ("Container start", "Copy-up | OverlayFS",
                 "CPU throttling", "Security audit", "6.1.0-test",
                 "20.10.24", "Test CPU @ 2.0GHz (2 CPUs)",
                 "sudo dockertrace startup --runs 3 -- dockertrace-busybox",
                 "sudo dockertrace bench io --runs 3", "CMD-LINE",
                 "&lt; 150 ms excellent, &lt; 300 ms good",
                 "This section could not run: dockerd went away",
                 "adds SYS_ADMIN", "--cap-drop SYS_ADMIN",
                 "The network hook is most of a bridge start.",
                 "fentry: dt_su_mount; tp_btf: dt_su_exec",
                 "something new", "3 widgets", "181 ms", "170.2 – 190.9"):
        assert text in page, text


def test_html_says_audit_not_available(tmp_path):
    out = tmp_path / "r.html"
    rep = build_report(_suite(), audit_unavailable("no dockertrace.audit"))
    write_report(rep, "html", str(out))
    page = out.read_text()
    assert "Audit not available: no dockertrace.audit" in page
    assert "not measured" in page


def test_a_bad_series_is_shown_as_such_not_raised(tmp_path):
    sec = Section("cpu", "CPU", series=(
        Series("a", "ragged", "line", (1, 2, 3), {"g": [1, 2]}),
        Series("b", "odd kind", "pie", (1,), {"g": [1]})))
    out = tmp_path / "r.html"
    write_report(build_report(_suite(sec)), "html", str(out))
    page = out.read_text()
    assert "group &#x27;g&#x27; has 2 values for 3 x values" in page
    assert "unknown kind &#x27;pie&#x27;" in page


# -------------------------------------------------------------- Markdown

def test_markdown_links_plots_written_beside_it(tmp_path):
    out = tmp_path / "sub" / "rep.md"
    out.parent.mkdir()
    files = write_report(build_report(_suite(), _audit()), "md", str(out))
    text = out.read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert len(links) == 4 == len(files) - 1
    for link in links:
        assert link.startswith("rep_plots/")
        _png_size((out.parent / link).read_bytes())
    # A pipe inside a cell is escaped, tables have their separator row.
    assert "## Copy-up \\| OverlayFS" not in text
    assert "| warm start, bridge | 181 ms | 170.2 – 190.9 |" in text
    assert "|---|---:|---:|---|" in text
    assert "```sh\nsudo dockertrace bench cpu\n```" in text
    assert "- **high** `caps.dangerous` web (nginx): adds SYS_ADMIN" in text
    assert "  declared: `[SYS_ADMIN]`  \n" in text
    assert ("| high | `caps.dangerous` adds SYS_ADMIN | web | "
            "--cap-drop SYS_ADMIN |") in text


def test_markdown_to_stdout_leaves_plots_out(capsys):
    assert write_report(build_report(_suite()), "md", "-") == []
    out = capsys.readouterr().out
    assert "left out: plots are written only" in out
    assert "> **Audit not available:**" in out


def test_table_columns_keep_one_number_of_decimals():
    from dockertrace.report import fmt
    t = Table("t", ("phase", "ms", "n", "mixed"),
              (("a", 14.37, 3, "x"), ("b", 9.594, 12, 1.0),
               ("c", "-", 5, 2.0)))
    assert fmt.numeric_columns(t) == {1: 1, 2: 0}
    assert [fmt.cell(r[1], 1) for r in t.rows] == ["14.4", "9.6", "-"]


# ------------------------------------------------------------------ JSON

def test_json_round_trip_renders_the_same(tmp_path):
    rep = build_report(_suite(), _audit())
    path = tmp_path / "r.json"
    write_report(rep, "json", str(path))
    d = json.loads(path.read_text())
    assert d["format"] == "dockertrace-report/1"
    assert [v["grade"] for v in d["verdicts"]] == [
        v.grade for v in rep.verdicts]

    suite, audit = load(str(path))
    assert suite == rep.suite
    assert audit == rep.audit
    again = build_report(suite, audit)
    assert again.verdicts == rep.verdicts


def test_bare_suite_json_loads_without_audit(tmp_path):
    import dataclasses
    path = tmp_path / "suite.json"
    d = dataclasses.asdict(_suite())
    d["environment"]["from_the_future"] = 1      # newer fields are ignored
    path.write_text(json.dumps(d))
    suite, audit = load(str(path))
    assert audit is None
    assert suite.section("startup").figures[0].spread == (170.2, 190.9)


def test_summarize_audit_uses_the_audits_dict_form():
    class FakeReport:
        def to_dict(self):
            return {"elapsed_s": 0.5, "counts": {"high": 2},
                    "daemon": [{"check": "d", "severity": "low"}],
                    "containers": [{"findings": [{"check": "c"}]},
                                   {"findings": []}],
                    "notes": ["n"]}
    a = summarize_audit(FakeReport())
    assert [f["check"] for f in a.findings] == ["d", "c"]
    assert a.count("high", "critical") == 2
    assert a.scope == "2 running containers and the daemon"


# ------------------------------------------------------------------- CLI

def test_cli_renders_saved_json(tmp_path):
    from dockertrace.cli.main import _register, cli
    _register()
    src = tmp_path / "in.json"
    write_report(build_report(_suite(), _audit()), "json", str(src))
    out = tmp_path / "out.md"
    res = CliRunner().invoke(cli, ["report", "--from-json", str(src),
                                   "--format", "md", "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert ("dockertrace report --format md -o "
            f"{out} --from-json {src}") in text
    assert os.path.isdir(tmp_path / "out_plots")


def test_cli_refuses_runs_with_from_json(tmp_path):
    from dockertrace.cli.main import _register, cli
    _register()
    src = tmp_path / "in.json"
    write_report(build_report(_suite()), "json", str(src))
    res = CliRunner().invoke(cli, ["report", "--from-json", str(src),
                                   "--runs", "2"])
    assert res.exit_code == 2
    assert "--from-json renders a saved result" in res.output


def test_public_report_is_callable_after_the_package_is_imported(
        tmp_path):
    import dockertrace.report.html  # noqa: F401  (rebinds the attribute)
    src = tmp_path / "in.json"
    write_report(build_report(_suite()), "json", str(src))
    out = tmp_path / "x.html"
    assert dockertrace.report("html", str(out),
                              from_json=str(src)) == [str(out)]
