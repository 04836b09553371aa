#!/usr/bin/env python3
"""A stand-in for a Confluent Schema Registry, for tests: the endpoints
intentd and confluent-kafka's Avro serde use, in memory.

Usage: registry_standin.py PORT_FILE [--refuse SUBJECT] [--auth USER:PASS]
                           [--log FILE]

Listens on 127.0.0.1 (a free port, written to PORT_FILE once listening) and
serves until killed:

  POST /subjects/S/versions   register {"schema": "..."}; answers {"id": N}
                              (the same id again for the same schema text)
  POST /subjects/S            look up: {"subject", "id", "version",
                              "schema"}, or 404 (error_code 40401/40403)
  GET  /schemas/ids/N         {"schema": "..."} or 404 (40403)
  GET  /subjects/S/versions/latest, GET /subjects

--refuse SUBJECT answers POSTs for SUBJECT with 409 (incompatible schema,
error_code 409); --auth requires HTTP basic credentials (else 401). Every
request is logged as one JSON line (method, path, content type, status)
to --log, so a test can check what intentd sent.
"""
import argparse
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class Registry:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_id = {}          # id -> schema text
        self.ids = {}            # schema text -> id
        self.subjects = {}       # subject -> [(version, id)]

    def register(self, subject, schema):
        with self.lock:
            sid = self.ids.get(schema)
            if sid is None:
                sid = len(self.by_id) + 1
                self.by_id[sid] = schema
                self.ids[schema] = sid
            versions = self.subjects.setdefault(subject, [])
            if all(i != sid for _, i in versions):
                versions.append((len(versions) + 1, sid))
            return sid

    def lookup(self, subject, schema):
        with self.lock:
            if subject not in self.subjects:
                return None, 40401
            sid = self.ids.get(schema)
            for version, i in self.subjects[subject]:
                if i == sid:
                    return (version, sid), 0
            return None, 40403


def make_handler(reg, args, log):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):  # quiet: the test reads --log
            pass

        def answer(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if log:
                log.write(json.dumps({
                    "method": self.command, "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "status": status}) + "\n")
                log.flush()

        def authorized(self):
            if not args.auth:
                return True
            want = "Basic " + base64.b64encode(args.auth.encode()).decode()
            if self.headers.get("Authorization") == want:
                return True
            self.answer(401, {"error_code": 40101,
                              "message": "Unauthorized"})
            return False

        def do_GET(self):
            if not self.authorized():
                return
            parts = [unquote(p) for p in self.path.strip("/").split("/")]
            if parts[:2] == ["schemas", "ids"] and len(parts) == 3:
                s = reg.by_id.get(int(parts[2])) if parts[2].isdigit() \
                    else None
                if s is None:
                    return self.answer(404, {"error_code": 40403,
                                             "message": "Schema not found"})
                return self.answer(200, {"schema": s})
            if parts == ["subjects"]:
                return self.answer(200, sorted(reg.subjects))
            if len(parts) == 4 and parts[0] == "subjects" and \
                    parts[2] == "versions" and parts[3] == "latest":
                vs = reg.subjects.get(parts[1])
                if not vs:
                    return self.answer(404, {"error_code": 40401,
                                             "message": "Subject not found"})
                version, sid = vs[-1]
                return self.answer(200, {"subject": parts[1],
                                         "version": version, "id": sid,
                                         "schema": reg.by_id[sid]})
            self.answer(404, {"error_code": 404, "message": "Not found"})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            if not self.authorized():
                return
            parts = [unquote(p) for p in self.path.strip("/").split("/")]
            if not parts or parts[0] != "subjects" or len(parts) not in (2, 3):
                return self.answer(404, {"error_code": 404,
                                         "message": "Not found"})
            subject = parts[1]
            try:
                schema = json.loads(body)["schema"]
                json.loads(schema)
            except (ValueError, KeyError, TypeError):
                return self.answer(422, {"error_code": 42201,
                                         "message": "Invalid schema"})
            if subject in (args.refuse or []):
                return self.answer(409, {
                    "error_code": 409,
                    "message": "Schema being registered is incompatible "
                               "with an earlier schema"})
            if len(parts) == 3 and parts[2] == "versions":
                return self.answer(200, {"id": reg.register(subject,
                                                            schema)})
            found, code = reg.lookup(subject, schema)
            if not found:
                return self.answer(404, {
                    "error_code": code,
                    "message": "Subject not found" if code == 40401
                    else "Schema not found"})
            version, sid = found
            return self.answer(200, {"subject": subject, "version": version,
                                     "id": sid, "schema": schema})
    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port_file")
    ap.add_argument("--refuse", action="append")
    ap.add_argument("--auth")
    ap.add_argument("--log")
    args = ap.parse_args()
    log = open(args.log, "a", encoding="utf-8") if args.log else None
    srv = ThreadingHTTPServer(("127.0.0.1", 0),
                              make_handler(Registry(), args, log))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
