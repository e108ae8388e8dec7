"""Turn a ``docker run`` argument list into docker-py calls.

``dockertrace startup -- [docker run arguments]`` creates the container
itself, through the Engine API, so that the tracer is in place before the
container's first process runs.  This module reads the arguments after
``--`` the way the docker CLI reads them and returns the keyword arguments
for ``docker.DockerClient().containers.create(image, command, **kwargs)``.

It never talks to dockerd.  It reads only the files an option names
(``--env-file``, a seccomp profile), and it imports ``docker.types`` only
when an option needs a Mount or a Ulimit: importing docker-py takes about
0.2 s and the CLI imports this module just to print ``--help``.

Where the docker CLI normalises a value before sending it (capabilities,
``--add-host``, ``--device``, ``-p``), the same is done here, so that
``docker inspect`` shows the same HostConfig for both ways of starting.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import fractions
import functools
import ipaddress
import json
import logging
import os
import re

from dockertrace import errors

log = logging.getLogger(__name__)

USAGE = "dockertrace startup -- [OPTIONS] IMAGE [COMMAND...]"

SUPPORTED_OPTIONS = """\
docker run options that dockertrace startup understands:
  container   --name, --entrypoint, -w/--workdir, -u/--user, -l/--label,
              --init, --restart, --stop-signal, --runtime, --health-cmd,
              --health-interval, --health-timeout, --health-retries,
              --health-start-period, --no-healthcheck
  environment -e/--env (KEY=VALUE, or KEY to copy it from here), --env-file
  storage     -v/--volume, --mount, --tmpfs, --read-only, --shm-size
  resources   --cpus, -c/--cpu-shares, --cpu-period, --cpu-quota,
              --cpuset-cpus, -m/--memory, --memory-swap, --pids-limit,
              --ulimit
  network     --network/--net, -p/--publish, -h/--hostname, --dns,
              --add-host
  isolation   --cap-add, --cap-drop, --security-opt, --privileged,
              --device, --sysctl, --ipc, --pid, --uts, --userns,
              --cgroupns, --cgroup-parent
  ignored     -d/--detach, --rm, -i/--interactive, -t/--tty,
              --pull missing|never, --platform
"""

#: Why each accepted-but-ignored option has no effect, for the CLI to show.
IGNORED_OPTIONS = {
    "--detach": "dockertrace starts the container and never attaches to it",
    "--rm": "the container is created without auto-remove, so its exit "
            "state can still be inspected after the trace",
    "--interactive": "nothing is attached to the container's stdin",
    # A tty nobody reads or writes would only change how the program
    # buffers its output, and would leave a shell waiting for input
    # forever instead of seeing end-of-file and exiting.
    "--tty": "no terminal is attached to the container, so none is "
             "allocated",
    "--pull": "dockertrace never pulls; the image must already be local",
    "--platform": "the local image is used as is; nothing is pulled for "
                  "another platform",
    "--publish": "published ports are discarded with --network host, as "
                 "docker run does",
}


class RunArgsError(errors.Error):
    """A ``docker run`` argument list that cannot be turned into a call.

    ``argument`` is the option (or token) at fault, when there is one.
    """

    exit_code = 2

    def __init__(self, msg, *, argument=None):
        self.argument = argument
        super().__init__(msg)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What ``docker run`` would have been asked to create.

    ``create_kwargs`` is complete: it holds ``name`` and ``network_mode``
    too, which are repeated as fields because the caller needs them to
    find the container and its network namespace.
    """

    image: str
    command: tuple[str, ...] | None
    # A dict cannot be hashed; leave it out so a spec still can be.
    create_kwargs: dict = dataclasses.field(hash=False)
    name: str | None = None
    network_mode: str | None = None
    ignored: tuple[str, ...] = ()


