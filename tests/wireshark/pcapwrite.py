"""Writes classic pcap files of UDP/IPv4 datagrams (LINKTYPE_RAW), for the dissector tests."""

import struct

LINKTYPE_RAW = 101


def ipv4_udp(payload, src=("127.0.0.1", 40000), dst=("127.0.0.1", 8888)):
    """One IPv4 packet carrying one UDP datagram (checksums zero: tshark does not check them)."""
    udp = struct.pack(">HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    total = 20 + len(udp)
    def addr(a):
        return bytes(int(x) for x in a.split("."))
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, addr(src[0]),
                       addr(dst[0])) + udp


def write_pcap(path, records):
    """records: (time_seconds float, payload bytes, src (ip, port), dst (ip, port)) tuples."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW))
        for when, payload, src, dst in records:
            pkt = ipv4_udp(payload, src, dst)
            secs = int(when)
            usecs = int(round((when - secs) * 1e6))
            f.write(struct.pack("<IIII", secs, usecs, len(pkt), len(pkt)) + pkt)
