"""`python3 -m dockertrace` runs the command line, as `dockertrace` does."""

from dockertrace.cli.main import main

main()