# Options that take a value: (flags, repeatable).  The first long flag
# names the option in messages and, with dashes as underscores, is the
# argparse dest.
_VALUE_OPTIONS = (
    (("--name",), False),
    (("--network", "--net"), False),
    (("-e", "--env"), True),
    (("--env-file",), True),
    (("-v", "--volume"), True),
    (("--mount",), True),
    (("--tmpfs",), True),
    (("-w", "--workdir"), False),
    (("-u", "--user"), False),
    (("-h", "--hostname"), False),
    (("--entrypoint",), False),
    (("-l", "--label"), True),
    (("--cpus",), False),
    (("-c", "--cpu-shares"), False),
    (("--cpu-period",), False),
    (("--cpu-quota",), False),
    (("--cpuset-cpus",), False),
    (("-m", "--memory"), False),
    (("--memory-swap",), False),
    (("--pids-limit",), False),
    (("--cap-add",), True),
    (("--cap-drop",), True),
    (("--security-opt",), True),
    (("--ipc",), False),
    (("--pid",), False),
    (("--uts",), False),
    (("--userns",), False),
    (("--cgroupns",), False),
    (("--cgroup-parent",), False),
    (("-p", "--publish"), True),
    (("--dns",), True),
    (("--add-host",), True),
    (("--device",), True),
    (("--sysctl",), True),
    (("--ulimit",), True),
    (("--restart",), False),
    (("--stop-signal",), False),
    (("--shm-size",), False),
    (("--health-cmd",), False),
    (("--health-interval",), False),
    (("--health-timeout",), False),
    (("--health-retries",), False),
    (("--health-start-period",), False),
    (("--platform",), False),
    (("--runtime",), False),
    (("--pull",), False),
)

_FLAG_OPTIONS = (
    ("--privileged",),
    ("--read-only",),
    ("--init",),
    ("--no-healthcheck",),
    ("-d", "--detach"),
    ("--rm",),
    ("-i", "--interactive"),
    ("-t", "--tty"),
)


def _long(flags):
    return next(f for f in flags if f.startswith("--"))


def _dest(flags):
    return _long(flags)[2:].replace("-", "_")


class _Parser(argparse.ArgumentParser):
    # exit_on_error=False still lets a few paths call error(), which
    # prints and exits; a library must raise instead.
    def error(self, message):
        raise RunArgsError(f"bad docker run arguments: {message}; "
                           f"usage: {USAGE}")


@functools.lru_cache(maxsize=None)
def _parser():
    # add_help=False because -h is docker's --hostname.
    parser = _Parser(prog="dockertrace startup --", add_help=False,
                     allow_abbrev=False, exit_on_error=False)
    for flags, many in _VALUE_OPTIONS:
        parser.add_argument(*flags, dest=_dest(flags),
                            action="append" if many else "store")
    for flags in _FLAG_OPTIONS:
        parser.add_argument(*flags, dest=_dest(flags),
                            action="store_true")
    # REMAINDER: the first positional is the image and everything after
    # it is the command, even tokens that look like our options (-c).
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _from_argparse(err, argv):
    """Reword an argparse error so it names the option and the fix."""
    names = (err.argument_name or "").split("/")
    opt = next((n for n in names if n.startswith("--")), names[0])
    msg = err.message
    if msg.startswith("expected one argument"):
        return RunArgsError(
            f"{opt} needs a value: write {opt} VALUE (or {opt}=VALUE when "
            "the value starts with -)", argument=opt)
    if msg.startswith("ignored explicit argument"):
        value = msg.split(" ", 3)[-1].strip("'\"")
        # argparse says the same of --rm=yes and of -iz (where z is no
        # option of ours); only argv tells them apart.
        if any(a.split("=", 1)[0] in names for a in argv if "=" in a):
            return RunArgsError(
                f'{opt} takes no value, got "{value}": write {opt} alone, '
                "or leave it out", argument=opt)
        bad = "-" + value[:1]
        return RunArgsError(
            f"unknown docker run option {bad} (in a group of short "
            "options); dockertrace startup accepts the docker run options "
            "listed in dockertrace startup --help", argument=bad)
    return RunArgsError(f"{opt}: {msg}; usage: {USAGE}", argument=opt)


