"""Entry point of the `dockertrace` command.

Each subcommand lives in a module of its own and registers itself on
:data:`cli`. Library errors become one line on stderr and the exit code of
their class; anything else is a bug and keeps its traceback.
"""

import logging
import sys

import click

import dockertrace


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--debug", is_flag=True,
              help="Log library debug messages (libbpf, verifier) to stderr.")
@click.version_option(dockertrace.__version__, prog_name="dockertrace")
def cli(debug):
    """See what Docker does inside the Linux kernel.

    \b
    Examples:
      dockertrace doctor
      dockertrace startup -- --network host dt-busybox true
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s")


def _register():
    # Imported here so that `import dockertrace.cli.main` stays cheap and a
    # broken optional command cannot take the others down with it.
    from dockertrace.cli import (  # noqa: F401
        audit, bench, copyup, doctor, report, startup, throttle)


def main(argv=None):
    _register()
    try:
        cli.main(args=argv, prog_name="dockertrace", standalone_mode=False)
    except dockertrace.Error as err:
        click.echo(f"dockertrace: {err}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("dockertrace: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    sys.exit(0)


if __name__ == "__main__":
    # Run as a script, this file is __main__, while the subcommands
    # register on the importable dockertrace.cli.main: use that one.
    from dockertrace.cli.main import main as _main
    _main()
