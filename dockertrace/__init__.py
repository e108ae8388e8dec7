"""dockertrace: what Docker does inside the Linux kernel, traced with eBPF.

The public API lives here; everything else is an implementation module.
"""

from dockertrace.errors import (  # noqa: F401
    AccessDenied,
    ContainerFailed,
    DockerUnavailable,
    Error,
    FeatureNotSupported,
    NoSuchContainer,
    TraceError,
)

__version__ = "0.1.0"
