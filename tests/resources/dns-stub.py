#!/usr/bin/env python3
"""dns-stub.py ADDR NAME IP: a tiny DNS server for tests.

Answers A queries for NAME with IP on UDP ADDR:53, NXDOMAIN for any other
name, nothing for other types but an empty answer. Writes "ready" to stdout
once bound. Enough for a resolver (busybox nslookup, glibc) to resolve NAME.
"""
import os
import socket
import struct
import sys

addr, name, ip = sys.argv[1], sys.argv[2].rstrip(".").lower(), sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((addr, 53))
os.write(1, b"ready\n")  # one write: the reader may stop reading after it
while True:
    data, peer = sock.recvfrom(4096)
    if len(data) < 12:
        continue
    qid, flags, qd = struct.unpack(">HHH", data[:6])
    pos, labels = 12, []
    while pos < len(data) and data[pos]:
        n = data[pos]
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    question = data[12:pos + 5]
    qtype = struct.unpack(">H", data[pos + 1:pos + 3])[0] if pos + 3 <= len(data) else 0
    qname = ".".join(labels).lower()
    rd = flags & 0x0100
    if qname != name:
        sock.sendto(struct.pack(">HHHHHH", qid, 0x8183 | rd, 1, 0, 0, 0) + question, peer)
        continue
    answers = b""
    if qtype == 1:
        answers = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(ip)
    count = 1 if answers else 0
    sock.sendto(struct.pack(">HHHHHH", qid, 0x8180 | rd, 1, count, 0, 0) + question + answers, peer)
