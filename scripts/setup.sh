#!/usr/bin/env bash
# Sets up a Debian 12 machine from nothing to a traced container start:
# packages, kernel filesystems, dockerd, test images, Python dependencies,
# the build, an editable install, the other kernels of the kernel matrix
# (scripts/kernel_matrix.py), then `dockertrace startup` as a demo.
#
#   sudo scripts/setup.sh [--no-demo]
#
# Every step checks the real state first (dpkg, /proc/self/mounts, the docker
# socket, image labels, installed distributions) and does nothing when it is
# already right, so a second run takes a few seconds. PYTHON=/path/to/python3
# picks the interpreter; the default is the `python3` on PATH.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PYTHON=${PYTHON:-python3}
# dockerd, bpftool and friends live in sbin, which a root shell reached
# through `su` or a CI runner may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
LOG=/var/log/dockertrace-setup.log
DOCKERD_LOG=/var/log/dockertrace-dockerd.log
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

APT_PACKAGES=(
    docker.io clang llvm libbpf-dev libbpf1 bpftool busybox-static
    libelf-dev zlib1g-dev pkg-config make gcc procps iproute2
    qemu-system-x86 kmod udev chromium chromium-driver
)
# What the steps below actually run; checked after installing because a
# package can be "installed" yet lack a command (diversions, half-removed).
REQUIRED_COMMANDS=(dockerd containerd runc clang llvm-strip bpftool busybox
                   make gcc pkg-config ps ip qemu-system-x86_64 udevadm)

demo=1
for arg in "$@"; do
    case $arg in
        --no-demo) demo=0 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

STEP="starting"
t_start=$(date +%s%N)
on_exit() {
    local rc=$?
    if ((rc != 0)); then
        echo "==> setup.sh FAILED in step: $STEP (exit $rc)" >&2
    fi
}
trap on_exit EXIT
step() { STEP=$1; echo "==> $1"; }
note() { echo "    $*"; }

# Runs a noisy command with its output in $LOG; shows the tail only if it fails.
quiet() {
    echo "+ $*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        echo "    command failed: $*" >&2
        tail -n 30 "$LOG" | sed 's/^/    | /' >&2
        return 1
    fi
}

if [[ $(id -u) != 0 ]]; then
    STEP="checking for root"
    echo "setup.sh: must run as root (sudo scripts/setup.sh)" >&2
    exit 1
fi

# ---------------------------------------------------------------- packages
step "checking packages"
installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}
missing=()
# One dpkg-query for all: a call per package costs more than the rest of
# this step on a second run.
mapfile -t ok < <(dpkg-query -W -f='${Package}\t${Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null |
                  awk -F'\t' '$2 == "install ok installed" {sub(/:.*/, "", $1); print $1}')
for p in "${APT_PACKAGES[@]}"; do
    [[ " ${ok[*]} " == *" $p "* ]] || missing+=("$p")
done
# Without an interpreter, pip or Python headers (cffi compiles against them)
# nothing below works. Debian's own python3 can be completed from apt; any
# other interpreter (pyenv, a venv) is the user's to fix.
if ! command -v "$PYTHON" >/dev/null; then
    if [[ $PYTHON == python3 ]]; then
        missing+=(python3 python3-pip python3-dev)
    else
        echo "setup.sh: PYTHON=$PYTHON not found" >&2; exit 1
    fi
else
    if [[ $(readlink -f "$(command -v "$PYTHON")") == /usr/bin/python3* ]]; then
        "$PYTHON" -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
        installed python3-dev || missing+=(python3-dev)
    fi
fi
if ((${#missing[@]})); then
    step "installing packages: ${missing[*]}"
    quiet apt-get -o DPkg::Lock::Timeout=300 update
    # A name with no candidate would only give apt's generic "unable to
    # locate"; say which one and that the package lists are the problem.
    for p in "${missing[@]}"; do
        cand=$(apt-cache policy "$p" | awk '/Candidate:/ {print $2}')
        if [[ -z $cand || $cand == "(none)" ]]; then
            echo "setup.sh: no apt candidate for $p (check /etc/apt/sources.list)" >&2
            exit 1
        fi
    done
    quiet apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
fi
for c in "${REQUIRED_COMMANDS[@]}" "$PYTHON"; do
    command -v "$c" >/dev/null || { echo "setup.sh: command $c missing after install" >&2; exit 1; }
done
# Facts about the interpreter in one start-up (a pyenv shim costs ~0.1 s per
# call); from here on the real executable is used, which also keeps every
# step on the same interpreter even if PATH changes under make or pip.
read -r PYTHON py_ok py_headers py_managed SCRIPTS_DIR < <("$PYTHON" - <<'EOF'
import os, sys, sysconfig
print(sys.executable,
      int(sys.version_info >= (3, 9)),
      int(os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))),
      int(os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))),
      sysconfig.get_path("scripts"))
