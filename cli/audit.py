"""`dockertrace audit`: configured against enforced security, per
container."""

import click

from dockertrace.cli.main import cli

_SEVERITIES = ["info", "low", "medium", "high", "critical"]


@cli.command()
@click.argument("containers", nargs=-1)
@click.option("--json", "fmt", flag_value="json", help="Print JSON.")
@click.option("--sarif", "fmt", flag_value="sarif",
              help="Print SARIF 2.1.0 (for code scanning tools).")
@click.option("--fail-on", type=click.Choice(_SEVERITIES),
              default=None, help="Exit with code 9 if a finding is at or "
              "above this severity (for CI gates).")
@click.option("--min-severity", type=click.Choice(_SEVERITIES),
              default="low", show_default=True,
              help="Table only: hide findings below this severity.")
@click.option("--verbose", is_flag=True,
              help="Table only: show declared, effective and evidence.")
@click.option("--no-daemon", is_flag=True,
              help="Skip the checks of the daemon and the host.")
@click.option("--cis", "show_cis", is_flag=True,
              help="List the CIS Docker Benchmark section 5 items and the "
              "checks that cover them, then exit.")
def audit(containers, fmt, fail_on, min_severity, verbose, no_daemon,
          show_cis):
    """Audit running containers: what each was configured with against
    what the kernel enforces on its processes.

    Audits CONTAINERS (names or ids), or every running container when
    none is named, and the daemon. Each finding names its check, its
    severity, the CIS Docker Benchmark item, what was declared, what is
    effective, and the flag that fixes it. A container that exits during
    the audit is reported as gone.

    \b
    Exit codes:
      0  no finding at or above --fail-on (or no --fail-on)
      9  findings at or above --fail-on
      5  the daemon cannot be reached; 6 a named container does not
         exist; 3 not root
    \b
    Examples:
      dockertrace audit
      dockertrace audit web db --verbose
      dockertrace audit --fail-on high --sarif > audit.sarif
      dockertrace audit --cis
    """
    from dockertrace.audit import AuditFailed, Severity, audit as run
    from dockertrace.audit import cis, report

    if show_cis:
        for cid, (title, checks, why) in cis.SECTION_5.items():
            click.echo(f"{cid:<5} {title}")
            click.echo(f"      checks: {', '.join(checks) or '-'}")
            if why:
                click.echo(f"      note: {why}")
        return

    result = run(list(containers), daemon_checks=not no_daemon)
    if fmt == "json":
        click.echo(report.to_json(result))
    elif fmt == "sarif":
        click.echo(report.to_sarif(result))
    else:
        click.echo(report.to_table(
            result, verbose=verbose,
            min_severity=Severity.parse(min_severity)), nl=False)
    if fail_on:
        threshold = Severity.parse(fail_on)
        failing = result.at_or_above(threshold)
        if failing:
            raise AuditFailed(threshold, failing)
