"""Text shared by the HTML and Markdown renderers: numbers, units, the
environment's rows and the audit's lines, so both say the same thing."""

import re

GIB = 1024 ** 3


def num(v):
    """A number as a reader wants it: four significant digits, no
    exponent for the values a benchmark produces."""
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int) or float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}" if abs(v) >= 10000 else str(int(v))
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def unit(u):
    # "us" is what the suite may write to stay ASCII; people read µs.
    return "µs" if u == "us" else u


def value(v, u):
    u = unit(u)
    if u in ("", "count"):
        return num(v)
    return f"{num(v)}{'' if u == '%' else ' '}{u}"


def spread(fig):
    # One run has no spread to speak of: an empty cell says that better
    # than "455.1 – 455.1".
    if not fig.spread or fig.spread[0] == fig.spread[1]:
        return ""
    lo, hi = fig.spread
    return f"{num(lo)} – {num(hi)}"


def cell(v, decimals=None):
    """A table cell: numbers with the column's decimals (see
    :func:`numeric_columns`), everything else as text."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "" if v is None else str(v)
    if decimals is None:
        return num(v)
    return f"{v:,.{decimals}f}" if abs(v) >= 10000 else f"{v:.{decimals}f}"


def numeric_columns(table):
    """{column index: decimals} of the columns whose cells are all numbers
    (or "-" for a missing one). Those are right-aligned, header included,
    and each is printed with one number of decimals, so a column reads
    as a column: enough for about three digits of its smallest value."""
    out = {}
    for i in range(len(table.columns)):
        cells = [r[i] for r in table.rows if i < len(r)]
        nums = [c for c in cells if isinstance(c, (int, float))
                and not isinstance(c, bool)]
        if not nums or len(nums) != sum(
                1 for c in cells if c not in ("-", None, "")):
            continue
        if all(isinstance(c, int) for c in nums):
            out[i] = 0
            continue
        small = min((abs(c) for c in nums if c), default=1)
        out[i] = 1 if small >= 1 else 2 if small >= 0.1 else 3
    return out


def plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def environment_rows(env, started_at="", duration_s=None):
    """(name, value) rows of the environment table."""
    rows = [
        ("kernel", env.kernel or "unknown"),
        ("OS", env.os),
        ("Docker", f"{_known(env.docker_version)} "
                   f"(API {_known(env.api_version)})"),
        ("containerd", _known(env.containerd_version)),
        ("runc", _known(env.runc_version)),
        ("storage driver", _known(env.storage_driver)),
        ("cgroups", f"{_known(env.cgroup_version)}, driver "
                    f"{_known(env.cgroup_driver)}"),
        ("CPU", f"{env.cpu_model} ({env.cpus} CPUs)"),
        ("memory", f"{env.memory_bytes / GIB:.1f} GiB"),
        ("Python", env.python),
        ("dockertrace", env.dockertrace_version),
    ]
    if env.features:
        feats = ", ".join(f"{k}: {v}" for k, v in sorted(
            env.features.items()))
        rows.append(("kernel features", feats))
    if started_at:
        rows.append(("suite started", started_at))
    if duration_s is not None:
        rows.append(("suite took", f"{duration_s:.1f} s"))
    return rows


def _known(text):
    # An empty field means the suite could not read it; say so rather
    # than print nothing.
    return text if text not in ("", None) else "unknown"


def mechanisms(section):
    """"point: mechanism" pairs of a section, grouped by mechanism."""
    by = {}
    for point, mech in sorted(section.mechanisms.items()):
        # None is a point no mechanism could serve: it was not loaded.
        name = "not loaded" if mech is None else str(mech)
        by.setdefault(name, []).append(str(point))
    return "; ".join(f"{m}: {', '.join(p)}" for m, p in sorted(by.items()))


def container(finding):
    c = finding.get("container")
    if not c:
        return "daemon"
    name = c.get("name") or c.get("id", "")[:12]
    return f"{name} ({c.get('image', '')})" if c.get("image") else name


def short(v, limit=120):
    """A declared or effective value in one line: ``key: value`` pairs
    rather than a Python repr, which reads like a stack dump."""
    text = _plain(v)
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _plain(v):
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_plain(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_plain(x) for x in v) + "]"
    if v is None:
        return "none"
    return str(v)


SEVERITIES = ("critical", "high", "medium", "low", "info")


def by_severity(findings):
    """Findings, worst first; the audit's own order within a severity."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings,
                  key=lambda f: rank.get(str(f.get("severity")), 99))


def grouped(findings):
    """One row per check, worst first: (severity, check, containers,
    title of the first case, remedy). A report with many containers
    repeats the same few checks; this keeps the table about the checks."""
    rows = {}
    for f in by_severity(findings):
        key = (str(f.get("severity", "")), str(f.get("check", "")))
        row = rows.setdefault(key, [key[0], key[1], [], f.get("title", ""),
                                    f.get("remedy", "")])
        c = f.get("container")
        row[2].append((c.get("name") or c.get("id", "")[:12]) if c
                      else "daemon")
    return [(sev, check, _where(cs), title, remedy)
            for sev, check, cs, title, remedy in rows.values()]


def _where(names):
    # Names only: the image of each container is in the detailed
    # findings, and a long list of "name (image)" swamps the table.
    names = list(dict.fromkeys(names))
    if len(names) == 1:
        return names[0]
    return f"{len(names)} containers: {', '.join(names)}"


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
