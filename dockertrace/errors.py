"""The exception tree of dockertrace.

Every error the library raises on purpose derives from :class:`Error`.
Each class carries the facts of its case as attributes and a message that
names the cause and the fix, so the CLI can print ``str(err)`` as is and
map the class to an exit code.
"""

import errno as _errno


class Error(Exception):
    """Root of every error dockertrace raises on purpose."""

    #: Exit code the CLI uses for this class of error.
    exit_code = 1


class AccessDenied(Error):
    """The caller lacks the privilege an operation needs."""

    exit_code = 3

    def __init__(self, what, fix="run as root (sudo dockertrace ...)"):
        self.what = what
        self.fix = fix
        super().__init__(f"permission denied: {what}; {fix}")


class FeatureNotSupported(Error):
    """The running kernel lacks a feature and nothing can stand in for it."""

    exit_code = 4

    def __init__(self, feature, detail="", fix=""):
        self.feature = feature
        self.detail = detail
        self.fix = fix
        msg = f"kernel feature not available: {feature}"
        if detail:
            msg += f" ({detail})"
        if fix:
            msg += f"; {fix}"
        super().__init__(msg)


class DockerUnavailable(Error):
    """The Docker Engine API could not be reached."""

    exit_code = 5

    def __init__(self, url, reason):
        self.url = url
        self.reason = reason
        super().__init__(
            f"cannot reach the Docker daemon at {url}: {reason}; start "
            "dockerd (or set DOCKER_HOST to where it listens)")


class NoSuchContainer(Error):
    """A container named by the user does not exist (or is gone)."""

    exit_code = 6

    def __init__(self, ref):
        self.ref = ref
        super().__init__(
            f"no such container: {ref}; list running ones with `docker ps`")


class TraceError(Error):
    """Loading, attaching or reading a BPF program failed."""

    exit_code = 7

    def __init__(self, msg, *, program=None, errno=None):
        self.program = program
        self.errno = errno
        super().__init__(msg)


class ContainerFailed(Error):
    """A container the tool started could not be created or started."""

    exit_code = 8

    def __init__(self, msg):
        super().__init__(msg)


def from_oserror(err, what):
    """Translate an ``OSError`` from the C layer into the tree.

    ``what`` says what was being done, in words a user understands.  The
    original error stays chained as ``__cause__`` by the caller's
    ``raise ... from err``.
    """
    code = err.errno
    if code in (_errno.EPERM, _errno.EACCES):
        return AccessDenied(what)
    if code in (_errno.ENOSYS, _errno.EOPNOTSUPP, _errno.EINVAL,
                _errno.ENOENT):
        return FeatureNotSupported(what, detail=_errno.errorcode.get(
            code, str(code)))
    return TraceError(f"{what}: {err.strerror or err}", errno=code)
