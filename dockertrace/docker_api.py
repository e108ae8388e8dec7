"""A docker-py client whose failures arrive as dockertrace errors.

docker-py reports an unreachable daemon as a ``DockerException`` wrapping a
``requests`` error wrapping a ``urllib3`` error wrapping the ``OSError``
that says what really happened.  Callers of dockertrace should see one
:class:`dockertrace.DockerUnavailable` naming the address and that cause.

docker-py is imported inside the functions, never at module level:
tracers import this module before they attach BPF programs, and importing
docker-py (with requests and urllib3) costs more than the attach itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, Iterator, List, Optional

from dockertrace.errors import AccessDenied, DockerUnavailable, Error

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import docker

log = logging.getLogger(__name__)

#: Where docker-py and the CLI look when DOCKER_HOST is not set.
DEFAULT_URL = "unix:///var/run/docker.sock"

#: Seconds to wait for one Engine API request before giving up.
DEFAULT_TIMEOUT_S = 10.0

#: Label on every container dockertrace starts, so that leftovers of a
#: killed run can be found (`docker ps -a -f label=dockertrace.owner`).
OWNER_LABEL = "dockertrace.owner"


def owned(create_kwargs: dict, purpose: str) -> dict:
    """``create_kwargs`` with the owner label added (a copy)."""
    kw = dict(create_kwargs)
    labels = dict(kw.get("labels") or {})
    labels[OWNER_LABEL] = purpose
    kw["labels"] = labels
    return kw


def docker_url() -> str:
    """The daemon address that :func:`client` would use by default."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_URL


def client(base_url: Optional[str] = None, *,
           timeout_s: float = DEFAULT_TIMEOUT_S) -> "docker.DockerClient":
    """Connect to the Engine API and agree on an API version.

    With no ``base_url`` the environment decides, as for the docker CLI
    (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``).  The
    version is negotiated (``version="auto"``), which also proves the
    daemon answers: a dead socket fails here, not at the first real call.

    Raises :class:`dockertrace.DockerUnavailable` when the daemon cannot
    be reached and :class:`dockertrace.AccessDenied` when its socket is
    not ours to open.
    """
    import docker

    url = base_url or docker_url()
    with translated(url):
        if base_url is None:
            cli = docker.from_env(version="auto", timeout=timeout_s)
        else:
            cli = docker.DockerClient(base_url=base_url, version="auto",
                                      timeout=timeout_s)
    log.debug("connected to %s, API %s", url, cli.api.api_version)
    return cli


@contextlib.contextmanager
def translated(url: str) -> Iterator[None]:
    """Turn docker-py's connection failures into dockertrace errors.

    Answers from the daemon (``docker.errors.APIError``, including
    ``NotFound``) pass through untouched: they mean the daemon is there,
    and only the caller knows what a 404 means for it.
    """
    try:
        yield
    except Error:
        raise
    except Exception as err:
        if _is_api_answer(err):
            raise
        chain = _chain(err)
        if any(isinstance(e, PermissionError) for e in chain):
            raise AccessDenied(
                f"the Docker socket at {url}",
                fix="run as root or as a member of the docker group",
            ) from err
        if _is_connection_failure(err, chain):
            raise DockerUnavailable(url, _reason(chain)) from err
        raise


def _is_api_answer(err: BaseException) -> bool:
    # APIError derives from requests' HTTPError and so from OSError; test
    # it first so a 404 is never mistaken for a dead socket.
    try:
        from docker.errors import APIError
    except ImportError:  # pragma: no cover - docker is a dependency
        return False
    return isinstance(err, APIError)


def _is_connection_failure(err: BaseException,
                           chain: List[BaseException]) -> bool:
    from docker.errors import DockerException
    from requests.exceptions import ConnectionError as RequestsConnError
    from requests.exceptions import Timeout

    # A DockerException that is not an APIError is docker-py's way of
    # saying it never got an answer (version negotiation failed, a bad
    # DOCKER_HOST, TLS files missing).
    if isinstance(err, DockerException):
        return True
    for e in chain:
        if isinstance(e, (RequestsConnError, Timeout)):
            return True
        if type(e).__module__ == "builtins" and isinstance(e, OSError):
            return True
    return False


def _chain(err: BaseException) -> List[BaseException]:
    """``err`` and everything it was raised from or during, outermost
    first."""
    seen: List[BaseException] = []
    cur: Optional[BaseException] = err
    while cur is not None and not any(cur is s for s in seen):
        seen.append(cur)
        # urllib3 keeps the socket error in args, not in __cause__.
        nested = [a for a in getattr(cur, "args", ())
                  if isinstance(a, BaseException)]
        cur = cur.__cause__ or cur.__context__ or (
            nested[-1] if nested else None)
    return seen


def _reason(chain: List[BaseException]) -> str:
    """The most specific words for why the daemon could not be reached:
    the innermost OS error (``No such file or directory``, ``Connection
    refused``) if there is one, else the outermost message."""
    for e in reversed(chain):
        if type(e).__module__ == "builtins" and isinstance(e, OSError):
            return e.strerror or str(e)
    return str(chain[0])
