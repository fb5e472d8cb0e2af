#!/usr/bin/env python3
"""Tiny DNS client and server for the labs (stdlib only, UDP, v4 and v6).

    dnsq.py query SERVER NAME [TYPE]   one query (TYPE A, AAAA or PTR; default A);
                                       prints the response code, then one line per
                                       answer record (an address or a PTR name)
    dnsq.py serve ADDR PORT NAME IP    answer A queries for NAME with IP (any case),
                                       NXDOMAIN for every other name; logs each
                                       question and its sender (address, port)
                                       to stdout

The client checks that the answer carries the query's ID and question.
"""
import random
import socket
import struct
import sys

TYPES = {"A": 1, "AAAA": 28, "PTR": 12}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def read_name(msg, at):
    """The dotted name at `at` and the offset after it (pointers followed)."""
    labels, end, hops = [], None, 0
    while True:
        length = msg[at]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = at + 2
            at = ((length & 0x3F) << 8) | msg[at + 1]
            hops += 1
            if hops > 32:
                raise ValueError("pointer loop")
            continue
        if length == 0:
            return ".".join(labels) + ".", (end if end is not None else at + 1)
        labels.append(msg[at + 1 : at + 1 + length].decode("ascii", "replace"))
        at += 1 + length


def query(server, name, qtype):
    qid = random.randrange(65536)
    question = encode_name(name) + struct.pack(">HH", TYPES[qtype], 1)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(packet, (server, 53))
    msg, _ = s.recvfrom(65535)
    rid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    if rid != qid or not flags & 0x8000:
        sys.exit("answer with the wrong ID or not a response")
    if qd != 1 or msg[12 : 12 + len(question)].lower() != question.lower():
        sys.exit("answer for another question")
    print(RCODES.get(flags & 0xF, str(flags & 0xF)))
    at = 12 + len(question)
    for _ in range(an):
        _, at = read_name(msg, at)
        rtype, _, _, length = struct.unpack(">HHIH", msg[at : at + 10])
        data = msg[at + 10 : at + 10 + length]
        if rtype == 1:
            print(socket.inet_ntop(socket.AF_INET, data))
        elif rtype == 28:
            print(socket.inet_ntop(socket.AF_INET6, data))
        elif rtype == 12:
            print(read_name(msg, at + 10)[0])
        at += 10 + length


def serve(addr, port, name, ip):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((addr, port))
    wanted = name.rstrip(".").lower() + "."
    while True:
        msg, peer = s.recvfrom(65535)
        try:
            qid, flags = struct.unpack(">HH", msg[:4])
            qname, end = read_name(msg, 12)
            qtype = struct.unpack(">H", msg[end : end + 2])[0]
        except (ValueError, IndexError, struct.error):
            continue
        print(f"question {qname} type {qtype} from {peer[0]} port {peer[1]}", flush=True)
        question = msg[12 : end + 4]
        found = qname.lower() == wanted
        rcode = 0 if found else 3
        answers = b""
        if found and qtype == 1:
            answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
        header = struct.pack(
            ">HHHHHH", qid, 0x8080 | (flags & 0x0100) | rcode, 1, 1 if answers else 0, 0, 0
        )
        s.sendto(header + question + answers, peer)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "query":
        query(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "A")
    elif len(sys.argv) == 6 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
