"""How cext/build.py picks event headers and makes them cdef-able (no root).

cffi's cdef has no preprocessor, so the builder strips directives but keeps
integer defines as ``#define NAME ...``.  These tests parse real cdefs with
cffi, without compiling anything.
"""

import importlib.util
import pathlib

import cffi
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location(
        "dt_cext_build", ROOT / "cext" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HEADER = """\
/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* dockertrace: events */
#ifndef __DT_X_H
#define __DT_X_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define DT_X_LEN 16
#define DT_X_MASK (1 << 3)	/* a comment */
#define DT_X_NAME "text"
#define DT_X_MAX(a, b) ((a) > (b) ? (a) : (b))
#define DT_X_LONG \\
	(1 + 2)

enum dt_x_kind {
	DT_X_A = 1,
	DT_X_B = 2,
};

struct dt_x_event {
	__u64 ts_ns;
	__u32 kind;
	char comm[16];
};

#endif /* __DT_X_H */
"""


@pytest.mark.parametrize("text, marked", [
    (HEADER, True),
    ("/* SPDX */\n#ifndef X\n", False),
    ("\n" * 10 + "/* dockertrace: events */\n", False),
])
def test_has_marker(build, text, marked):
    assert build.has_marker(text) is marked


def test_header_cdef_keeps_declarations_and_integer_defines(build):
    cdef = build.header_cdef(HEADER)
    assert "#include" not in cdef and "#ifndef" not in cdef
    assert "#define DT_X_LEN ..." in cdef
    assert "#define DT_X_MASK ..." in cdef
    # Strings, function-like and continued macros cannot be "...".
    assert "DT_X_NAME" not in cdef
    assert "DT_X_MAX" not in cdef
    assert "DT_X_LONG" not in cdef and "(1 + 2)" not in cdef
    # Include guards have no value and go too.
    assert "__DT_X_H" not in cdef
    assert "struct dt_x_event" in cdef


def test_header_cdef_parses(build):
    ffi = cffi.FFI()
    ffi.cdef(build.TYPES_CDEF + build.header_cdef(HEADER))
    # Sizes are only known once compiled; that the declarations parsed is
    # what is tested here.
    assert "dt_x_event" in ffi.list_types()[1]


def test_event_headers_found_by_marker(build, tmp_path):
    (tmp_path / "x.h").write_text(HEADER)
    (tmp_path / "compat.h").write_text("/* not events */\n")
    (tmp_path / "x.bpf.c").write_text(HEADER)
    assert [p.name for p in build.event_headers(tmp_path)] == ["x.h"]


def test_repository_event_headers_parse(build):
    headers = build.event_headers()
    assert "selftest.h" in [p.name for p in headers]
    ffi = cffi.FFI()
    ffi.cdef(build.TYPES_CDEF)
    for path in headers:
        ffi.cdef(build.header_cdef(path.read_text()))
    assert "dt_st_event" in ffi.list_types()[1]