def parse_run_args(argv, environ=None) -> RunSpec:
    """Read a ``docker run`` argument list (without ``docker run``).

    ``environ`` is where ``-e KEY`` and ``--env-file`` lines without a
    value are looked up, as docker looks them up in its own environment;
    it defaults to ``os.environ``.  Raises :class:`RunArgsError`.
    """
    argv = [str(a) for a in argv]
    environ = os.environ if environ is None else environ
    try:
        ns, extras = _parser().parse_known_args(argv)
    except argparse.ArgumentError as err:
        raise _from_argparse(err, argv) from None
    if extras:
        bad = extras[0].split("=", 1)[0]
        raise RunArgsError(
            f"unknown docker run option {bad}; dockertrace startup accepts "
            "the docker run options listed in dockertrace startup --help",
            argument=bad)

    # argparse keeps a leading "--" in a REMAINDER; docker drops it.
    rest = list(ns.rest)
    if rest and rest[0] == "--":
        rest.pop(0)
    if not rest:
        raise RunArgsError(f"no image given: {USAGE}")
    image, command = rest[0], tuple(rest[1:]) or None
    if not image or image.startswith("-"):
        raise RunArgsError(
            f'bad image name "{image}": the image comes after the options: '
            f"{USAGE}", argument=image)

    kwargs = {}
    ignored = []
    _container(ns, kwargs)
    _environment(ns, kwargs, environ)
    _storage(ns, kwargs)
    _resources(ns, kwargs)
    _network(ns, kwargs, ignored)
    _isolation(ns, kwargs)
    _health(ns, kwargs)
    _ignored(ns, ignored)

    spec = RunSpec(image=image, command=command, create_kwargs=kwargs,
                   name=kwargs.get("name"),
                   network_mode=kwargs.get("network_mode"),
                   ignored=tuple(ignored))
    log.debug("docker run %s -> %r", argv, spec)
    return spec


# Value syntax shared by several options.

def _fail(opt, what, value):
    return RunArgsError(f'{opt} needs {what}, got "{value}"', argument=opt)


def _int(opt, value, what="a whole number such as 1024"):
    try:
        return int(value, 10)
    except ValueError:
        raise _fail(opt, what, value) from None


# docker's size syntax (go-units RAMInBytes): a number, an optional space,
# an optional binary unit, an optional "i" and an optional "b".
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
          "p": 1 << 50}


def _size(opt, value):
    match = _SIZE.match(value.strip())
    if not match:
        raise _fail(opt, "a size such as 512m, 1g, 100k or a number of "
                         "bytes", value)
    number, unit = match.groups()
    # docker multiplies as a float and truncates: 1.5k is 1536.
    return int(float(number) * _UNITS.get((unit or "").lower(), 1))


# Go's time.ParseDuration, which docker uses for the --health-* times.
_DURATION_PART = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)"
_DURATION = re.compile(f"(?:{_DURATION_PART})+")
_NS = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6,
       "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def _duration_ns(opt, value):
    text = value.strip()
    negative = text.startswith("-")
    if text[:1] in ("-", "+"):
        text = text[1:]
    if text == "0":
        return 0
    if not _DURATION.fullmatch(text):
        raise _fail(opt, "a duration such as 30s, 1m30s or 500ms", value)
    # Exact sums, so 1.1s is 1100000000 ns on the dot.
    total = sum(fractions.Fraction(number) * _NS[unit]
                for number, unit in re.findall(_DURATION_PART, text))
    if negative and total:
        raise RunArgsError(f'{opt} cannot be negative, got "{value}"',
                           argument=opt)
    return int(total)


_TRUE = ("1", "t", "true")
_FALSE = ("0", "f", "false")


def _bool(opt, key, value):
    # Go's strconv.ParseBool, which docker uses inside --mount.
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _fail(opt, f"{key}=true or {key}=false", f"{key}={value}")


def _key_value(opt, value, need_value=True):
    key, eq, val = value.partition("=")
    if not key or (need_value and not eq):
        raise _fail(opt, "KEY=VALUE", value)
    return key, val


# The options, by subject.  Each step fills kwargs with docker-py names.

