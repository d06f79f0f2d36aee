#!/usr/bin/env bash
# mkpayload.sh SOURCE.S OUT: assemble a 64-bit payload and wrap it in a
# minimal bzImage (boot protocol 2.15 header, one setup sector, 64-bit
# entry at +0x200 of the protected-mode part), as quokka's -kernel loads it.
set -euo pipefail
src=$1 out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --64 -o "$tmp/p.o" "$src"
objcopy -O binary -j .text "$tmp/p.o" "$tmp/p.bin"
python3 - "$tmp/p.bin" "$out" <<'PY'
import sys
code = open(sys.argv[1], "rb").read()
img = bytearray(1024 + 0x200 + len(code))
img[0x1F1] = 1                       # setup_sects: the setup part is 2 sectors
img[0x1FE:0x200] = b"\x55\xAA"
img[0x201] = 0x66                    # jump over the header (unused by quokka)
img[0x202:0x206] = b"HdrS"
img[0x206:0x208] = (0x020F).to_bytes(2, "little")    # protocol 2.15
img[0x211] = 0x01                    # loadflags: LOADED_HIGH
img[0x234] = 1                       # relocatable
img[0x236:0x238] = (0x0003).to_bytes(2, "little")    # xloadflags: 64-bit entry
img[0x238:0x23C] = (2048).to_bytes(4, "little")      # cmdline_size
img[1024 + 0x200:] = code
open(sys.argv[2], "wb").write(img)
PY
