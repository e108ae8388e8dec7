"""docker run argument lists -> docker-py keyword arguments, no dockerd.

The expected values are what docker's own CLI sends for the same
arguments (checked against dockerd in tests/system/test_runargs.py).
"""

import os
import shlex
import subprocess
import sys

import pytest

from dockertrace import errors
from dockertrace.runargs import (
    IGNORED_OPTIONS,
    SUPPORTED_OPTIONS,
    RunArgsError,
    RunSpec,
    _parser,
    parse_run_args,
)

# -e KEY and --env-file pass-through lines read this, not os.environ, so
# the tests do not depend on who runs them.
ENVIRON = {"HOME": "/home/dt", "EMPTY": ""}


def parse(line, environ=ENVIRON):
    return parse_run_args(shlex.split(line), environ=environ)


@pytest.mark.parametrize("line, kwargs", [
    # container
    ("--name web-1", {"name": "web-1"}),
    ("--name=/web_1.a", {"name": "/web_1.a"}),
    ("-w /srv", {"working_dir": "/srv"}),
    ("--workdir=/srv", {"working_dir": "/srv"}),
    ("-u 1000", {"user": "1000"}),
    ("--user 1000:1000", {"user": "1000:1000"}),
    ("-h box", {"hostname": "box"}),
    ("--hostname box", {"hostname": "box"}),
    # One word, never shell-split; "" clears the image's entrypoint.
    ("--entrypoint '/bin/sh -c'", {"entrypoint": ["/bin/sh -c"]}),
    ("--entrypoint ''", {"entrypoint": [""]}),
    ("-l a=b -l c --label d=e=f",
     {"labels": {"a": "b", "c": "", "d": "e=f"}}),
    ("--init", {"init": True}),
    ("--stop-signal SIGINT", {"stop_signal": "SIGINT"}),
    ("--runtime runc", {"runtime": "runc"}),
    ("--restart no", {"restart_policy": {"Name": "no",
                                         "MaximumRetryCount": 0}}),
    ("--restart always", {"restart_policy": {"Name": "always",
                                             "MaximumRetryCount": 0}}),
    ("--restart unless-stopped",
     {"restart_policy": {"Name": "unless-stopped",
                         "MaximumRetryCount": 0}}),
    ("--restart on-failure:5",
     {"restart_policy": {"Name": "on-failure", "MaximumRetryCount": 5}}),
    # environment
    ("-e A=1 --env B= -e C=x=y",
     {"environment": ["A=1", "B=", "C=x=y"]}),
    # KEY alone copies it from here; unset, it goes as is, as docker does.
    ("-e HOME -e EMPTY -e NOPE",
     {"environment": ["HOME=/home/dt", "EMPTY=", "NOPE"]}),
    # resources
    ("--cpus 0.5", {"nano_cpus": 500_000_000}),
    ("--cpus 2", {"nano_cpus": 2_000_000_000}),
    ("--cpus=.1", {"nano_cpus": 100_000_000}),
    ("--cpus 0.000000001", {"nano_cpus": 1}),
    ("-c 512", {"cpu_shares": 512}),
    ("--cpu-shares=2048", {"cpu_shares": 2048}),
    ("--cpu-period 100000 --cpu-quota 50000",
     {"cpu_period": 100000, "cpu_quota": 50000}),
    ("--cpu-quota -1", {"cpu_quota": -1}),
    ("--cpuset-cpus 0-1", {"cpuset_cpus": "0-1"}),
    ("-m 512m", {"mem_limit": 512 << 20}),
    ("--memory 1g", {"mem_limit": 1 << 30}),
    ("--memory=100k", {"mem_limit": 100 << 10}),
    ("-m 1048576", {"mem_limit": 1048576}),
    ("-m 64MB", {"mem_limit": 64 << 20}),
    ("-m 2GiB", {"mem_limit": 2 << 30}),
    ("-m 1.5k", {"mem_limit": 1536}),
    ("-m 64m --memory-swap 128m",
     {"mem_limit": 64 << 20, "memswap_limit": 128 << 20}),
    ("--memory-swap -1", {"memswap_limit": -1}),
    ("--pids-limit 100", {"pids_limit": 100}),
    ("--pids-limit -1", {"pids_limit": -1}),
    ("--ulimit nofile=1024:2048",
     {"ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]}),
    # No hard limit means hard = soft; a repeated name keeps the last.
    ("--ulimit nproc=64 --ulimit core=0 --ulimit nproc=32",
     {"ulimits": [{"Name": "nproc", "Soft": 32, "Hard": 32},
                  {"Name": "core", "Soft": 0, "Hard": 0}]}),
    ("--ulimit memlock=-1:-1",
     {"ulimits": [{"Name": "memlock", "Soft": -1, "Hard": -1}]}),
    # storage
    ("-v /srv/data:/data -v /etc/hosts:/h:ro --volume vol1:/v:rw,z",
     {"volumes": ["/srv/data:/data", "/etc/hosts:/h:ro",
                  "vol1:/v:rw,z"]}),
    ("-v /anon -v /anon2:ro", {"volumes": ["/anon", "/anon2:ro"]}),
    ("--mount type=bind,src=/srv,dst=/data,readonly",
     {"mounts": [{"Type": "bind", "Source": "/srv", "Target": "/data",
                  "ReadOnly": True}]}),
    ("--mount type=bind,source=/srv,target=/d,ro=false,"
     "bind-propagation=rslave",
     {"mounts": [{"Type": "bind", "Source": "/srv", "Target": "/d",
                  "ReadOnly": False,
                  "BindOptions": {"Propagation": "rslave"}}]}),
    ("--mount src=vol1,destination=/v,volume-nocopy,volume-label=a=b",
     {"mounts": [{"Type": "volume", "Source": "vol1", "Target": "/v",
                  "ReadOnly": False,
                  "VolumeOptions": {"NoCopy": True,
                                    "Labels": {"a": "b"}}}]}),
    ("--mount type=volume,dst=/v,volume-driver=local,volume-opt=o=bind",
     {"mounts": [{"Type": "volume", "Source": None, "Target": "/v",
                  "ReadOnly": False,
                  "VolumeOptions": {"DriverConfig": {
                      "Name": "local", "Options": {"o": "bind"}}}}]}),
    ("--mount type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770",
     {"mounts": [{"Type": "tmpfs", "Source": None, "Target": "/t",
                  "ReadOnly": False,
                  "TmpfsOptions": {"SizeBytes": 64 << 20,
                                   "Mode": 0o1770}}]}),
    ("--tmpfs /run --tmpfs /tmp:rw,size=64m,mode=1777",
     {"tmpfs": {"/run": "", "/tmp": "rw,size=64m,mode=1777"}}),
    ("--read-only", {"read_only": True}),
    ("--shm-size 128m", {"shm_size": 128 << 20}),
    # network
    ("--network host", {"network_mode": "host"}),
    ("--net=none", {"network_mode": "none"}),
    ("--network container:db", {"network_mode": "container:db"}),
    ("-p 8080:80", {"ports": {"80/tcp": [("", "8080")]}}),
    ("-p 127.0.0.1:8080:80/tcp",
     {"ports": {"80/tcp": [("127.0.0.1", "8080")]}}),
    ("-p 80", {"ports": {"80/tcp": [("", "")]}}),
    ("-p 127.0.0.1::53/UDP", {"ports": {"53/udp": [("127.0.0.1", "")]}}),
    ("-p [::1]:8080:80", {"ports": {"80/tcp": [("::1", "8080")]}}),
    ("-p 8000-8001:100-101/udp",
     {"ports": {"100/udp": [("", "8000")], "101/udp": [("", "8001")]}}),
    # A host range for one container port: dockerd picks from the range.
    ("-p 8000-8010:80", {"ports": {"80/tcp": [("", "8000-8010")]}}),
    ("-p 8080:80 --publish 127.0.0.1:9090:80 -p 53:53/sctp",
     {"ports": {"80/tcp": [("", "8080"), ("127.0.0.1", "9090")],
                "53/sctp": [("", "53")]}}),
    ("--dns 1.1.1.1 --dns 2001:4860:0:0:0:0:0:8888",
     {"dns": ["1.1.1.1", "2001:4860::8888"]}),
    # host=ip and [ipv6] are accepted; the daemon is sent host:ip.
    ("--add-host db:10.0.0.2 --add-host v6=[::1] "
     "--add-host gw:host-gateway",
     {"extra_hosts": ["db:10.0.0.2", "v6:::1", "gw:host-gateway"]}),
    # isolation: capabilities normalised like docker's CLI does.
    ("--cap-drop ALL --cap-add NET_BIND_SERVICE",
     {"cap_add": ["CAP_NET_BIND_SERVICE"], "cap_drop": ["ALL"]}),
    ("--cap-add sys_admin --cap-add CAP_SYS_ADMIN --cap-add net_raw",
     {"cap_add": ["CAP_NET_RAW", "CAP_SYS_ADMIN"]}),
    ("--cap-add ALL --cap-add NET_ADMIN --cap-drop SYS_RESOURCE",
     {"cap_add": ["ALL"], "cap_drop": ["CAP_SYS_RESOURCE"]}),
    # Added and dropped at once: added wins.
    ("--cap-add chown --cap-drop chown --cap-drop mknod",
     {"cap_add": ["CAP_CHOWN"], "cap_drop": ["CAP_MKNOD"]}),
    ("--security-opt no-new-privileges --security-opt seccomp=unconfined "
     "--security-opt label:disable",
     {"security_opt": ["no-new-privileges", "seccomp=unconfined",
                       "label:disable"]}),
    ("--privileged", {"privileged": True}),
    ("--device /dev/fuse",
     {"devices": [{"PathOnHost": "/dev/fuse",
                   "PathInContainer": "/dev/fuse",
                   "CgroupPermissions": "rwm"}]}),
    ("--device /dev/fuse:r --device /dev/sda:/dev/xvda:rw "
     "--device /dev/null:/dev/n",
     {"devices": [{"PathOnHost": "/dev/fuse",
                   "PathInContainer": "/dev/fuse",
                   "CgroupPermissions": "r"},
                  {"PathOnHost": "/dev/sda",
                   "PathInContainer": "/dev/xvda",
                   "CgroupPermissions": "rw"},
                  {"PathOnHost": "/dev/null",
                   "PathInContainer": "/dev/n",
                   "CgroupPermissions": "rwm"}]}),
    ("--sysctl net.ipv4.ip_forward=1 --sysctl kernel.msgmax=65536",
     {"sysctls": {"net.ipv4.ip_forward": "1",
                  "kernel.msgmax": "65536"}}),
    ("--ipc host", {"ipc_mode": "host"}),
    ("--ipc container:db", {"ipc_mode": "container:db"}),
    ("--ipc shareable", {"ipc_mode": "shareable"}),
    ("--pid host", {"pid_mode": "host"}),
    ("--pid container:db", {"pid_mode": "container:db"}),
    ("--uts host", {"uts_mode": "host"}),
    ("--userns host", {"userns_mode": "host"}),
    ("--cgroupns private", {"cgroupns": "private"}),
    ("--cgroup-parent /dockertrace",
     {"cgroup_parent": "/dockertrace"}),
    # health
    ("--health-cmd 'wget -q localhost'",
     {"healthcheck": {"test": ["CMD-SHELL", "wget -q localhost"]}}),
    ("--health-cmd true --health-interval 1m30s --health-timeout 500ms "
     "--health-retries 3 --health-start-period 1.5s",
     {"healthcheck": {"test": ["CMD-SHELL", "true"],
                      "interval": 90_000_000_000,
                      "timeout": 500_000_000, "retries": 3,
                      "start_period": 1_500_000_000}}),
    # Without --health-cmd the image's test is kept.
    ("--health-interval 1h", {"healthcheck": {
        "interval": 3600_000_000_000}}),
    ("--no-healthcheck", {"healthcheck": {"test": ["NONE"]}}),
    # ignored: nothing reaches docker-py
    ("-d --rm -i -t --pull never --platform linux/amd64", {}),
    ("", {}),
])
def test_option_to_kwargs(line, kwargs):
    spec = parse(f"{line} img")
    assert spec.image == "img"
    assert spec.command is None
    assert spec.create_kwargs == kwargs


def test_kwargs_are_plain_values():
    # Converted here, so what goes to docker-py is explicit: ints, not
    # "512m" strings that docker-py would parse on its own.
    kw = parse("-m 512m --memory-swap 1g --shm-size 64m --cpus 1.5 "
               "-c 512 --pids-limit 10 img").create_kwargs
    assert all(type(v) is int for v in kw.values())


def test_relative_paths_made_absolute(tmp_path, monkeypatch):
    # docker turns ./x into an absolute path before sending it.
    monkeypatch.chdir(tmp_path)
    kw = parse("-v ./data:/data --mount type=bind,src=conf,dst=/c "
               "img").create_kwargs
    assert kw["volumes"] == [f"{tmp_path}/data:/data"]
    assert kw["mounts"][0]["Source"] == f"{tmp_path}/conf"


def test_mount_quoted_csv():
    # docker reads --mount as CSV, so a quoted field may hold a comma.
    kw = parse("--mount 'type=volume,dst=/v,\"volume-opt=o=a,b\"' "
               "img").create_kwargs
    opts = kw["mounts"][0]["VolumeOptions"]["DriverConfig"]["Options"]
    assert opts == {"o": "a,b"}


def test_mount_and_ulimit_are_docker_types():
    from docker import types
    kw = parse("--mount type=tmpfs,dst=/t --ulimit nofile=1 "
               "img").create_kwargs
    assert isinstance(kw["mounts"][0], types.Mount)
    assert isinstance(kw["ulimits"][0], types.Ulimit)


def test_env_file(tmp_path):
    path = tmp_path / "env"
    # A byte-order mark, comments, indented lines, pass-through names.
    path.write_text("\ufeffA=1\n# comment\n\n  B=two words \nHOME\n"
                    "NOPE\nC=\n", encoding="utf-8")
    spec = parse(f"--env-file {path} -e A=override img")
    assert spec.create_kwargs["environment"] == [
        "A=1", "B=two words ", "HOME=/home/dt", "C=", "A=override"]


def test_env_from_os_environ(monkeypatch):
    monkeypatch.setenv("DT_RUNARGS_TEST", "yes")
    spec = parse_run_args(["-e", "DT_RUNARGS_TEST", "img"])
    assert spec.create_kwargs["environment"] == ["DT_RUNARGS_TEST=yes"]


def test_seccomp_profile_is_sent_inline(tmp_path):
    # dockerd cannot read the caller's file, so docker sends its content.
    path = tmp_path / "profile.json"
    path.write_text('{\n  "defaultAction": "SCMP_ACT_ALLOW",\n'
                    '  "syscalls": []\n}\n')
    kw = parse(f"--security-opt seccomp={path} img").create_kwargs
    assert kw["security_opt"] == [
        'seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}']


@pytest.mark.parametrize("line, image, command", [
    ("img", "img", None),
    ("-e A=1 img sh -c 'x -y'", "img", ("sh", "-c", "x -y")),
    # Options after the image belong to the command, ours or not.
    ("busybox sh -c 'echo hi'", "busybox", ("sh", "-c", "echo hi")),
    ("img --name x -e B=2 --rm", "img", ("--name", "x", "-e", "B=2",
                                         "--rm")),
    ("-c 512 img -c 3", "img", ("-c", "3")),
    ("--cpu-quota -1 img -1", "img", ("-1",)),
    ("-- img --help", "img", ("--help",)),
    ("img -- x", "img", ("--", "x")),
    ("registry.local:5000/ns/img:1.0@sha256:abc ls",
     "registry.local:5000/ns/img:1.0@sha256:abc", ("ls",)),
    ("img ''", "img", ("",)),
])
def test_image_and_command(line, image, command):
    spec = parse(line)
    assert (spec.image, spec.command) == (image, command)


@pytest.mark.parametrize("line, ignored, tty", [
    ("-it", ("--interactive", "--tty"), False),
    ("-ti", ("--interactive", "--tty"), False),
    ("-dit", ("--detach", "--interactive", "--tty"), False),
    ("-itd", ("--detach", "--interactive", "--tty"), False),
    ("-d", ("--detach",), False),
    ("--rm -it", ("--rm", "--interactive", "--tty"), False),
    ("-d --rm", ("--detach", "--rm"), False),
    ("--detach --interactive --tty", ("--detach", "--interactive",
                                      "--tty"), False),
    ("--pull missing --platform linux/arm64", ("--pull", "--platform"),
     False),
])
def test_ignored_flags(line, ignored, tty):
    spec = parse(f"{line} img sh")
    assert spec.ignored == ignored
    # Nothing is attached, so no tty is asked for (see IGNORED_OPTIONS).
    assert "tty" not in spec.create_kwargs
    assert spec.command == ("sh",)
    assert all(name in IGNORED_OPTIONS for name in spec.ignored)


@pytest.mark.parametrize("line, kwargs", [
    # A value-taking short option may end a group, as in docker.
    ("-itp 8080:80", {"ports": {"80/tcp": [("", "8080")]}}),
    ("-ite A=1", {"environment": ["A=1"]}),
    ("-itm64m", {"mem_limit": 64 << 20}),
])
def test_short_option_groups(line, kwargs):
    spec = parse(f"{line} img")
    assert spec.create_kwargs == kwargs
    assert "--tty" in spec.ignored


def test_publish_dropped_with_host_network():
    # docker run warns and discards -p under --network host; docker-py
    # would refuse the combination outright.
    spec = parse("--network host -p 8080:80 img")
    assert spec.create_kwargs == {"network_mode": "host"}
    assert spec.ignored == ("--publish",)


def test_spec_fields():
    spec = parse("--name web --network none -e A=1 img true")
    assert spec == RunSpec(
        image="img", command=("true",),
        create_kwargs={"name": "web", "network_mode": "none",
                       "environment": ["A=1"]},
        name="web", network_mode="none", ignored=())
    # Frozen, and hashable despite the dict.
    with pytest.raises(AttributeError):
        spec.image = "other"
    assert hash(spec) == hash(parse("--name web --network none img true"))


@pytest.mark.parametrize("line, argument, words", [
    ("--foo img", "--foo", ["unknown docker run option --foo",
                            "dockertrace startup --help"]),
    ("--foo=1 img", "--foo", ["unknown docker run option --foo"]),
    ("-X img", "-X", ["unknown docker run option -X"]),
    ("-iz img", "-z", ["unknown docker run option -z"]),
    # No abbreviations: docker has none either.
    ("--mem 1g img", "--mem", ["unknown docker run option --mem"]),
    ("--name", "--name", ["--name needs a value"]),
    ("-e", "--env", ["--env needs a value"]),
    ("--rm=yes img", "--rm", ["--rm takes no value"]),
    ("", None, ["no image given", "[OPTIONS] IMAGE [COMMAND...]"]),
    ("-d --rm -e A=1", None, ["no image given"]),
    ("--", None, ["no image given"]),
    ("--cpus abc img", "--cpus",
     ['--cpus needs a number such as 0.5, got "abc"']),
    ("--cpus -1 img", "--cpus", ['--cpus needs a number of 0 or more']),
    ("--cpus 0.0000000001 img", "--cpus", ["at most 9 decimal places"]),
    ("-m lots img", "--memory", ['--memory needs a size such as 512m',
                                 '"lots"']),
    ("-m -5 img", "--memory", ["--memory needs a size"]),
    ("--memory-swap 1x img", "--memory-swap", ["--memory-swap needs"]),
    ("--shm-size 1.2.3 img", "--shm-size", ["--shm-size needs a size"]),
    ("-c half img", "--cpu-shares", ["--cpu-shares needs a whole number"]),
    ("--pids-limit 1.5 img", "--pids-limit", ["--pids-limit needs"]),
    ("--name -x img", "--name", ["--name needs a value"]),
    ("--name a img", "--name", ["--name needs a name"]),
    ("--name 'a b' img", "--name", ["--name needs a name"]),
    ("-e =1 img", "--env", ["--env needs KEY=VALUE"]),
    ("-l =x img", "--label", ["--label needs KEY=VALUE"]),
    ("--sysctl net.ipv4.ip_forward img", "--sysctl",
     ["--sysctl needs KEY=VALUE"]),
    ("-v data img", "--volume", ["--volume needs an absolute path"]),
    ("-v a/b:/data img", "--volume", ["--volume needs a volume name"]),
    ("-v /a:/b:c:d img", "--volume", ["SRC:DST[:OPTIONS]"]),
    ("-v /a::/b img", "--volume", ["SRC:DST[:OPTIONS]"]),
    ("-v /a:/b:rx img", "--volume", ["options among ro, rw"]),
    ("--mount type=nfs,dst=/a img", "--mount", ["type=bind"]),
    ("--mount type=bind,dst=/a img", "--mount", ["a source"]),
    ("--mount src=v img", "--mount", ["a target"]),
    ("--mount type=bind,src=/a,dst=/b,tmpfs-size=1m img", "--mount",
     ["tmpfs-size belongs to type=tmpfs"]),
    ("--mount type=tmpfs,src=/a,dst=/b img", "--mount",
     ["no source for type=tmpfs"]),
    ("--mount type=bind,src=/a,dst=/b,readonly=maybe img", "--mount",
     ["readonly=true or readonly=false"]),
    ("--mount dst=/b,color=red img", "--mount",
     ['--mount option "color" is not supported']),
    ("--mount dst=/b,type img", "--mount", ["KEY=VALUE pairs"]),
    ("--mount type=tmpfs,dst=/b,tmpfs-mode=999 img", "--mount",
     ["tmpfs-mode in octal"]),
    ("--tmpfs run img", "--tmpfs", ["--tmpfs needs an absolute path"]),
    ("--ulimit nofile img", "--ulimit", ["NAME=SOFT[:HARD]"]),
    ("--ulimit files=1 img", "--ulimit", ["NAME among core"]),
    ("--ulimit nofile=a:b img", "--ulimit", ["whole numbers"]),
    ("--ulimit nofile=10:5 img", "--ulimit", ["no larger than the hard"]),
    ("--restart sometimes img", "--restart", ["one of no, always"]),
    ("--restart always:3 img", "--restart", ["takes no retry count"]),
    ("--restart on-failure:x img", "--restart", ["on-failure:N"]),
    ("--restart on-failure:-1 img", "--restart", ["0 or more"]),
    ("-p 80:http img", "--publish", ["[IP:][HOST_PORT:]PORT[/PROTO]"]),
    ("-p 70000 img", "--publish", ["from 1 to 65535"]),
    ("-p 90-80 img", "--publish", ["from 1 to 65535"]),
    ("-p 80/icmp img", "--publish", ["tcp, udp, sctp"]),
    ("-p 1.2.3:80:80 img", "--publish", ["an IP address"]),
    ("-p 8000-8002:80-81 img", "--publish", ["of the same length"]),
    ("--dns resolver img", "--dns", ['an IP address, got "resolver"']),
    ("--add-host db img", "--add-host", ["HOST:IP"]),
    ("--add-host db:nowhere img", "--add-host", ["an IP address"]),
    ("--device dev/fuse img", "--device", ["absolute device paths"]),
    ("--device nvidia.com/gpu=all img", "--device", ["CDI"]),
    ("--device /dev/a:/dev/b:rwx img", "--device", ["r, w and m"]),
    ("--device /dev/a:/b:r:x img", "--device", ["HOST_PATH"]),
    ("--security-opt seccomp img", "--security-opt", ["KEY=VALUE"]),
    ("--security-opt seccomp=/nonexistent.json img", "--security-opt",
     ["seccomp=/nonexistent.json", "No such file"]),
    ("--security-opt systempaths=unconfined img", "--security-opt",
     ["not supported"]),
    ("--ipc bogus img", "--ipc", ["one of none, private, shareable"]),
    ("--pid private img", "--pid", ["one of host, container:NAME"]),
    ("--uts private img", "--uts", ["one of host"]),
    ("--userns remap img", "--userns", ["one of host"]),
    ("--cgroupns shared img", "--cgroupns", ["one of host, private"]),
    ("--health-interval soon img", "--health-interval",
     ["a duration such as 30s"]),
    ("--health-timeout 5 img", "--health-timeout", ["a duration"]),
    ("--health-interval=-1s img", "--health-interval",
     ["cannot be negative"]),
    ("--health-retries x img", "--health-retries", ["a whole number"]),
    ("--health-cmd true --no-healthcheck img", "--no-healthcheck",
     ["conflicts"]),
    ("--pull always img", "--pull", ["never pulls", "docker pull"]),
    ("--pull sometimes img", "--pull", ["missing or never"]),
    ("--env-file /nonexistent/env img", "--env-file",
     ["/nonexistent/env", "No such file"]),
])
def test_errors(line, argument, words):
    with pytest.raises(RunArgsError) as info:
        parse(line)
    err = info.value
    assert isinstance(err, errors.Error)
    assert err.exit_code == 2
    assert err.argument == argument
    for word in words:
        assert word in str(err)


def test_env_file_bad_name(tmp_path):
    path = tmp_path / "env"
    path.write_text("A=1\nBAD KEY=2\n")
    with pytest.raises(RunArgsError, match=r"line 2: bad variable name"):
        parse(f"--env-file {path} img")


def test_supported_options_lists_every_option():
    # The help text is written by hand; keep it in step with the parser.
    for action in _parser()._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        for option in longs:
            assert option in SUPPORTED_OPTIONS, option
    assert all(len(line) < 80 for line in SUPPORTED_OPTIONS.splitlines())


def test_import_stays_cheap():
    # The CLI imports runargs for --help; docker-py costs ~0.2 s to load.
    code = ("import sys, dockertrace; before = 'docker' in sys.modules; "
            "import dockertrace.runargs; "
            "print(before, 'docker' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(
                             os.path.dirname(__file__)))).stdout
    before, after = out.split()
    assert after == before
