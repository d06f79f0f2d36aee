#!/usr/bin/env python3
"""Talk to quokka's human monitor on a socket, one command at a time.

    hmp.py unix:PATH|tcp:HOST:PORT CMD...

Waits (up to 10 s) for the socket, reads the banner up to the prompt, then
sends each command and reads its output up to the next prompt; after
`quit`/`q` reads until the peer closes. Prints the whole transcript."""
import socket
import sys
import time

PROMPT = b"(quokka) "


def connect(where):
    deadline = time.time() + 10
    while True:
        try:
            if where.startswith("unix:"):
                s = socket.socket(socket.AF_UNIX)
                s.connect(where[5:])
            else:
                host, port = where[4:].rsplit(":", 1)
                s = socket.create_connection((host, int(port)))
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def read_until(s, marker, out):
    """Read until out ends with marker past what it holds now."""
    s.settimeout(10)
    start = len(out)
    while len(out) == start or not out.endswith(marker):
        b = s.recv(65536)
        if not b:
            return False
        out += b
    return True


def main():
    s = connect(sys.argv[1])
    out = bytearray()
    read_until(s, PROMPT, out)
    for cmd in sys.argv[2:]:
        s.sendall(cmd.encode() + b"\n")
        if cmd in ("quit", "q"):
            try:
                read_until(s, b"\0", out)      # until EOF
            except OSError:
                pass
            break
        if not read_until(s, PROMPT, out):
            break
    sys.stdout.write(out.decode(errors="replace"))


main()
