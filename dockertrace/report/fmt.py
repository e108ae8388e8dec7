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
    if not fig.spread:
        return ""
    lo, hi = fig.spread
    return f"{num(lo)} – {num(hi)}"


def cell(v):
    """A table cell: numbers formatted, everything else as text."""
    if isinstance(v, float):
        return num(v)
    return "" if v is None else str(v)


def numeric_columns(table):
    """Indexes of the columns whose cells are all numbers (or "-" for a
    missing one): those are right-aligned, header included."""
    out = set()
    for i in range(len(table.columns)):
        cells = [r[i] for r in table.rows if i < len(r)]
        if cells and all(isinstance(c, (int, float)) or c in ("-", None)
                         for c in cells):
            out.add(i)
    return out


def plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def environment_rows(env, started_at="", duration_s=None):
    """(name, value) rows of the environment table."""
    rows = [
        ("kernel", env.kernel),
        ("OS", env.os),
        ("Docker", f"{env.docker_version} (API {env.api_version})"),
        ("containerd", env.containerd_version),
        ("runc", env.runc_version),
        ("storage driver", env.storage_driver),
        ("cgroups", f"{env.cgroup_version}, driver {env.cgroup_driver}"),
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


def mechanisms(section):
    """"point: mechanism" pairs of a section, grouped by mechanism."""
    by = {}
    for point, mech in sorted(section.mechanisms.items()):
        by.setdefault(str(mech), []).append(str(point))
    return "; ".join(f"{m}: {', '.join(p)}" for m, p in sorted(by.items()))


def container(finding):
    c = finding.get("container")
    if not c:
        return "daemon"
    name = c.get("name") or c.get("id", "")[:12]
    return f"{name} ({c.get('image', '')})" if c.get("image") else name


def short(v, limit=120):
    """A declared or effective value in one line."""
    text = v if isinstance(v, str) else repr(v)
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
