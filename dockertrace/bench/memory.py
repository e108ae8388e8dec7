"""memory: what containers of one image share in memory.

K containers of ``dockertrace-bigfiles`` run ``sleep``. All of them map
the same busybox binary: overlayfs hands out the lower layer's inode, so
its page cache pages are one set, mapped K times. ``smaps_rollup`` shows
it as Shared_Clean pages and a PSS below the RSS.

Then each container reads ``/data/f64m`` in turn, and the page cache
charged to each container's memory cgroup is read before and after:
the first reader brings the file into the page cache and is charged for
it, the others hit the same pages and are charged (almost) nothing.
"""

import logging
import os
import time

from dockertrace.bench.common import (BIGFILES_IMAGE, Containers, Reporter,
                                      cgroup_file, container_pid,
                                      figure_of, read_page_cache,
                                      read_smaps_rollup, rerun)
from dockertrace.bench.model import Section, Series, Table
from dockertrace.bench.parse import median

log = logging.getLogger(__name__)

MIB = 1 << 20
BIG_FILE = "data/f64m"


def count(runs):
    """How many containers: at least 3, so "the others" are several."""
    return max(3, runs)


def evict_from_page_cache(client, image):
    """Drop the big file's pages from the page cache, so that the first
    reader really reads it (an earlier section or test may have left it
    cached, charged to a cgroup that is gone).

    ``POSIX_FADV_DONTNEED`` on the file in the image's layer directory
    evicts just that file; returns False when the layer cannot be found
    (another storage driver), in which case nothing is dropped.
    """
    data = client.images.get(image).attrs.get("GraphDriver", {}).get(
        "Data") or {}
    dirs = [data.get("UpperDir", "")] + (data.get("LowerDir") or ""
                                         ).split(":")
    for d in dirs:
        path = os.path.join(d, BIG_FILE) if d else ""
        if path and os.path.exists(path):
            os.sync()
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            return True
    log.warning("no layer directory holds %s; not evicted", BIG_FILE)
    return False


def run(*, runs=3, image, progress=None, shared_image=BIGFILES_IMAGE):
    k = count(runs)
    rep = Reporter("memory", k + 2, progress)
    with Containers() as box:
        rep.step(f"{k} containers of {shared_image}")
        boxes = [box.start(shared_image, ["sleep", "3600"],
                           hint=f"mem{i + 1}") for i in range(k)]
        pids = [container_pid(c) for c in boxes]
        smaps = [read_smaps_rollup(p) for p in pids]
        stat_files = [cgroup_file(p, "memory", "memory.stat")
                      for p in pids]

        rep.step("evicting /data/f64m from the page cache")
        evicted = evict_from_page_cache(box.client, shared_image)
        before = [read_page_cache(f) for f in stat_files]
        reads = []
        after = []
        for i, c in enumerate(boxes):
            rep.step(f"container {i + 1}/{k} reads /data/f64m")
            t0 = time.monotonic()
            box.exec(c, ["sh", "-c", "cat /data/f64m > /dev/null"])
            reads.append(time.monotonic() - t0)
            after.append([read_page_cache(f) for f in stat_files])
    rep.finish()
    return build_section(smaps, before, after, reads, runs=runs,
                         image=image, evicted=evicted,
                         shared_image=shared_image)


