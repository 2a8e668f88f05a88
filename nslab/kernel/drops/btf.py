"""Where the fields the drop monitor reads lie, from the kernel's own BTF (/sys/kernel/btf/vmlinux).

bpftrace resolves `$skb->dev->nd_net.net->ns.inum` itself by turning the structs' types into C and
parsing them with clang: `struct net` and `struct sock` pull in hundreds of types, and attaching
took 1.9 s of CPU, every time a monitor started (a run of ./run tests starts several; `nslab why`
on its own starts one). Read here once, the same places cost bpftrace plain loads from offsets.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

VMLINUX = "/sys/kernel/btf/vmlinux"
BTF_MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
_TYPE = struct.Struct("<III")  # name_off, info, size or type
_INT = struct.Struct("<I")  # an INT's encoding (bits 24-27), offset and bits
INT_SIGNED = 1
_MEMBER = struct.Struct("<III")  # name_off, type, offset (bits; with kind_flag, bit size in the top 8 bits)
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = range(1, 12)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(12, 20)
# bytes of kind-specific data after a type's header: fixed, and per member (vlen)
_FIXED = {INT: 4, ARRAY: 12, VAR: 4, DECL_TAG: 4}
_PER_MEMBER = {STRUCT: 12, UNION: 12, ENUM: 8, FUNC_PROTO: 8, DATASEC: 12, ENUM64: 12}

# The fields the program reads: (struct, member path) -> the name the program uses.
FIELDS = {
    ("sk_buff", "dev"): "skb_dev",
    ("sk_buff", "_skb_refdst"): "skb_refdst",
    ("sk_buff", "sk"): "skb_sk",
    ("sk_buff", "head"): "skb_head",
    ("sk_buff", "network_header"): "skb_network_header",
    ("sk_buff", "tail"): "skb_tail",
    ("net_device", "nd_net.net"): "dev_net",
    ("net_device", "ifindex"): "dev_ifindex",
    ("dst_entry", "dev"): "dst_dev",
    ("sock", "__sk_common.skc_net.net"): "sk_net",
    ("net", "ns.inum"): "net_inum",
}


@dataclass(frozen=True)
class Field:
    offset: int  # bytes from the start of the struct
    size: int  # bytes: 1, 2, 4 or 8
    signed: bool = False  # a signed integer (BTF_INT_SIGNED in its type's encoding)


class Btf:
    """The types of one BTF blob, indexed by id, with the structs and unions by name."""

    def __init__(self, data: bytes):
        magic, _, _, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(data)
        if magic != BTF_MAGIC:
            raise ValueError("not BTF (bad magic)")
        self._data = data
        self._strings = hdr_len + str_off
        self._types = [0]  # id -> offset of its header (id 0 is void)
        self.by_name: dict[str, int] = {}
        wanted = {name for name, _ in FIELDS}
        pos, end = hdr_len + type_off, hdr_len + type_off + type_len
        while pos < end:
            name_off, info, _ = _TYPE.unpack_from(data, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind in (STRUCT, UNION) and name_off and self.name(name_off) in wanted:
                self.by_name.setdefault(self.name(name_off), len(self._types))
            self._types.append(pos)
            pos += _TYPE.size + _FIXED.get(kind, 0) + _PER_MEMBER.get(kind, 0) * vlen

    def name(self, off: int) -> str:
        start = self._strings + off
        return self._data[start : self._data.index(b"\0", start)].decode()

    def _header(self, type_id: int) -> tuple[int, int, int, int, int]:
        """(id, kind, vlen, kind_flag, size or type) of *type_id*, typedefs and qualifiers seen through."""
        while True:
            _, info, size_or_type = _TYPE.unpack_from(self._data, self._types[type_id])
            kind = (info >> 24) & 0x1F
            if kind not in (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG):
                return type_id, kind, info & 0xFFFF, info >> 31, size_or_type
            type_id = size_or_type

    def _layout(self, type_id: int) -> tuple[int, bool]:
        """(size in bytes, signed) of *type_id*: a pointer is 8 bytes, an integer is signed as its encoding says."""
        type_id, kind, _, _, size = self._header(type_id)
        if kind == PTR:
            return 8, False
        signed = kind == INT and bool((_INT.unpack_from(self._data, self._types[type_id] + _TYPE.size)[0] >> 24) & INT_SIGNED)
        return size, signed

    def _member(self, type_id: int, name: str) -> tuple[int, int] | None:
        """(byte offset, type id) of member *name* of struct or union *type_id*, looked for
        inside its anonymous members too (the kernel's unions of struct groups)."""
        type_id, kind, vlen, kind_flag, _ = self._header(type_id)
        if kind not in (STRUCT, UNION):
            return None
        pos = self._types[type_id] + _TYPE.size
        for i in range(vlen):
            name_off, member_type, offset = _MEMBER.unpack_from(self._data, pos + i * _MEMBER.size)
            bits = offset & 0xFFFFFF if kind_flag else offset
            if name_off and self.name(name_off) == name:
                return bits // 8, member_type
            if not name_off:
                inner = self._member(member_type, name)
                if inner is not None:
                    return bits // 8 + inner[0], inner[1]
        return None

    def field(self, struct_name: str, path: str) -> Field:
        """Where *path* ('nd_net.net') lies in struct *struct_name*, and its size (LookupError if it is not there)."""
        type_id = self.by_name.get(struct_name)
        if type_id is None:
            raise LookupError(f"struct {struct_name} is not in the kernel's BTF")
        offset = 0
        for part in path.split("."):
            found = self._member(type_id, part)
            if found is None:
                raise LookupError(f"struct {struct_name} has no member {path} in the kernel's BTF")
            offset, type_id = offset + found[0], found[1]
        return Field(offset, *self._layout(type_id))


@functools.cache
def fields() -> dict[str, Field]:
    """The program's fields as this kernel lays them out (LookupError naming what is missing)."""
    try:
        with open(VMLINUX, "rb") as f:
            btf = Btf(f.read())
    except (OSError, ValueError, struct.error) as exc:
        raise LookupError(f"the kernel's BTF ({VMLINUX}) cannot be read: {exc}") from None
    return {name: btf.field(struct_name, path) for (struct_name, path), name in FIELDS.items()}