_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def _container(ns, kwargs):
    if ns.name is not None:
        if not _NAME.match(ns.name):
            raise _fail("--name", "a name made of letters, digits, _ . - "
                        "(at least 2 characters)", ns.name)
        kwargs["name"] = ns.name
    for dest, key in (("workdir", "working_dir"), ("user", "user"),
                      ("hostname", "hostname"),
                      ("stop_signal", "stop_signal"),
                      ("runtime", "runtime")):
        if getattr(ns, dest) is not None:
            kwargs[key] = getattr(ns, dest)

    # docker runs --entrypoint as one word, never split on spaces, and
    # --entrypoint "" clears the image's entrypoint; docker-py would
    # shell-split a string, so hand it a list.
    if ns.entrypoint is not None:
        kwargs["entrypoint"] = [ns.entrypoint]

    if ns.label:
        labels = {}
        for value in ns.label:
            key, val = _key_value("--label", value, need_value=False)
            labels[key] = val
        kwargs["labels"] = labels

    if ns.init:
        kwargs["init"] = True
    if ns.restart is not None:
        kwargs["restart_policy"] = _restart(ns.restart)


_RESTART = ("no", "always", "unless-stopped", "on-failure")


def _restart(value):
    name, colon, count = value.partition(":")
    if name not in _RESTART:
        raise _fail("--restart", "one of no, always, unless-stopped, "
                    "on-failure[:N]", value)
    retries = 0
    if colon:
        if name != "on-failure":
            raise RunArgsError(
                f"--restart {name} takes no retry count, got \"{value}\": "
                "only on-failure:N does", argument="--restart")
        retries = _int("--restart", count, "on-failure:N with N a whole "
                       "number")
        if retries < 0:
            raise _fail("--restart", "a retry count of 0 or more", value)
    return {"Name": name, "MaximumRetryCount": retries}


def _environment(ns, kwargs, environ):
    env = []
    # docker reads the files first, so -e overrides a file's value.
    for path in ns.env_file or ():
        env.extend(_env_file(path, environ))
    for value in ns.env or ():
        key, eq, _ = value.partition("=")
        if not key:
            raise _fail("--env", "KEY=VALUE or KEY", value)
        if not eq and key in environ:
            value = f"{key}={environ[key]}"
        # A KEY that is not set here goes as is, as docker sends it.
        env.append(value)
    if env:
        kwargs["environment"] = env


def _env_file(path, environ):
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except OSError as err:
        raise RunArgsError(f"--env-file {path}: {err.strerror}",
                           argument="--env-file") from err
    except UnicodeDecodeError as err:
        raise RunArgsError(f"--env-file {path} is not UTF-8 text",
                           argument="--env-file") from err
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not key or any(c.isspace() for c in key):
            raise RunArgsError(
                f"--env-file {path} line {number}: bad variable name "
                f'"{key}"; write KEY=VALUE', argument="--env-file")
        if eq:
            lines.append(f"{key}={value}")
        elif key in environ:
            lines.append(f"{key}={environ[key]}")
        # else: docker drops a pass-through line whose variable is unset.
    return lines


_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_VOLUME_MODES = {"ro", "rw", "z", "Z", "nocopy", "shared", "rshared",
                 "slave", "rslave", "private", "rprivate", "consistent",
                 "cached", "delegated"}


def _storage(ns, kwargs):
    if ns.volume:
        kwargs["volumes"] = [_volume(v) for v in ns.volume]
    if ns.mount:
        kwargs["mounts"] = [_mount(v) for v in ns.mount]
    if ns.tmpfs:
        tmpfs = {}
        for value in ns.tmpfs:
            path, _, options = value.partition(":")
            if not path.startswith("/"):
                raise _fail("--tmpfs", "an absolute path such as "
                            "/run or /run:size=64m", value)
            tmpfs[path] = options
        kwargs["tmpfs"] = tmpfs
    if ns.read_only:
        kwargs["read_only"] = True
    if ns.shm_size is not None:
        kwargs["shm_size"] = _size("--shm-size", ns.shm_size)


