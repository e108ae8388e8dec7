"""Which CIS Docker Benchmark (v1.3.1) section 5 recommendations the
audit covers, and why the others cannot be judged on a running container.
"""

from __future__ import annotations

from typing import Dict, Tuple

#: CIS id -> (title, check ids that evaluate it, or the reason it cannot
#: be evaluated on a running container).
SECTION_5: Dict[str, Tuple[str, Tuple[str, ...], str]] = {
    "5.1": ("AppArmor profile enabled", ("lsm.unconfined",
            "daemon.no_mac"), "only where the host runs AppArmor"),
    "5.2": ("SELinux security options set", ("lsm.unconfined",
            "daemon.no_mac"), "only where the host runs SELinux"),
    "5.3": ("Linux kernel capabilities restricted", ("caps.dangerous",
            "caps.defaults", "caps.mismatch"), ""),
    "5.4": ("privileged containers not used", ("privileged",), ""),
    "5.5": ("sensitive host system directories not mounted",
            ("mounts.sensitive",), ""),
    "5.6": ("sshd not run within containers", ("proc.sshd",), ""),
    "5.7": ("privileged ports not mapped", ("ports.privileged",), ""),
    "5.8": ("only needed ports open", ("net.listening",),
            "what is needed is the operator's call: listed as info"),
    "5.9": ("host's network namespace not shared", ("ns.net",), ""),
    "5.10": ("memory usage limited", ("limits.memory",
             "limits.mismatch"), ""),
    "5.11": ("CPU priority set", ("limits.cpu", "limits.mismatch"), ""),
    "5.12": ("root filesystem mounted read-only", ("rootfs.writable",), ""),
    "5.13": ("incoming traffic bound to a specific host interface",
             ("ports.all_interfaces",), ""),
    "5.14": ("'on-failure' restart policy set to 5", ("restart.policy",),
             ""),
    "5.15": ("host's process namespace not shared", ("ns.pid",), ""),
    "5.16": ("host's IPC namespace not shared", ("ns.ipc",), ""),
    "5.17": ("host devices not directly exposed", ("devices.host",), ""),
    "5.18": ("default ulimit overwritten only if needed",
             ("ulimits.override",), "need is the operator's call: info"),
    "5.19": ("mount propagation not shared", ("mounts.propagation",), ""),
    "5.20": ("host's UTS namespace not shared", ("ns.uts",), ""),
    "5.21": ("default seccomp profile not disabled",
             ("seccomp.disabled",), ""),
    "5.22": ("docker exec --privileged not used", ("exec.privileged",),
             "only exec sessions still running at audit time are seen; "
             "past ones leave no trace on the container"),
    "5.23": ("docker exec --user=root not used", ("exec.root",),
             "only exec sessions still running at audit time are seen"),
    "5.24": ("cgroup usage confirmed", ("cgroup.parent",),
             "whether a parent cgroup is right is the operator's call"),
    "5.25": ("container restricted from acquiring additional privileges",
             ("nnp.off",), ""),
    "5.26": ("container health checked at runtime", ("health.none",
             "health.unhealthy"), ""),
    "5.27": ("docker commands always use the latest image version", (),
             "not evaluable on a running container: needs the registry "
             "(image.unpinned reports tags instead of digests)"),
    "5.28": ("PIDs cgroup limit used", ("limits.pids", "limits.mismatch"),
             ""),
    "5.29": ("Docker's default bridge docker0 not used",
             ("net.default_bridge",), ""),
    "5.30": ("host's user namespace not shared", ("ns.user", "user.root"),
             ""),
    "5.31": ("Docker socket not mounted inside any containers",
             ("socket.mounted", "socket.tcp"), ""),
}
