"""The dockertrace command line: thin click commands over the library."""