def _volume(value):
    """One -v value as docker-py's list form (the daemon parses it)."""
    parts = value.split(":")
    if len(parts) > 3 or not all(parts):
        raise _fail("--volume", "SRC:DST[:OPTIONS] or DST", value)
    if len(parts) == 1:
        src, dst, mode = None, parts[0], None
    elif len(parts) == 3:
        src, dst, mode = parts
    elif parts[1].startswith("/"):
        src, dst, mode = parts[0], parts[1], None
    else:
        # DST:OPTIONS is an anonymous volume with options.
        src, dst, mode = None, parts[0], parts[1]

    if not dst.startswith("/"):
        raise _fail("--volume", "an absolute path inside the container",
                    value)
    for word in (mode or "").split(","):
        if word and word not in _VOLUME_MODES:
            raise _fail("--volume", "options among ro, rw, z, Z, nocopy "
                        "and the propagation modes", value)
    if src is not None and not src.startswith("/"):
        if src.startswith("."):
            # docker makes a relative host path absolute before sending.
            src = os.path.abspath(src)
        elif not _VOLUME_NAME.match(src):
            raise _fail("--volume", "a volume name made of letters, "
                        "digits, _ . - or a host path that starts with / "
                        "or .", value)
    return ":".join(p for p in (src, dst, mode) if p is not None)


_MOUNT_TYPES = ("bind", "volume", "tmpfs")
_PROPAGATION = ("shared", "rshared", "slave", "rslave", "private",
                "rprivate")


def _mount(value):
    opt = "--mount"
    # docker reads --mount as one CSV record, so quoted commas work.
    fields = next(csv.reader([value]), [])
    args = {"type": "volume", "source": None, "target": None,
            "read_only": False}
    only = {}  # type-specific option -> the type it belongs to
    labels, driver_opts, driver = {}, {}, None
    for field in fields:
        key, eq, val = field.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro", "volume-nocopy") and not eq:
            val = "true"
        elif not eq:
            raise _fail(opt, "comma-separated KEY=VALUE pairs such as "
                        "type=bind,src=/a,dst=/b", field)
        if key == "type":
            if val not in _MOUNT_TYPES:
                raise _fail(opt, "type=bind, type=volume or type=tmpfs",
                            field)
            args["type"] = val
        elif key in ("source", "src"):
            args["source"] = val
        elif key in ("target", "destination", "dst"):
            args["target"] = val
        elif key in ("readonly", "ro"):
            args["read_only"] = _bool(opt, key, val)
        elif key == "consistency":
            args["consistency"] = val
        elif key == "bind-propagation":
            if val not in _PROPAGATION:
                raise _fail(opt, "a bind-propagation among "
                            + ", ".join(_PROPAGATION), field)
            args["propagation"] = val
            only[key] = "bind"
        elif key == "volume-nocopy":
            args["no_copy"] = _bool(opt, key, val)
            only[key] = "volume"
        elif key == "volume-label":
            k, v = _key_value(opt, val, need_value=False)
            labels[k] = v
            only[key] = "volume"
        elif key == "volume-driver":
            driver = val
            only[key] = "volume"
        elif key == "volume-opt":
            k, v = _key_value(opt, val)
            driver_opts[k] = v
            only[key] = "volume"
        elif key == "tmpfs-size":
            args["tmpfs_size"] = _size(opt, val)
            only[key] = "tmpfs"
        elif key == "tmpfs-mode":
            try:
                args["tmpfs_mode"] = int(val, 8)
            except ValueError:
                raise _fail(opt, "tmpfs-mode in octal such as 1777",
                            field) from None
            only[key] = "tmpfs"
        else:
            raise RunArgsError(
                f'--mount option "{key}" is not supported: use type, src, '
                "dst, readonly, consistency, bind-propagation, "
                "volume-nocopy, volume-label, volume-driver, volume-opt, "
                "tmpfs-size, tmpfs-mode", argument=opt)

    kind = args["type"]
    for key, owner in only.items():
        if owner != kind:
            raise RunArgsError(
                f"--mount {key} belongs to type={owner}, not type={kind}: "
                f'"{value}"', argument=opt)
    if not args["target"]:
        raise _fail(opt, "a target (dst=/path/in/container)", value)
    if kind == "bind":
        if not args["source"]:
            raise _fail(opt, "a source for type=bind (src=/host/path)",
                        value)
        # docker makes a relative bind source absolute before sending.
        args["source"] = os.path.abspath(args["source"])
    if kind == "tmpfs" and args["source"]:
        raise _fail(opt, "no source for type=tmpfs", value)

    from docker import types  # here, not at the top: see the docstring
    if labels:
        args["labels"] = labels
    if driver is not None or driver_opts:
        args["driver_config"] = types.DriverConfig(driver or "",
                                                   driver_opts or None)
    return types.Mount(**args)


