"""Fast decoding of ring buffer records into Python values.

Reading a record field by field through cffi costs about 20 us in
CPython; a tracer that sees thousands of events a second cannot afford
that. This module derives a :class:`struct.Struct` from the cffi
declaration of the record (which comes from the same C header the BPF
program uses), so the layout is still defined once, and unpacks a whole
record in one call.
"""

import struct

# cffi primitive type names to struct codes (native sizes, no padding:
# offsets are checked against cffi's and gaps become pad bytes).
_CODES = {
    "char": "c", "int8_t": "b", "uint8_t": "B",
    "int16_t": "h", "uint16_t": "H", "int32_t": "i", "uint32_t": "I",
    "int64_t": "q", "uint64_t": "Q", "int": "i", "unsigned int": "I",
    "short": "h", "unsigned short": "H", "long": "q",
    "unsigned long": "Q", "long long": "q", "unsigned long long": "Q",
    "_Bool": "?",
}


class RecordLayout:
    """``struct.Struct`` view of a C struct declared to cffi.

    ``unpack(data)`` returns a dict of field name to value: integers as
    ints, ``char[N]`` arrays as bytes cut at the first NUL (``raw`` names
    arrays to keep whole, e.g. a buffer of NUL-separated strings).
    """

    def __init__(self, ffi, cname, raw=()):
        ctype = ffi.typeof(cname)
        if ctype.kind != "struct":
            raise TypeError(f"{cname} is not a struct")
        fmt = "<"
        pos = 0
        self.names = []
        self._strings = []
        for name, field in ctype.fields:
            if field.offset > pos:
                fmt += f"{field.offset - pos}x"
            t = field.type
            if t.kind == "array" and t.item.cname == "char":
                fmt += f"{t.length}s"
                if name not in raw:
                    self._strings.append(len(self.names))
            elif t.kind == "primitive" and t.cname in _CODES:
                fmt += _CODES[t.cname]
            else:
                raise TypeError(f"{cname}.{name}: cannot decode {t.cname}")
            self.names.append(name)
            pos = field.offset + ffi.sizeof(t)
        size = ffi.sizeof(ctype)
        if size > pos:
            fmt += f"{size - pos}x"
        self.struct = struct.Struct(fmt)
        if self.struct.size != size:
            raise TypeError(f"{cname}: layout mismatch, struct module "
                            f"gives {self.struct.size} bytes, C {size}")

    @property
    def size(self):
        return self.struct.size

    def unpack(self, data):
        values = list(self.struct.unpack_from(data))
        for i in self._strings:
            values[i] = values[i].split(b"\0", 1)[0]
        return dict(zip(self.names, values))
