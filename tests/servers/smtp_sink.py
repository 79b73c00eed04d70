#!/usr/bin/python3
"""A real SMTP server for LDIS tests (aiosmtpd), run under Debian's /usr/bin/python3.

Every message is parsed with Python's own MIME parser (email, policy.default) and
written as one JSON line to --out: the connection it came on, envelope, headers, and
each part's content type and decoded text, in order. Recipients whose address contains
"reject" are refused with 550; --delay-ms slows every DATA to stand for a busy relay.
Every recipient accepted is also written to --rcpts, when given, as it is accepted: a
transaction whose message never came shows there and not in --out.
Stops on SIGTERM.
"""
import argparse
import asyncio
import email
import email.policy
import json
import signal
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out, delay_ms, rcpts=""):
        self.out = open(out, "a", encoding="utf-8")
        self.rcpts = open(rcpts, "a", encoding="utf-8") if rcpts else None
        self.lock = threading.Lock()
        self.delay = delay_ms / 1000.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "reject" in address:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        if self.rcpts:
            with self.lock:
                self.rcpts.write(json.dumps({"at": time.time(), "rcpt": address}) + "\n")
                self.rcpts.flush()
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                parts.append({"type": part.get_content_type()})
            else:
                parts.append({"type": part.get_content_type(), "text": part.get_content()})
        record = {
            "at": time.time(),
            # STARTTLS sets session.ssl; implicit TLS (smtps) shows on the transport.
            "tls": session.ssl is not None or (
                server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None),
            "login": session.auth_data if isinstance(session.auth_data, str) else "",
            "conn": "%s:%s" % tuple(session.peer[:2]),
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": {k: str(v) for k, v in msg.items()},
            "parts": parts,
        }
        with self.lock:
            self.out.write(json.dumps(record) + "\n")
            self.out.flush()
        return "250 Message accepted"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--rcpts", default="", help="a JSON line per recipient accepted")
    ap.add_argument("--auth", default="", help="user:password to require AUTH")
    ap.add_argument("--tls-cert", default="", help="PEM certificate: offer and require STARTTLS")
    ap.add_argument("--tls-key", default="")
    ap.add_argument("--implicit-tls", action="store_true",
                    help="TLS from the first byte (smtps://) instead of STARTTLS")
    args = ap.parse_args()
    kwargs = {}
    implicit = None
    if args.tls_cert:
        import ssl
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.implicit_tls:
            implicit = context
        else:
            kwargs.update({"tls_context": context, "require_starttls": True})
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            return AuthResult(success=ok, auth_data=auth_data.login.decode() if ok else None)

        kwargs.update({"authenticator": authenticator, "auth_required": True,
                       "auth_require_tls": bool(args.tls_cert)})
    controller = Controller(Sink(args.out, args.delay_ms, args.rcpts), hostname="127.0.0.1", port=args.port,
                            server_kwargs=kwargs, ssl_context=implicit)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("smtp sink listening on", args.port, flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
