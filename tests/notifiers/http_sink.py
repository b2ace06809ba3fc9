#!/usr/bin/env python3
"""Loopback HTTP server for the webhook tests (started by the test itself).

Usage: http_sink.py LOGFILE   -> prints the port on stdout, serves until killed.
Every POST is logged as one line "<path> <status> <content-type> <body>".
Paths: /fail-N answers 500 to its first N requests, then 200; /reject
answers 400; /slow waits 1 s, then 200; anything else 200.
"""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = open(sys.argv[1], "a", buffering=1)
counts = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode("utf-8", "replace")
        path = self.path
        with lock:
            counts[path] = counts.get(path, 0) + 1
            k = counts[path]
        status = 200
        if path.startswith("/fail-"):
            if k <= int(path[len("/fail-"):].split("?")[0]):
                status = 500
        elif path == "/reject":
            status = 400
        elif path == "/slow":
            time.sleep(1.0)
        with lock:
            log.write("%s %d %s %s\n" % (path, status,
                                         self.headers.get("Content-Type"), body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
