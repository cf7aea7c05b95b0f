#!/usr/bin/python3
"""fn_http: a Python function server, as a serverless platform runs one.

Speaks the zdtm protocol (--out FILE --pidfile FILE). It serves HTTP on
127.0.0.1 (port 0, written to ./port) with the standard library's
http.server: POST /fn with a JSON body {"n": N} answers
{"sum_sq": 0^2 + ... + (N-1)^2, "digest": sha256 of the body, "served": the
number of requests this process has answered, counting this one}. The
pidfile is written once it listens; the harness warms it with requests,
checkpoints it, restores it and checks the answers (served continues from
the checkpointed count). On SIGTERM it writes PASS (or FAIL if a request
failed) and exits.
"""
import argparse
import hashlib
import http.server
import json
import os
import signal
import sys

served = 0
errors = []


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global served
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            n = int(json.loads(body)["n"])
            served += 1
            out = json.dumps({"sum_sq": sum(i * i for i in range(n)),
                              "digest": hashlib.sha256(body).hexdigest(),
                              "served": served}).encode()
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--pidfile", required=True)
    a = ap.parse_args()

    def on_term(signum, frame):
        with open(a.out, "w") as f:
            f.write("FAIL: %s\n" % "; ".join(errors) if errors else "PASS\n")
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    srv = http.server.HTTPServer((os.environ.get("FN_HOST", "127.0.0.1"), int(os.environ.get("FN_PORT", "0"))),
                                 Handler)
    with open("port.tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename("port.tmp", "port")
    with open(a.pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(a.pidfile + ".tmp", a.pidfile)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
