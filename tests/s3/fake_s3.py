#!/usr/bin/env python3
"""Misbehaving S3 servers and a killable proxy for the S3 plugin's tests.

    fake_s3.py MODE [ARG]   listens on 127.0.0.1, prints its port, serves

Modes
  proxy HOST:PORT   forward every connection to HOST:PORT (kill it to
                    simulate the server going away mid-run)
  slowdown N        the first N requests get 503 SlowDown, then 200 OK
  ignore-inm        accepts every PUT, ignoring If-None-Match (like s3rver)
  inm-501           answers 501 NotImplemented to If-None-Match (like OSS)
  lossy-inm         honours If-None-Match, but closes the connection without
                    an answer after storing the first (non-probe) PUT
  loop-token        ListObjectsV2 that is always truncated with the same
                    continuation token
  loop-notoken      always truncated, no token, the same key on every page
  hang              accepts connections and never answers
  tls CERT:KEY      like ignore-inm, over TLS with that certificate
Nothing here checks signatures: radosgw does that in the other tests.
"""
import http.server
import socket
import socketserver
import ssl
import sys
import threading

mode = sys.argv[1]
arg = sys.argv[2] if len(sys.argv) > 2 else ""
lock = threading.Lock()
count = [0]
store = {}
dropped = []

ERR = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code>'
       '<Message>%s</Message></Error>')


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, body=b"", ctype="application/xml"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        data = self.body()
        with lock:
            count[0] += 1
            n = count[0]
        if mode == "slowdown":
            if n <= int(arg):
                return self.send(503, (ERR % ("SlowDown", "Please reduce your "
                                              "request rate.")).encode())
            return self.send(200, b"ok" if self.command == "GET" else b"")
        if mode in ("loop-token", "loop-notoken"):
            if "list-type=2" in self.path:
                tok = ("<NextContinuationToken>same</NextContinuationToken>"
                       if mode == "loop-token" else "")
                xml = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
                       '<Name>b</Name><IsTruncated>true</IsTruncated>%s'
                       '<Contents><Key>p/a</Key></Contents>'
                       '</ListBucketResult>' % tok)
                return self.send(200, xml.encode())
            return self.send(200)
        if mode == "lossy-inm" and self.command == "PUT":
            if self.headers.get("If-None-Match") == "*" and self.path in store:
                return self.send(412, (ERR % ("PreconditionFailed",
                                              "At least one of the pre-"
                                              "conditions you specified did "
                                              "not hold")).encode())
            store[self.path] = data
            if "dimple-probe" not in self.path and not dropped:
                dropped.append(self.path)
                self.close_connection = True  # the answer is lost
                return
            return self.send(200)
        if mode == "inm-501" and self.headers.get("If-None-Match"):
            return self.send(501, (ERR % ("NotImplemented", "A header you "
                                          "provided implies functionality "
                                          "that is not implemented")).encode())
        # ignore-inm / inm-501 / tls: a tiny store that ignores conditions
        if self.command == "PUT":
            store[self.path] = data
            return self.send(200)
        if self.command == "GET" and "list-type=2" not in self.path:
            if self.path in store:
                return self.send(200, store[self.path], "application/octet-stream")
            return self.send(404, (ERR % ("NoSuchKey", "no")).encode())
        if self.command == "DELETE":
            store.pop(self.path, None)
            return self.send(204)
        xml = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
               '<IsTruncated>false</IsTruncated></ListBucketResult>')
        return self.send(200, xml.encode())

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve_raw(on_conn):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    print(ls.getsockname()[1], flush=True)
    held = []
    while True:
        c, _ = ls.accept()
        held.append(c)
        threading.Thread(target=on_conn, args=(c,), daemon=True).start()


def main():
    if mode == "proxy":
        host, port = arg.rsplit(":", 1)

        def fwd(c):
            try:
                u = socket.create_connection((host, int(port)))
            except OSError:
                c.close()
                return
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=pipe, args=(u, c), daemon=True).start()
            pipe(c, u)
        serve_raw(fwd)
    elif mode == "hang":
        def hold(c):
            try:
                while c.recv(65536):
                    pass
            except OSError:
                pass
        serve_raw(hold)
    else:
        srv = Server(("127.0.0.1", 0), Handler)
        if mode == "tls":
            cert, key = arg.split(":", 1)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        print(srv.server_address[1], flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    main()
