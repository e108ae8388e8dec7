#!/usr/bin/env bash
# Builds the local test images without any registry (none is reachable on the
# project's machines, so `docker pull` is never an option):
#
#   dockertrace-busybox:latest   Debian's static busybox, one symlink per applet
#   dockertrace-bigfiles:latest  the same plus /data/f4k, /data/f1m, /data/f64m
#                                (copy-up tests need real, non-sparse data in a
#                                lower layer) and /data/SHA256SUMS
#
# Each image carries a label with a hash of this script and of the busybox
# binary; an image whose label matches is left alone, so a second run costs
# one `docker image inspect` per image. Pass --force to rebuild anyway.
#
# Needs a running dockerd and /bin/busybox from busybox-static (setup.sh
# provides both).
set -euo pipefail

LABEL=org.dockertrace.images-hash
BUSYBOX=/bin/busybox

force=0
for arg in "$@"; do
    case $arg in
        --force) force=1 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "images.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

die() { echo "images.sh: $*" >&2; exit 1; }

[[ -x $BUSYBOX ]] || die "$BUSYBOX missing (apt-get install busybox-static)"
# Debian's dynamic `busybox` package also installs /bin/busybox; copied into
# an image without its libc it would fail with a confusing "no such file".
if readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'program interpreter'; then
    die "$BUSYBOX is dynamically linked; install busybox-static instead of busybox"
fi
command -v docker >/dev/null || die "docker CLI missing"

hash=$(cat "$0" "$BUSYBOX" | sha256sum | cut -c1-16)

current() {
    [[ $force == 0 ]] || return 1
    local got
    got=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null) || return 1
    [[ $got == "$hash" ]]
}

work=$(mktemp -d /tmp/dockertrace-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

make_busybox_rootfs() {
    local root=$1 applet
    mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev}
    chmod 1777 "$root/tmp"
    cp "$BUSYBOX" "$root/bin/busybox"
    # A symlink named `busybox` would replace the binary itself.
    for applet in $("$BUSYBOX" --list); do
        [[ $applet == busybox ]] && continue
        ln -s busybox "$root/bin/$applet"
    done
}

# Fixed content so tests can predict it (and check it with SHA256SUMS): the
# 64-byte line below repeated, cut at the size. Written out in full, so the
# files are not sparse and every block is non-zero.
PATTERN='dockertrace-bigfiles 0123456789abcdefghijklmnopqrstuvwxyzABCDEF'

make_data() {
    local dir=$1 name size
    mkdir -p "$dir"
    for spec in f4k:4096 f1m:1048576 f64m:67108864; do
        name=${spec%%:*} size=${spec#*:}
        # `yes` dies of SIGPIPE when head is done; that is the normal end.
        { yes "$PATTERN" || true; } | head -c "$size" >"$dir/$name"
    done
    (cd "$dir" && sha256sum f4k f1m f64m >SHA256SUMS)
}

import_image() {
    local root=$1 tag=$2 old new
    old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    # Owner and mode come from the tar, so make them root's whoever built it.
    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . |
        docker import \
            -c 'ENV PATH=/bin' \
            -c 'CMD ["sh"]' \
            -c "LABEL $LABEL=$hash" \
            - "$tag" >/dev/null
    new=$(docker image inspect -f '{{.Id}}' "$tag")
    # The replaced image would linger as <none>; drop it unless a container
    # still uses it (then docker refuses, which is fine).
    if [[ -n $old && $old != "$new" ]]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
    # Proves the image actually runs (static binary, applets, PATH).
    docker run --rm --network none "$tag" sh -c 'true' ||
        die "$tag was built but does not run"
}

built=()
if ! current dockertrace-busybox:latest; then
    make_busybox_rootfs "$work/busybox"
    import_image "$work/busybox" dockertrace-busybox:latest
    built+=(dockertrace-busybox)
fi

if ! current dockertrace-bigfiles:latest; then
    make_busybox_rootfs "$work/bigfiles"
    make_data "$work/bigfiles/data"
    import_image "$work/bigfiles" dockertrace-bigfiles:latest
    docker run --rm --network none dockertrace-bigfiles:latest \
        sh -c 'cd /data && sha256sum -c -s SHA256SUMS' ||
        die "dockertrace-bigfiles:latest has wrong /data contents"
    built+=(dockertrace-bigfiles)
fi

if ((${#built[@]})); then
    echo "images.sh: built ${built[*]} (hash $hash)"
else
    echo "images.sh: images current (hash $hash)"
fi