def build_section(smaps, before, after, reads, *, runs, image,
                  evicted=True, shared_image=BIGFILES_IMAGE):
    """``after[i][j]``: page cache of container j after container i
    read the file."""
    k = len(smaps)
    # What each container was charged by its own read.
    charged = [(after[i][i] - (after[i - 1][i] if i else before[i])) / MIB
               for i in range(k)]
    final = after[-1]
    rows = []
    for j in range(k):
        s = smaps[j]
        rows.append((f"#{j + 1}", s.rss_kib, s.pss_kib, s.shared_kib,
                     s.private_kib, round(before[j] / MIB, 1),
                     round(final[j] / MIB, 1)))
    figures = [
        figure_of("memory.sleep.rss_kib", "RSS of sleep in a container",
                  [s.rss_kib for s in smaps], "KiB",
                  f"median of {k} containers (min, max)", digits=0),
        figure_of("memory.sleep.pss_kib", "PSS of sleep in a container",
                  [s.pss_kib for s in smaps], "KiB",
                  f"median of {k} containers (min, max)", digits=0),
        figure_of("memory.sleep.shared_kib", "shared pages (Shared_*)",
                  [s.shared_kib for s in smaps], "KiB",
                  f"median of {k} containers (min, max)", digits=0),
        figure_of("memory.sleep.private_kib", "private pages (Private_*)",
                  [s.private_kib for s in smaps], "KiB",
                  f"median of {k} containers (min, max)", digits=0),
        figure_of("memory.f64m.first_charge_mib",
                  "page cache charged to the first reader of f64m",
                  [charged[0]], "MiB", "memory cgroup page cache "
                  "before and after its read", digits=1),
        figure_of("memory.f64m.other_charge_mib",
                  "page cache charged to each later reader",
                  charged[1:], "MiB",
                  f"median of {k - 1} containers (min, max)", digits=1),
        figure_of("memory.f64m.first_read_ms", "first read of f64m",
                  [reads[0] * 1000], "ms", "docker exec of cat, timed "
                  "from the host", digits=1),
        figure_of("memory.f64m.cached_read_ms", "later reads of f64m",
                  [r * 1000 for r in reads[1:]], "ms",
                  f"median of {k - 1} containers (min, max)", digits=1),
    ]
    table = Table(
        title=f"{k} containers of {shared_image}",
        columns=("box", "RSS", "PSS", "shared", "private", "cache0",
                 "cache1"),
        rows=tuple(rows),
        note="RSS..private: KiB of the container's sleep process "
             "(smaps_rollup); cache0/cache1: MiB of page cache charged "
             "to its memory cgroup before and after all reads")
    series = (
        Series(key="memory.f64m.charged",
               title="Page cache charged per container reading f64m",
               kind="bars", x=tuple(f"#{i + 1}" for i in range(k)),
               y={"charged MiB": [round(c, 1) for c in charged]},
               x_label="container, in reading order", y_label="MiB"),
        Series(key="memory.sleep.pss",
               title="RSS and PSS of sleep per container", kind="bars",
               x=tuple(f"#{i + 1}" for i in range(k)),
               y={"RSS KiB": [s.rss_kib for s in smaps],
                  "PSS KiB": [s.pss_kib for s in smaps]},
               x_label="container", y_label="KiB"))
    return Section(
        name="memory", title="Memory: page cache shared by containers of "
        "one image", figures=tuple(figures), tables=(table,),
        series=series,
        explanation=tuple(explain(smaps, charged, reads, evicted)),
        rerun=rerun("memory", runs, image))


def explain(smaps, charged, reads, evicted):
    k = len(smaps)
    rss = median([s.rss_kib for s in smaps])
    pss = median([s.pss_kib for s in smaps])
    shared = median([s.shared_kib for s in smaps])
    out = [
        f"Each container's sleep has {rss:.0f} KiB resident, "
        f"{shared:.0f} KiB of it shared; its proportional share (PSS) is "
        f"{pss:.0f} KiB. The shared pages are the busybox binary's: all "
        f"{k} containers map the same inode of the image's layer, so "
        "the kernel keeps one copy (other processes of the same image "
        "on this host share them too)."]
    if k > 1:
        others = median(charged[1:])
        out.append(
            f"Reading the 64 MiB file charged {charged[0]:.1f} MiB of page "
            f"cache to the first container's memory cgroup and "
            f"{others:.1f} MiB (median) to each of the {k - 1} others: "
            "a page is charged to the cgroup that brought it into the "
            "cache, and the later readers find the lower file's pages "
            f"there. The first read took {reads[0] * 1000:.0f} ms, the "
            f"later ones {median(reads[1:]) * 1000:.0f} ms.")
    if not evicted:
        out.append("The file could not be evicted from the page cache "
                   "first, so the first reader may have found it cached.")
    return out