def _resources(ns, kwargs):
    if ns.cpus is not None:
        kwargs["nano_cpus"] = _nano_cpus(ns.cpus)
    for dest, key in (("cpu_shares", "cpu_shares"),
                      ("cpu_period", "cpu_period"),
                      ("cpu_quota", "cpu_quota"),
                      ("pids_limit", "pids_limit")):
        value = getattr(ns, dest)
        if value is not None:
            kwargs[key] = _int("--" + dest.replace("_", "-"), value)
    if ns.cpuset_cpus is not None:
        kwargs["cpuset_cpus"] = ns.cpuset_cpus
    if ns.memory is not None:
        kwargs["mem_limit"] = _size("--memory", ns.memory)
    if ns.memory_swap is not None:
        # -1 is docker's "unlimited swap", outside the size syntax.
        kwargs["memswap_limit"] = (-1 if ns.memory_swap.strip() == "-1"
                                   else _size("--memory-swap",
                                              ns.memory_swap))
    if ns.ulimit:
        kwargs["ulimits"] = _ulimits(ns.ulimit)


def _nano_cpus(value):
    # Exact arithmetic as docker does it: 0.1 CPU is 100000000 ns, not
    # 100000000.00000001, and a value finer than 1 ns is an error.
    try:
        nano = fractions.Fraction(value.strip()) * 10**9
    except (ValueError, ZeroDivisionError):
        raise _fail("--cpus", "a number such as 0.5", value) from None
    if nano < 0:
        raise _fail("--cpus", "a number of 0 or more", value)
    if nano.denominator != 1:
        raise _fail("--cpus", "at most 9 decimal places", value)
    return int(nano)


_ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock",
            "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio",
            "rttime", "sigpending", "stack")


def _ulimits(values):
    from docker import types  # here, not at the top: see the docstring

    limits = {}
    for value in values:
        name, eq, limit = value.partition("=")
        if not eq or name not in _ULIMITS:
            raise _fail("--ulimit", "NAME=SOFT[:HARD] with NAME among "
                        + ", ".join(_ULIMITS), value)
        soft, colon, hard = limit.partition(":")
        what = "NAME=SOFT[:HARD] with whole numbers"
        soft = _int("--ulimit", soft, what)
        hard = _int("--ulimit", hard, what) if colon else soft
        if hard != -1 and soft > hard:
            raise _fail("--ulimit", "a soft limit no larger than the "
                        "hard limit", value)
        # docker keeps one entry per name; the last one given wins.
        limits[name] = types.Ulimit(name=name, soft=soft, hard=hard)
    return list(limits.values())


def _network(ns, kwargs, ignored):
    if ns.network is not None:
        kwargs["network_mode"] = ns.network
    if ns.publish:
        if ns.network == "host":
            ignored.append("--publish")
        else:
            ports = {}
            for value in ns.publish:
                for port, binding in _publish(value):
                    ports.setdefault(port, []).append(binding)
            kwargs["ports"] = ports
    if ns.dns:
        kwargs["dns"] = [_ip("--dns", v, v) for v in ns.dns]
    if ns.add_host:
        kwargs["extra_hosts"] = [_add_host(v) for v in ns.add_host]


def _ip(opt, text, value):
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _fail(opt, "an IP address", value) from None


def _port_range(value, text, low):
    start, dash, end = text.partition("-")
    try:
        first = int(start, 10)
        last = int(end, 10) if dash else first
    except ValueError:
        first = last = -1
    if not low <= first <= last <= 65535:
        raise _fail("--publish", "[IP:][HOST_PORT:]PORT[/PROTO] with "
                    "ports or ranges (8000-8010) from 1 to 65535", value)
    return first, last


