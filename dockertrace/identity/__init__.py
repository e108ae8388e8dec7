"""Which container a cgroup belongs to, and what the daemon says about it.

The BPF side of dockertrace tags every event with the current task's
cgroup v2 id.  This package turns that id into a cgroup path
(:mod:`~dockertrace.identity.cgroups`, by walking the cgroup v2 tree, so
containers started before the tracer are known too), the path into a
container id (:mod:`~dockertrace.identity.paths`), and the container id
into a name, an image and the rest through the Engine API
(:mod:`~dockertrace.identity.docker`).

Importing it stays cheap: docker-py is imported only when the Engine API
is first needed.  Tests that point the proc root at a fixture set
``dockertrace.identity.cgroups.PROC_ROOT``.
"""

from dockertrace.identity.cgroups import (
    CgroupLayout,
    CgroupMount,
    CgroupTree,
    cgroup_dir,
    cgroup_id_of_pid,
    cgroup_layout,
    cgroup_path_of_pid,
    container_of_pid,
    parse_mountinfo,
)
from dockertrace.identity.docker import (
    GONE_STATES,
    ContainerInfo,
    Resolver,
)
from dockertrace.identity.paths import (
    RUNTIMES,
    ContainerRef,
    parse_cgroup_path,
)

__all__ = [
    "GONE_STATES",
    "RUNTIMES",
    "CgroupLayout",
    "CgroupMount",
    "CgroupTree",
    "ContainerInfo",
    "ContainerRef",
    "Resolver",
    "cgroup_dir",
    "cgroup_id_of_pid",
    "cgroup_layout",
    "cgroup_path_of_pid",
    "container_of_pid",
    "parse_cgroup_path",
    "parse_mountinfo",
]
