#!/usr/bin/env python3
"""Host side of the test guest's `vs` command (virtio-serial), for QEMU or vmm.

  vspeer.py read  SOCK N    connect, read N bytes, verify the pattern
  vspeer.py write SOCK N    connect, write N pattern bytes
  vspeer.py echo  SOCK N    write N pattern bytes and verify them coming back
  vspeer.py hold  SOCK SECS connect and read nothing for SECS seconds

SOCK is a unix socket path (waited for) or host:port. Byte k of the
stream is (splitmix64(k // 8) >> 8 * (k % 8)) & 0xff; the pattern is
generated once and cached in /tmp. Prints one "peer:" line with MiB/s.
"""
import os, socket, sys, threading, time, struct

M64 = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def pattern(n):
    words = max((n + 7) // 8, 8 << 20)  # one 64 MiB cache serves small runs
    path = "/tmp/vspattern-%d.bin" % words
    try:
        with open(path, "rb") as f:
            data = f.read()
        if len(data) == words * 8:
            return memoryview(data)[:n]
    except OSError:
        pass
    pack = struct.Struct("<Q").pack
    data = b"".join(pack(splitmix64(i)) for i in range(words))
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    return memoryview(data)[:n]


def size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:].upper(), 1)
    return int(s[:-1] if mult > 1 else s, 0) * mult


def connect(where, timeout=30):
    end = time.time() + timeout
    while True:
        try:
            if ":" in where and not os.path.exists(where):
                h, p = where.rsplit(":", 1)
                return socket.create_connection((h, int(p)))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(where)
            return s
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.05)


def reader(s, pat, n, res):
    got, t0 = 0, None
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    while got < n:
        k = s.recv_into(mv, min(len(buf), n - got))
        if not k:
            res["err"] = "EOF after %d bytes" % got
            return
        if t0 is None:
            t0 = time.time()
        if mv[:k] != pat[got:got + k]:
            i = next(i for i in range(k) if buf[i] != pat[got + i])
            res["err"] = "mismatch at offset %d got 0x%02x want 0x%02x" % (got + i, buf[i], pat[got + i])
            return
        got += k
    res["t"] = (t0 or time.time(), time.time())
    res["n"] = got


def report(mode, n, t):
    dt = max(t[1] - t[0], 1e-9)
    print("peer: %s %d bytes in %.3f s = %.1f MiB/s" % (mode, n, dt, n / dt / (1 << 20)), flush=True)


def main():
    mode, where = sys.argv[1], sys.argv[2]
    if mode == "hold":
        s = connect(where)
        print("peer: holding %s" % where, flush=True)
        time.sleep(float(sys.argv[3]))
        return 0
    n = size(sys.argv[3])
    pat = pattern(n)
    s = connect(where)
    if mode == "read":
        res = {}
        reader(s, pat, n, res)
        if "err" in res:
            print("peer: read FAILED: " + res["err"], flush=True)
            return 1
        report("read", n, res["t"])
    elif mode == "write":
        t0 = time.time()
        s.sendall(pat)
        report("write", n, (t0, time.time()))
        time.sleep(float(os.environ.get("VSPEER_LINGER", "2")))
    elif mode == "echo":
        res = {}
        th = threading.Thread(target=reader, args=(s, pat, n, res))
        th.start()
        t0 = time.time()
        s.sendall(pat)
        th.join()
        if "err" in res:
            print("peer: echo FAILED: " + res["err"], flush=True)
            return 1
        report("echo", n, (t0, res["t"][1]))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