def _publish(value):
    """One -p value as (container port, (host ip, host port)) pairs.

    Follows docker's nat.ParsePortSpec, host port range and all.
    """
    parts = value.split(":")
    container = parts[-1]
    host_port = parts[-2] if len(parts) > 1 else ""
    host_ip = ":".join(parts[:-2])
    if host_ip.startswith("[") and host_ip.endswith("]"):
        host_ip = host_ip[1:-1]
    if host_ip:
        host_ip = _ip("--publish", host_ip, value)

    port, _, proto = container.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise _fail("--publish", "a protocol among tcp, udp, sctp", value)
    first, last = _port_range(value, port, 1)
    if host_port:
        host_first, host_last = _port_range(value, host_port, 0)
        if (host_last - host_first != last - first and first != last):
            raise _fail("--publish", "host and container port ranges of "
                        "the same length", value)

    pairs = []
    for i in range(last - first + 1):
        binding = ""
        if host_port:
            binding = str(host_first + i)
            # One container port and a host range: dockerd picks a free
            # port from the range.
            if first == last and host_first != host_last:
                binding = f"{host_first}-{host_last}"
        pairs.append((f"{first + i}/{proto}", (host_ip, binding)))
    return pairs


def _add_host(value):
    # docker accepts host:ip and host=ip but sends host:ip.
    host, eq, addr = value.partition("=")
    if not eq:
        host, _, addr = value.partition(":")
    if not host or not addr or ":" in host:
        raise _fail("--add-host", "HOST:IP such as db:10.0.0.2", value)
    if addr != "host-gateway":
        if addr.startswith("[") and addr.endswith("]"):
            addr = addr[1:-1]
        # Checked, but kept as written, as docker does.
        _ip("--add-host", addr, value)
    return f"{host}:{addr}"


_NAMESPACE_MODES = {
    # dest: (docker-py key, plain values, "container:" allowed)
    "ipc": ("ipc_mode", ("", "none", "private", "shareable", "host"),
            True),
    "pid": ("pid_mode", ("", "host"), True),
    "uts": ("uts_mode", ("", "host"), False),
    "userns": ("userns_mode", ("", "host"), False),
    "cgroupns": ("cgroupns", ("", "host", "private"), False),
}


def _isolation(ns, kwargs):
    if ns.cap_add or ns.cap_drop:
        add, drop = _capabilities(ns.cap_add or (), ns.cap_drop or ())
        if add:
            kwargs["cap_add"] = add
        if drop:
            kwargs["cap_drop"] = drop
    if ns.security_opt:
        kwargs["security_opt"] = [_security_opt(v)
                                  for v in ns.security_opt]
    if ns.privileged:
        kwargs["privileged"] = True
    if ns.device:
        kwargs["devices"] = [_device(v) for v in ns.device]
    if ns.sysctl:
        kwargs["sysctls"] = dict(_key_value("--sysctl", v)
                                 for v in ns.sysctl)

    for dest, (key, plain, container) in _NAMESPACE_MODES.items():
        value = getattr(ns, dest)
        if value is None:
            continue
        if value not in plain and not (
                container and value.startswith("container:")):
            words = [w for w in plain if w]
            words += ["container:NAME"] if container else []
            raise _fail("--" + dest, "one of " + ", ".join(words), value)
        if value:
            kwargs[key] = value
    if ns.cgroup_parent is not None:
        kwargs["cgroup_parent"] = ns.cgroup_parent


def _normal_cap(cap):
    cap = cap.strip().upper()
    if cap in ("ALL", "RESET") or cap.startswith("CAP_"):
        return cap
    return "CAP_" + cap


def _capabilities(add, drop):
    """docker's EffectiveCapAddCapDrop: normalised, deduplicated, sorted.

    ALL wins over anything else in its list, a capability both added and
    dropped is added, and RESET (meant for services) is dropped.
    """
    add = {_normal_cap(c) for c in add}
    drop = {_normal_cap(c) for c in drop}
    if "ALL" in add:
        add = {"ALL"}
    if "ALL" in drop:
        drop = {"ALL"}
    add.discard("RESET")
    drop -= add | {"RESET"}
    return sorted(add), sorted(drop)


