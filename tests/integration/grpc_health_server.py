#!/usr/bin/env python3
"""A gRPC server with grpc.health.v1.Health/Check, for the grpc plugin's tests.

Debian's python3-grpcio, no generated code: the two health messages are
encoded by hand (HealthCheckRequest{string service = 1},
HealthCheckResponse{ServingStatus status = 1}).

    grpc_health_server.py --port N [--status '{"": "SERVING", "db": 2}']
        [--tls CERT KEY [--client-ca CA]] [--no-health] [--record FILE]

--status maps service names to a ServingStatus (a name or a number); a
service not in it is answered as grpc's own health servicer does, with
status NOT_FOUND.  A service named "abort:CODE" ends the call with that
gRPC status code (e.g. abort:UNAVAILABLE) and a grpc-message holding
SERVER_TEXT, which a client must never show.  --no-health serves
test.v1.Other/Check instead (Health/Check is then UNIMPLEMENTED).  --record appends one JSON line
per call: the service asked for, the metadata received and the time left
by the client's grpc-timeout.  --client-ca requires a client certificate
issued by CA.
"""

import argparse
import json
import signal
import sys
import threading
from concurrent import futures

import grpc

SERVER_TEXT = "srv-msg-Secr3t-8080"
STATUSES = {"UNKNOWN": 0, "SERVING": 1, "NOT_SERVING": 2,
            "SERVICE_UNKNOWN": 3}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def decode_request(data):
    """HealthCheckRequest: the `service` string (field 1)."""
    service, i = "", 0
    while i < len(data):
        tag, i = read_varint(data, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, i = read_varint(data, i)
        elif wire == 2:
            n, i = read_varint(data, i)
            if field == 1:
                service = data[i:i + n].decode()
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError("bad wire type")
    return service


def encode_response(status):
    """HealthCheckResponse: proto3 leaves out a field at its default (0)."""
    return b"" if status == 0 else b"\x08" + varint(status)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--status", default='{"": "SERVING"}')
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--client-ca")
    ap.add_argument("--no-health", action="store_true")
    ap.add_argument("--record")
    a = ap.parse_args()

    statuses = {k: STATUSES[v] if isinstance(v, str) else int(v)
                for k, v in json.loads(a.status).items()}
    lock = threading.Lock()

    def check(service, context):
        if a.record:
            left = context.time_remaining()
            line = json.dumps({"service": service,
                               "metadata": [list(m) for m in
                                            context.invocation_metadata()],
                               "time_remaining": left})
            with lock, open(a.record, "a") as f:
                f.write(line + "\n")
        if service.startswith("abort:"):
            context.abort(getattr(grpc.StatusCode, service[6:]),
                          f"{SERVER_TEXT}: asked to fail")
        if service not in statuses:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"{SERVER_TEXT}: unknown service")
        return statuses[service]

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    # Without the health service it still serves something, as a real
    # server would: Health/Check is then UNIMPLEMENTED.
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health" if not a.no_health else "test.v1.Other",
        {"Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=decode_request,
            response_serializer=encode_response)}),))
    addr = f"127.0.0.1:{a.port}"
    if a.tls:
        with open(a.tls[0], "rb") as f:
            cert = f.read()
        with open(a.tls[1], "rb") as f:
            key = f.read()
        ca = None
        if a.client_ca:
            with open(a.client_ca, "rb") as f:
                ca = f.read()
        creds = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca,
            require_client_auth=ca is not None)
        port = server.add_secure_port(addr, creds)
    else:
        port = server.add_insecure_port(addr)
    if port != a.port:
        sys.exit(f"cannot listen on {addr}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(0).wait(5)


if __name__ == "__main__":
    main()
