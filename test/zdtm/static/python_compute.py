#!/usr/bin/python3
"""python_compute: a CPython interpreter checkpointed in the middle of a
computation.

Speaks the zdtm protocol: --out FILE --pidfile FILE.  It imports a handful
of stdlib modules (json, hashlib, re, zlib, struct, collections, fractions,
decimal, random, itertools, functools, bisect), then runs an endless loop
of deterministic steps; every step folds its results into a SHA-256 chain
and keeps a history.  The pidfile is written (tmp + rename) once the loop
is running, so the checkpoint hits the interpreter mid-computation.  On
SIGTERM the loop stops and the whole history is recomputed from scratch:
any corruption of the interpreter's memory/state shows up as a mismatch.
(To keep the run time bounded, every 4th step and the last 300 steps are
recomputed from the recorded chain, and the chain links are all checked.)
"""
import argparse
import bisect
import collections
import decimal
import fractions
import functools
import hashlib
import itertools
import json
import os
import random
import re
import signal
import struct
import sys
import zlib

stop = False


def on_term(signum, frame):
    global stop
    stop = True


WORD_RE = re.compile(r"([a-z]+)(\d+)")


@functools.lru_cache(maxsize=256)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def step(i, prev_digest):
    """One deterministic unit of work, returns (digest, summary)."""
    rnd = random.Random(i)
    data = {
        "i": i,
        "words": ["w%s%d" % (chr(97 + rnd.randrange(26)), rnd.randrange(1000)) for _ in range(20)],
        "nums": [rnd.random() for _ in range(10)],
        "frac": str(sum(fractions.Fraction(k, k + i + 1) for k in range(1, 8))),
        "dec": str(decimal.Decimal(i).sqrt(decimal.Context(prec=30))),
        "fib": fib(i % 200),
    }
    text = json.dumps(data, sort_keys=True)
    assert json.loads(text) == data
    counts = collections.Counter(m.group(1) for m in WORD_RE.finditer(text))
    packed = struct.pack("<%dd" % len(data["nums"]), *data["nums"])
    comp = zlib.compress(text.encode() * 3)
    assert zlib.decompress(comp) == text.encode() * 3
    srt = sorted(rnd.randrange(10 ** 6) for _ in range(50))
    pos = bisect.bisect_left(srt, 500000)
    combos = sum(1 for _ in itertools.combinations(range(8), 3))
    h = hashlib.sha256()
    h.update(prev_digest)
    h.update(text.encode())
    h.update(packed)
    h.update(json.dumps(sorted(counts.items())).encode())
    h.update(struct.pack("<QQQ", len(comp), pos, combos))
    digest = h.digest()
    return digest, (i, h.hexdigest()[:16], zlib.crc32(comp), pos)


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--pidfile", required=True)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    pidfile = os.path.abspath(args.pidfile)

    def fail(msg):
        sys.stderr.write("FAIL: %s\n" % msg)
        with open(out, "w") as f:
            f.write("FAIL: %s\n" % msg)
        sys.exit(1)

    signal.signal(signal.SIGTERM, on_term)
    digest = b"\0" * 32
    history = []
    i = 0
    ready_at = 50
    while not stop:
        prev = digest
        digest, summary = step(i, prev)
        history.append((prev, digest, summary))
        i += 1
        if i == ready_at:
            write_atomic(pidfile, "%d\n" % os.getpid())
            sys.stderr.write("python_compute[%d]: ready\n" % os.getpid())
    if i <= ready_at:
        fail("stopped after only %d steps" % i)

    # recompute the work and compare with what was recorded
    fib.cache_clear()
    if len(history) != i or history[-1][1] != digest or history[0][0] != b"\0" * 32:
        fail("history is inconsistent")
    checked = 0
    for k in range(i):
        prev, dig, summary = history[k]
        if k and prev != history[k - 1][1]:
            fail("chain broken at step %d" % k)
        if k % 4 and k < i - 300:
            continue
        d2, s2 = step(k, prev)
        checked += 1
        if d2 != dig or s2 != summary:
            fail("step %d: %r != recorded %r" % (k, s2, summary))
    sys.stderr.write("python_compute[%d]: %d steps, %d recomputed\n" % (os.getpid(), i, checked))
    with open(out, "w") as f:
        f.write("PASS\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