EOF
)
((py_ok)) || { echo "setup.sh: $PYTHON is older than 3.9" >&2; exit 1; }
((py_headers)) || { echo "setup.sh: $PYTHON has no C headers (Python.h); cffi cannot build" >&2; exit 1; }
[[ -r /sys/kernel/btf/vmlinux ]] ||
    { echo "setup.sh: kernel has no BTF (/sys/kernel/btf/vmlinux); CO-RE objects cannot load" >&2; exit 1; }

# ------------------------------------------------------- kernel filesystems
step "checking tracefs and bpffs"
mounted() {  # mounted PATH FSTYPE
    awk -v p="$1" -v t="$2" '$2 == p && $3 == t {found=1} END {exit !found}' /proc/self/mounts
}
if ! mounted /sys/kernel/tracing tracefs; then
    note "mounting tracefs on /sys/kernel/tracing"
    mount -t tracefs tracefs /sys/kernel/tracing
fi
if ! mounted /sys/fs/bpf bpf; then
    note "mounting bpffs on /sys/fs/bpf"
    mount -t bpf bpf /sys/fs/bpf
fi

# ------------------------------------------------------------------ dockerd
step "checking dockerd"
DOCKER_SOCK=/var/run/docker.sock
if [[ ${DOCKER_HOST:-} == unix://* ]]; then
    DOCKER_SOCK=${DOCKER_HOST#unix://}
fi
# `docker info` could be a newer CLI or hang on a half-dead daemon; a raw
# /_ping with a timeout asks the Engine API itself.
docker_answers() {
    "$PYTHON" - "$DOCKER_SOCK" <<'EOF'
import socket, sys
try:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(3)
    s.connect(sys.argv[1])
    s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
    sys.exit(0 if s.recv(64).split(b"\r\n")[0].split()[1:2] == [b"200"] else 1)
except (OSError, IndexError):
    sys.exit(1)
EOF
}
if ! docker_answers; then
    note "starting dockerd (log: $DOCKERD_LOG)"
    # No systemd here: a session of its own keeps dockerd alive after this
    # script (and a CI step's process group) ends.
    setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    dockerd_pid=$!
    disown
    for ((i = 0; i < 60; i++)); do
        docker_answers && break
        # A daemon that died (bad config, port in use) will not come back.
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.5
    done
    if ! docker_answers; then
        echo "setup.sh: dockerd did not answer on $DOCKER_SOCK within 30 s" \
             "($(kill -0 "$dockerd_pid" 2>/dev/null && echo still running || echo exited)); log tail:" >&2
        tail -n 30 "$DOCKERD_LOG" | sed 's/^/    | /' >&2
        exit 1
    fi
fi

# ------------------------------------------------------------------- images
step "checking test images"
scripts/images.sh | sed 's/^/    /'

# ------------------------------------------------------------------- python
step "checking Python dependencies"
# Policy guard of Debian's python3 (PEP 668). Root's pip on it is what the
# README asks for; the project does not use a venv.
if ((py_managed)); then
    export PIP_BREAK_SYSTEM_PACKAGES=1
fi
# Prints the requirements of pyproject.toml (build, runtime, test) that the
# interpreter does not satisfy, one per line.
unmet_requirements() {
    "$PYTHON" - pyproject.toml <<'EOF'
import sys
from importlib import metadata
try:
    import tomllib
except ImportError:                     # Python < 3.11
    from pip._vendor import tomli as tomllib
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

with open(sys.argv[1], "rb") as f:
    meta = tomllib.load(f)
reqs = list(meta["build-system"]["requires"])
reqs += meta["project"]["dependencies"]
for extra in meta["project"].get("optional-dependencies", {}).values():
    reqs += extra
for text in dict.fromkeys(reqs):        # cffi is both build and runtime
    req = Requirement(text)
    try:
        have = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        print(text)
        continue
    if not req.specifier.contains(have, prereleases=True):
        print(text)
EOF
}
mapfile -t unmet < <(unmet_requirements)
if ((${#unmet[@]})); then
    step "installing Python packages: ${unmet[*]}"
    quiet "$PYTHON" -m pip install "${unmet[@]}"
    mapfile -t unmet < <(unmet_requirements)
    if ((${#unmet[@]})); then
        echo "setup.sh: still unmet after pip install: ${unmet[*]}" >&2
        exit 1
    fi
fi

# -------------------------------------------------------------------- build
step "building BPF objects and the C extension (make)"
# make itself decides what is out of date.
make PYTHON="$PYTHON"

# ------------------------------------------------------------------ install
step "checking the editable install"
DT="$SCRIPTS_DIR/dockertrace"
# The editable finder freezes the package list of pyproject.toml at install
# time, so a changed pyproject.toml (or another interpreter) means reinstall.
STAMP="$ROOT/build/.setup-editable"
want_stamp="$(sha256sum pyproject.toml | cut -c1-64) $PYTHON"
# Imported from / so that the checkout on sys.path cannot hide a broken
# install; dockertrace.cli comes from cli/ only through the install's mapping.
install_ok() {
    [[ -f $STAMP && $(cat "$STAMP") == "$want_stamp" && -x $DT ]] &&
        (cd / && "$PYTHON" - "$ROOT" <<'EOF'
import json, os, sys
from importlib import metadata
root = sys.argv[1]
dist = metadata.distribution("dockertrace")
direct = json.loads(dist.read_text("direct_url.json") or "{}")
if not direct.get("dir_info", {}).get("editable"):
    sys.exit("not an editable install")
if direct.get("url") != "file://" + root:
    sys.exit("installed from %s, not %s" % (direct.get("url"), root))
import dockertrace.cli.main
if not dockertrace.cli.main.__file__.startswith(os.path.join(root, "cli") + os.sep):
    sys.exit("dockertrace.cli is %s" % dockertrace.cli.main.__file__)
EOF
        )
}
if ! install_ok 2>/dev/null; then
    step "installing dockertrace (pip install -e)"
    rm -f "$STAMP"
    quiet "$PYTHON" -m pip install --no-build-isolation --no-deps -e .
    mkdir -p "$(dirname "$STAMP")"
    echo "$want_stamp" >"$STAMP"
    # pyenv only exposes new console scripts after a rehash; without it the
    # user's `dockertrace` would be "command not found".
    if command -v pyenv >/dev/null; then pyenv rehash >/dev/null 2>&1 || true; fi
    install_ok || { rm -f "$STAMP"; echo "setup.sh: editable install does not import" >&2; exit 1; }
fi

# ------------------------------------------------------ matrix kernels
step "checking the kernels of the kernel matrix"
# Debian's own kernels, booted under qemu by scripts/kernel_matrix.py. Only
# the package's files are unpacked (kernel image and modules), nothing is
# installed: this machine keeps its own kernel. Each series has a
# directory KERNEL_CACHE/<series> holding one unpacked package and a
# .package stamp ("name version"); it is replaced when apt's candidate
# changes. <series>=<package>, where a metapackage is resolved to the
# versioned image package it depends on.
KERNEL_CACHE=${DOCKERTRACE_KERNELS:-/var/cache/dockertrace/kernels}
MATRIX_KERNELS=(6.1=linux-image-amd64 6.12=linux-image-6.12-amd64)
# "package version" of what apt would install for a (meta)package now.
kernel_candidate() {
    local pkg=$1 dep
    dep=$(apt-cache depends --important "$pkg" 2>/dev/null |
          awk '$1 == "Depends:" && $2 ~ /^linux-image-/ {print $2; exit}')
    [[ -n $dep ]] && pkg=$dep
    local ver
    ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n $ver && $ver != "(none)" ]] && echo "$pkg $ver"
}
mkdir -p "$KERNEL_CACHE"
updated=0
for entry in "${MATRIX_KERNELS[@]}"; do
    series=${entry%%=*} meta=${entry#*=}
    dir=$KERNEL_CACHE/$series
    # apt's candidate only changes with its package lists; asking apt-cache
    # costs about a second a package, so a stamp newer than the lists is
    # taken as current.
    if [[ $dir/.package -nt /var/lib/apt/lists ]] &&
            compgen -G "$dir/boot/vmlinuz-*" >/dev/null && [[ -d $dir/lib/modules ]]; then
        continue
    fi
    want=$(kernel_candidate "$meta") || want=""
    if [[ -z $want ]] && ((!updated)); then
        quiet apt-get -o DPkg::Lock::Timeout=300 update
        updated=1
        want=$(kernel_candidate "$meta") || want=""
    fi
    have=$(cat "$dir/.package" 2>/dev/null || true)
    if [[ -z $want ]]; then
        # Offline with a usable cache is fine; with none it is not.
        if [[ -n $have ]] && compgen -G "$dir/boot/vmlinuz-*" >/dev/null; then
            note "$series: apt has no candidate for $meta; keeping $have"
            continue
        fi
        echo "setup.sh: no apt candidate for $meta (kernel $series)" >&2
        exit 1
    fi
    if [[ $want == "$have" ]] && compgen -G "$dir/boot/vmlinuz-*" >/dev/null &&
            [[ -d $dir/lib/modules ]]; then
        touch "$dir/.package"
        continue
    fi
    read -r pkg ver <<<"$want"
    step "fetching kernel $series: $pkg $ver"
    tmp=$(mktemp -d "$KERNEL_CACHE/.fetch-XXXXXX")
    # apt's download sandbox user cannot write into a root-owned temp dir.
    (cd "$tmp" && quiet apt-get -o APT::Sandbox::User=root download "$pkg=$ver")
    quiet dpkg-deb -x "$tmp"/*.deb "$tmp/root"
    rm -rf "$tmp/root/usr/share"
    echo "$want" >"$tmp/root/.package"
    rm -rf "$dir"
    mv "$tmp/root" "$dir"
    rm -rf "$tmp"
done
vng_bin="$SCRIPTS_DIR/vng"
[[ -x $vng_bin ]] || { echo "setup.sh: $vng_bin missing (virtme-ng not installed?)" >&2; exit 1; }

t_end=$(date +%s%N)
note "ready in $(( (t_end - t_start) / 1000000 )) ms"

# --------------------------------------------------------------------- demo
if ((demo)); then
    step "demo: dockertrace startup"
    "$DT" startup </dev/null
fi
STEP="done"