def _security_opt(value):
    key, eq, val = value.partition("=")
    if not eq and key != "no-new-privileges":
        # docker still takes the old key:value spelling.
        key, eq, val = value.partition(":")
    if (not eq or not val) and key != "no-new-privileges":
        raise _fail("--security-opt", "KEY=VALUE such as "
                    "seccomp=unconfined or no-new-privileges", value)
    if key == "systempaths":
        raise RunArgsError(
            "--security-opt systempaths=unconfined is not supported: "
            "docker-py cannot clear the masked and read-only paths",
            argument="--security-opt")
    if key != "seccomp" or val in ("unconfined", "builtin"):
        return value

    # The daemon cannot read the caller's files, so docker sends the
    # profile itself, compacted.
    try:
        with open(val, encoding="utf-8") as f:
            profile = json.load(f)
    except OSError as err:
        raise RunArgsError(
            f"--security-opt seccomp={val}: {err.strerror}",
            argument="--security-opt") from err
    except ValueError as err:
        raise RunArgsError(
            f"--security-opt seccomp={val} is not a JSON seccomp profile: "
            f"{err}", argument="--security-opt") from err
    return "seccomp=" + json.dumps(profile, separators=(",", ":"),
                                   ensure_ascii=False)


def _device_mode(text):
    return (bool(text) and set(text) <= set("rwm")
            and len(set(text)) == len(text))


def _device(value):
    """One --device value, split as docker does for Linux."""
    parts = value.split(":")
    if len(parts) > 3:
        raise _fail("--device", "HOST_PATH[:CONTAINER_PATH][:rwm]", value)
    src, dst, mode = parts[0], "", "rwm"
    if len(parts) == 3:
        dst, mode = parts[1], parts[2]
    elif len(parts) == 2:
        # The second field is the mode when it reads as one.
        if _device_mode(parts[1]):
            mode = parts[1]
        else:
            dst = parts[1]
    dst = dst or src
    if not src.startswith("/") or not dst.startswith("/"):
        raise _fail("--device", "absolute device paths such as "
                    "/dev/fuse (CDI device names are not supported)",
                    value)
    if not _device_mode(mode):
        raise _fail("--device", "a mode made of r, w and m", value)
    return {"PathOnHost": src, "PathInContainer": dst,
            "CgroupPermissions": mode}


def _health(ns, kwargs):
    settings = {}
    if ns.health_cmd:
        settings["test"] = ["CMD-SHELL", ns.health_cmd]
    for dest, key in (("health_interval", "interval"),
                      ("health_timeout", "timeout"),
                      ("health_start_period", "start_period")):
        value = getattr(ns, dest)
        if value is not None:
            ns_value = _duration_ns("--" + dest.replace("_", "-"), value)
            if ns_value:
                settings[key] = ns_value
    if ns.health_retries is not None:
        retries = _int("--health-retries", ns.health_retries)
        if retries < 0:
            raise _fail("--health-retries", "a count of 0 or more",
                        ns.health_retries)
        if retries:
            settings["retries"] = retries

    if ns.no_healthcheck:
        if settings:
            raise RunArgsError(
                "--no-healthcheck conflicts with the --health-* options: "
                "keep one or the other", argument="--no-healthcheck")
        kwargs["healthcheck"] = {"test": ["NONE"]}
    elif settings:
        # Without --health-cmd the image's test stays, as with docker.
        kwargs["healthcheck"] = settings


def _ignored(ns, ignored):
    if ns.pull is not None and ns.pull not in ("missing", "never"):
        if ns.pull == "always":
            raise RunArgsError(
                "--pull always needs a registry and dockertrace never "
                "pulls: pull the image first (docker pull IMAGE), then "
                "drop --pull", argument="--pull")
        raise _fail("--pull", "missing or never", ns.pull)
    for dest in ("detach", "rm", "interactive", "tty"):
        if getattr(ns, dest):
            ignored.append("--" + dest)
    for dest in ("pull", "platform"):
        if getattr(ns, dest) is not None:
            ignored.append("--" + dest)
