#!/usr/bin/python3
"""Writes each leaf part of an email (RFC 5322, as ldisd sends it) decoded to PREFIX-N and
prints one line per part: "N<TAB>content-type<TAB>Content-ID<TAB>parent's content-type".
Python's own email package parses it, not ldisd's code: the test's second opinion."""
import email
import email.policy
import sys

path, prefix = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    message = email.message_from_binary_file(f, policy=email.policy.default)


def walk(part, parent, n):
    if part.is_multipart():
        for child in part.iter_parts():
            n = walk(child, part.get_content_type(), n)
        return n
    with open(f"{prefix}-{n}", "wb") as out:
        out.write(part.get_payload(decode=True) or b"")
    print(f"{n}\t{part.get_content_type()}\t{part.get('Content-ID', '')}\t{parent}")
    return n + 1


print(f"-\t{message.get_content_type()}\t\t")
walk(message, "", 0)
