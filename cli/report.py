"""`dockertrace report`: the suite and the audit in one report."""

import shlex

import click

from dockertrace.cli.main import cli

_FORMATS = ("html", "md", "json")


@cli.command("report")
@click.option("--format", "fmt", type=click.Choice(_FORMATS),
              default="html", show_default=True,
              help="html: one self-contained page; md: Markdown with "
                   "its plots as PNG files beside it; json: the data.")
@click.option("-o", "--output", metavar="FILE",
              help="Where to write (default dockertrace-report.FORMAT; "
                   "- for stdout).")
@click.option("--suite", "suites", multiple=True, metavar="NAME",
              help="Run only this suite section (startup, io, network, "
                   "memory, cpu); repeat for more. Default: all.")
@click.option("--runs", type=click.IntRange(min=1), metavar="N",
              help="Runs per benchmark (default: the suite's own).")
@click.option("--from-json", "from_json", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False),
              help="Render a saved report or SuiteResult JSON instead "
                   "of measuring.")
@click.option("--no-audit", is_flag=True,
              help="Leave the security audit out.")
def report_cmd(fmt, output, suites, runs, from_json, no_audit):
    """Run the analysis suite and the security audit; write one report.

    The summary judges a few figures against thresholds stated in the
    report with their reasons; each section has its figures, plots, what
    the kernel showed, and the command that reruns it.

    \b
    Examples:
      sudo dockertrace report -o report.html
      sudo dockertrace report --format md -o docs/report.md --runs 5
      sudo dockertrace report --suite startup --suite io --runs 1
      dockertrace report --from-json report.json --format html
    """
    from dockertrace.report import report as _report

    if from_json and (suites or runs):
        raise click.UsageError("--from-json renders a saved result; "
                               "--suite and --runs have nothing to run")
    # Rebuilt from the options rather than taken from sys.argv: the same
    # line whether the command ran as a script, `python -m` or in a test.
    command = _command(fmt, output, suites, runs, from_json, no_audit)
    files = _report(fmt, output, suites=suites or None, runs=runs,
                    from_json=from_json, audit=not no_audit,
                    command=command, progress=_progress)
    for path in files[:1]:
        click.echo(f"wrote {path}", err=True)
    if len(files) > 1:
        click.echo(f"wrote {len(files) - 1} plot(s) beside it", err=True)


def _progress(p):
    # On stderr, so `-o -` still gives a clean report on stdout; a suite
    # run takes minutes and should not look hung.
    click.echo(f"{p.section} [{p.done}/{p.total}] {p.message}", err=True)


def _command(fmt, output, suites, runs, from_json, no_audit):
    """The command line that makes this report again."""
    # Measuring needs root (BPF, other processes' /proc); rendering not.
    args = [] if from_json else ["sudo"]
    args += ["dockertrace", "report", "--format", fmt]
    if output:
        args += ["-o", output]
    for s in suites:
        args += ["--suite", s]
    if runs:
        args += ["--runs", str(runs)]
    if from_json:
        args += ["--from-json", from_json]
    if no_audit:
        args.append("--no-audit")
    return shlex.join(args)
