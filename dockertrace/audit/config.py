"""Container settings with no kernel counterpart: health check, restart
policy, image pinning, ulimits, and exec sessions (CIS 5.14, 5.18, 5.22,
5.23, 5.26).

These are declared only; the Engine API is the whole truth for them.
"""

from __future__ import annotations

from typing import Iterator

from dockertrace.audit.host import HostFacts
from dockertrace.audit.model import ContainerFacts, Finding, Severity
from dockertrace.audit.rules import finding, rule

R_HEALTH = rule(
    "health.none", "no health check", Severity.LOW, ("5.26",),
    "--health-cmd CMD (or HEALTHCHECK in the Dockerfile)",
    "Without a health check a hung service looks like a running one.")
R_UNHEALTHY = rule(
    "health.unhealthy", "health check failing", Severity.MEDIUM, ("5.26",),
    "look at `docker inspect --format '{{json .State.Health}}'`",
    "The container's own health check reports it unhealthy.")
R_RESTART = rule(
    "restart.policy", "restart policy without a retry limit",
    Severity.LOW, ("5.14",), "--restart on-failure:5",
    "A container that keeps failing and restarting forever can hide an "
    "attack or starve the host.")
R_IMAGE = rule(
    "image.unpinned", "image not pinned by digest", Severity.LOW, (),
    "refer to the image as NAME@sha256:DIGEST",
    "A tag can be moved to other content; a digest cannot.")
R_ULIMITS = rule(
    "ulimits.override", "ulimits overridden", Severity.INFO, ("5.18",),
    "keep the daemon's default ulimits unless the workload needs more",
    "The container overrides the default ulimits at run time.")
R_EXEC_PRIV = rule(
    "exec.privileged", "privileged exec session", Severity.HIGH, ("5.22",),
    "do not use docker exec --privileged",
    "A running exec session was started with --privileged.")
R_EXEC_ROOT = rule(
    "exec.root", "exec session as root", Severity.LOW, ("5.23",),
    "docker exec --user UID", "A running exec session runs as root.")


def check(c: ContainerFacts, h: HostFacts) -> Iterator[Finding]:
    cfg = c.inspect.get("Config") or {}
    hc = c.inspect.get("HostConfig") or {}
    state = c.inspect.get("State") or {}

    test = (cfg.get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        yield finding(R_HEALTH, c.subject,
                      declared={"Healthcheck": cfg.get("Healthcheck")},
                      effective=None, evidence={})
    elif (state.get("Health") or {}).get("Status") == "unhealthy":
        log = (state["Health"].get("Log") or [{}])[-1]
        yield finding(R_UNHEALTHY, c.subject,
                      declared={"Healthcheck": test},
                      effective="unhealthy",
                      evidence={"State.Health.Log[-1]": {
                          "ExitCode": log.get("ExitCode"),
                          "Output": (log.get("Output") or "")[:200]}})

    policy = hc.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    retries = policy.get("MaximumRetryCount") or 0
    if name in ("always", "unless-stopped") or (
            name == "on-failure" and not 0 < retries <= 5):
        yield finding(R_RESTART, c.subject,
                      title=f"restart policy {name}"
                      + (f":{retries}" if name == "on-failure" else ""),
                      declared=policy,
                      effective={"RestartCount":
                                 c.inspect.get("RestartCount")},
                      evidence={})

    image = cfg.get("Image") or ""
    image_id = c.inspect.get("Image") or ""
    pinned = "@sha256:" in image or image.startswith("sha256:") or (
        len(image) >= 12 and image_id.startswith("sha256:" + image))
    if not pinned:
        yield finding(R_IMAGE, c.subject, title=f"image {image} by tag",
                      declared={"Image": image},
                      effective={"image_id": image_id}, evidence={})

    if hc.get("Ulimits"):
        yield finding(R_ULIMITS, c.subject, declared=hc["Ulimits"],
                      effective=None, evidence={})

    for ex in c.inspect.get("_Execs") or []:
        if not ex.get("Running"):
            continue
        user = (ex.get("ProcessConfig") or {}).get("user") or ""
        ev = {"exec": ex.get("ID", "")[:12],
              "command": (ex.get("ProcessConfig") or {}).get("entrypoint")}
        if ex.get("ProcessConfig", {}).get("privileged"):
            yield finding(R_EXEC_PRIV, c.subject, declared=ev,
                          effective={"privileged": True}, evidence=ev)
        if user in ("", "0", "root") and not cfg.get("User"):
            yield finding(R_EXEC_ROOT, c.subject, declared=ev,
                          effective={"user": user or "root"}, evidence=ev)
