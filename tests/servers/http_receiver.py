#!/usr/bin/python3
"""An HTTP receiver for LDIS tests: webhooks (Teams, Slack, generic) and a GOV.UK
Notify-compatible API. Standard library only; run under /usr/bin/python3.

Each request is answered by the next step of its path's plan (--plan PATH=STEP,STEP...;
the last step repeats; default 200) and written as one JSON line to --out, with
whether its X-LDIS-Signature verifies against --secret and, for /v2/notifications/*,
whether its JWT verifies as Notify's API does. Steps: 200, 500, 400, "429:2" (with
Retry-After: 2), "200:teams429" (Teams' throttling inside a 200 body), "hang:20" (answer
after 20 s). Stops on SIGTERM.
"""
import argparse
import base64
import hashlib
import hmac
import json
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_jwt(auth, api_key):
    """Verifies a Notify JWT: HS256 over {"iss": service id, "iat": now} with the
    secret key, both taken from the end of the API key as Notify's clients do."""
    if not auth.startswith("Bearer "):
        return "no bearer token"
    token = auth[len("Bearer "):]
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(claims_b64))
        signature = b64url_decode(signature_b64)
    except Exception as e:  # noqa: BLE001 - any malformed token is an error to report
        return "malformed token: %s" % e
    service_id, secret = api_key[-73:-37], api_key[-36:]
    if header.get("alg") != "HS256" or header.get("typ") != "JWT":
        return "bad header %r" % header
    expected = hmac.new(secret.encode(), (header_b64 + "." + claims_b64).encode(),
                        hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        return "signature does not verify"
    if claims.get("iss") != service_id:
        return "iss %r is not the service id" % claims.get("iss")
    if abs(time.time() - int(claims.get("iat", 0))) > 30:
        return "iat is more than 30 s from now"
    return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--plan", action="append", default=[])
    ap.add_argument("--secret", default="")
    ap.add_argument("--notify-key", default="")
    args = ap.parse_args()
    plans = {}
    for p in args.plan:
        path, steps = p.split("=", 1)
        plans[path] = steps.split(",")
    counts = {}
    lock = threading.Lock()
    out = open(args.out, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            with lock:
                n = counts.get(self.path, 0)
                counts[self.path] = n + 1
                steps = plans.get(self.path, ["200"])
                step = steps[min(n, len(steps) - 1)]
            record = {"at": time.time(), "path": self.path, "step": step, "body": body,
                      "headers": {k.lower(): v for k, v in self.headers.items()}}
            if args.secret:
                ts = self.headers.get("X-LDIS-Timestamp", "")
                mac = hmac.new(args.secret.encode(), (ts + "." + body).encode(),
                               hashlib.sha256).hexdigest()
                record["signature_ok"] = self.headers.get("X-LDIS-Signature", "") == "sha256=" + mac
            status, extra, reply = 200, {}, "1"
            if self.path.startswith("/v2/notifications/"):
                problem = check_jwt(self.headers.get("Authorization", ""), args.notify_key)
                record["jwt_error"] = problem
                if problem:
                    step = "403"
                status, reply = 201, json.dumps({"id": str(uuid.uuid4()),
                                                 "reference": json.loads(body).get("reference")})
            kind, _, arg = step.partition(":")
            if kind == "hang":
                time.sleep(float(arg or 30))
            elif kind == "429":
                status, extra = 429, {"Retry-After": arg or "1"}
                reply = json.dumps({"status_code": 429, "errors": [
                    {"error": "RateLimitError", "message": "Exceeded rate limit"}]})
            elif kind == "200" and arg == "teams429":
                status, reply = 200, "Microsoft Teams endpoint returned HTTP error 429"
            elif kind in ("400", "403", "500"):
                status = int(kind)
                error = {"400": "ValidationError", "403": "AuthError", "500": "Exception"}[kind]
                reply = json.dumps({"status_code": status, "errors": [
                    {"error": error, "message": "test receiver says %s" % kind}]})
            record["status"] = status
            with lock:
                out.write(json.dumps(record) + "\n")
                out.flush()
            data = reply.encode()
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("http receiver listening on", args.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
