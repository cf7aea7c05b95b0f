#!/usr/bin/python3
"""fn_watchdog: a function behind a watchdog parent, as platforms run them.

Speaks the zdtm protocol (--out FILE --pidfile FILE) and the HTTP protocol
of fn_http.py (POST /fn {"n": N} -> {"sum_sq", "digest", "served"}). The
watchdog (the process the harness starts) listens on 127.0.0.1 (port in
./port) and forks the function process; each request is proxied to it over
a unix SOCK_SEQPACKET pair, and the function computes the answer and counts
what it served. The watchdog notices a dead function and reports it. On
SIGTERM the watchdog stops the function (which exits 0 if every request went
well), reaps it and writes PASS or FAIL.
"""
import argparse
import hashlib
import http.server
import json
import os
import signal
import socket
import sys


def function(sk):
    served = 0
    while True:
        msg = sk.recv(1 << 20)
        if not msg or msg == b"quit":
            os._exit(0 if msg else 1)
        body = bytes.fromhex(msg.decode())
        served += 1
        out = {"sum_sq": sum(i * i for i in range(int(json.loads(body)["n"]))),
               "digest": hashlib.sha256(body).hexdigest(), "served": served,
               "pid": os.getpid(), "ppid": os.getppid()}
        sk.send(json.dumps(out).encode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--pidfile", required=True)
    a = ap.parse_args()
    errors = []
    srv = http.server.HTTPServer(("127.0.0.1", 0), None)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child = os.fork()
    if child == 0:
        srv.socket.close()
        mine.close()
        function(theirs)
    theirs.close()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            try:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                pid, status = os.waitpid(child, os.WNOHANG)
                if pid:
                    raise RuntimeError("the function died: status %#x" % status)
                mine.send(body.hex().encode())
                out = mine.recv(1 << 20)
                ans = json.loads(out)
                if ans["pid"] != child or ans["ppid"] != os.getpid():
                    raise RuntimeError("function pid/ppid %s/%s" % (ans["pid"], ans["ppid"]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
            except Exception as e:  # reported at SIGTERM
                errors.append(repr(e))
                self.send_error(500)

        def log_message(self, *args):
            pass

    def on_term(signum, frame):
        mine.send(b"quit")
        _, status = os.waitpid(child, 0)
        if status != 0:
            errors.append("function exited with status %#x" % status)
        with open(a.out, "w") as f:
            f.write("FAIL: %s\n" % "; ".join(errors) if errors else "PASS\n")
        os._exit(0)

    srv.RequestHandlerClass = Handler
    signal.signal(signal.SIGTERM, on_term)
    with open("port.tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename("port.tmp", "port")
    with open(a.pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(a.pidfile + ".tmp", a.pidfile)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
