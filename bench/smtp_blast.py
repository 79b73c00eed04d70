#!/usr/bin/python3
"""Measures what an SMTP server accepts on its own: sends --count copies of --message over
--connections connections (smtplib, one connection per thread, reused), and prints the
wall time. Used by bench/fanout as the sink-alone baseline."""
import argparse
import smtplib
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--count", type=int, required=True)
ap.add_argument("--connections", type=int, default=4)
ap.add_argument("--message", required=True)
args = ap.parse_args()
# smtplib sends bytes as they are: SMTP wants CRLF line ends.
data = open(args.message, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def worker(n, index):
    with smtplib.SMTP("127.0.0.1", args.port) as s:
        for i in range(n):
            s.sendmail("ldis@example.org", ["blast%d-%d@example.org" % (index, i)], data)


per = [args.count // args.connections + (1 if i < args.count % args.connections else 0)
       for i in range(args.connections)]
start = time.time()
threads = [threading.Thread(target=worker, args=(n, i)) for i, n in enumerate(per)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("%.6f %.6f" % (start, time.time()))
