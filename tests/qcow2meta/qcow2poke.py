#!/usr/bin/env python3
"""Read and corrupt qcow2 metadata at known places, for check/repair tests.

  qcow2poke.py IMG get FIELD              header field, L1/L2/refcount lookups
  qcow2poke.py IMG set WHAT VALUE         overwrite one metadata item
  qcow2poke.py batch < LINES              many copies-and-pokes in one run

FIELD/WHAT: hdr.<name>, l1[i], l2[i,j] (L2 entry j of the table L1 entry i
points at), reft[i], rc[cluster] (refcount), sn[i].<l1_offset|l1_size|extra>.
Values are integers (0x.. allowed), or |N to set bits; `set` prints the old
value.
"""
import struct
import sys

HDR = [("magic", 0, ">I"), ("version", 4, ">I"), ("backing_offset", 8, ">Q"),
       ("cluster_bits", 20, ">I"), ("size", 24, ">Q"), ("l1_size", 36, ">I"),
       ("l1_offset", 40, ">Q"), ("reftable_offset", 48, ">Q"),
       ("reftable_clusters", 56, ">I"), ("nb_snapshots", 60, ">I"),
       ("snapshots_offset", 64, ">Q"), ("incompat", 72, ">Q"),
       ("refcount_order", 96, ">I")]
OFF_MASK = 0x00fffffffffffe00


class Img:
    def __init__(self, path):
        self.f = open(path, "r+b")

    def rd(self, off, fmt):
        self.f.seek(off)
        b = self.f.read(struct.calcsize(fmt))
        b = b + bytes(struct.calcsize(fmt) - len(b))
        return struct.unpack(fmt, b)[0]

    def wr(self, off, fmt, v):
        self.f.seek(off)
        self.f.write(struct.pack(fmt, v))

    def hdr(self, name):
        for n, off, fmt in HDR:
            if n == name:
                return off, fmt
        raise SystemExit("unknown header field " + name)

    def h(self, name):
        return self.rd(*self.hdr(name))

    def locate(self, what):
        """Return (offset, struct format) of a metadata item."""
        cs = 1 << self.h("cluster_bits")
        if what.startswith("hdr."):
            return self.hdr(what[4:])
        kind, idx = what.split("[", 1)
        idx = idx.split("]", 1)[0]
        rest = what.split("]", 1)[1]
        if kind == "l1":
            return self.h("l1_offset") + 8 * int(idx, 0), ">Q"
        if kind == "l2":
            i, j = (int(x, 0) for x in idx.split(","))
            l2 = self.rd(self.h("l1_offset") + 8 * i, ">Q") & OFF_MASK
            return l2 + 8 * j, ">Q"
        if kind == "reft":
            return self.h("reftable_offset") + 8 * int(idx, 0), ">Q"
        if kind == "rc":
            order = self.h("refcount_order") if self.h("version") >= 3 else 4
            if order != 4:
                raise SystemExit("rc[] supports 16-bit refcounts only")
            c = int(idx, 0)
            per = cs * 8 // 16
            rb = self.rd(self.h("reftable_offset") + 8 * (c // per), ">Q") & ~0x1ff
            return rb + 2 * (c % per), ">H"
        if kind == "sn":
            off = self.h("snapshots_offset")
            for _ in range(int(idx, 0)):
                off = (off + 7) & ~7
                ids, ns = self.rd(off + 12, ">H"), self.rd(off + 14, ">H")
                off += 40 + self.rd(off + 36, ">I") + ids + ns
            off = (off + 7) & ~7
            fields = {".l1_offset": (0, ">Q"), ".l1_size": (8, ">I"), ".extra": (36, ">I")}
            return off + fields[rest][0], fields[rest][1]
        raise SystemExit("unknown item " + what)


def batch():
    """Lines of `SRC DST ITEM VALUE [ITEM VALUE]...` on stdin: copy SRC to
    DST, then set each ITEM (or `truncate` to VALUE bytes)."""
    import shutil
    for line in sys.stdin:
        w = line.split()
        if not w:
            continue
        shutil.copyfile(w[0], w[1])
        img = Img(w[1])
        for item, v in zip(w[2::2], w[3::2]):
            if item == "truncate":
                img.f.truncate(int(v, 0))
                continue
            off, fmt = img.locate(item)
            old = img.rd(off, fmt)
            img.wr(off, fmt, old | int(v[1:], 0) if v.startswith("|") else int(v, 0))
        img.f.close()


def main():
    if sys.argv[1] == "batch":
        return batch()
    img = Img(sys.argv[1])
    off, fmt = img.locate(sys.argv[3])
    old = img.rd(off, fmt)
    if sys.argv[2] == "get":
        print(hex(old))
    elif sys.argv[2] == "off":
        print(off)
    else:
        v = sys.argv[4]
        img.wr(off, fmt, old | int(v[1:], 0) if v.startswith("|") else int(v, 0))
        print(hex(old))


if __name__ == "__main__":
    main()
