#!/usr/bin/env python3
"""Aggregates nomq_perf result lines (JSON, one per run) into bench/results/: results.json,
results.md (the tables docs/performance.md shows), chart data and the ratio lines.

usage: report.py RAW.jsonl OUTDIR [--machine TEXT] [--command TEXT]
Each measurement was repeated; every figure is reported as median, min and max.
"""
import json
import statistics
import sys
from collections import defaultdict

# Targets from issue 6 (ratios measured in the same run).
TARGETS = {"qos0_64_vs_udp": (">=", 0.85), "qos1_64_vs_udp": (">=", 0.45),
           "qos2_64_vs_udp": (">=", 0.22), "qos1_rtt_p50_vs_udp": ("<=", 1.3),
           "qos0_64_vs_mosquitto": (">=", 3.0),
           # Issue 11: the background thread and the command-line tools.
           "qos0_64_thread_vs_loop": (">=", 0.85), "cli_qos0_64_vs_udp": (">=", 0.6), "qos1_64_vs_mosquitto": (">=", 3.0),
           "qos2_64_vs_mosquitto": (">=", 3.0),
           # "Flat cost": our reading, at most 25 % more per message/delivery at the large end.
           "fanout_qos0_sub_1000_vs_1": ("<=", 1.25), "fanout_qos1_sub_1000_vs_1": ("<=", 1.25),
           "fanout_qos1_pub_1000_vs_10": ("<=", 1.25),
           "channels_pub_10000_vs_10": ("<=", 1.25), "channels_sub_10000_vs_10": ("<=", 1.25)}


def key_of(r):
    parts = [r["bench"]]
    for k in ("wire", "crypto", "qos", "size", "subs", "channels"):
        if k in r:
            v = r[k]
            parts.append(f"{k}={int(v) if isinstance(v, float) and v.is_integer() else v}")
    return " ".join(parts)


def summarise(rows):
    groups = defaultdict(list)
    for r in rows:
        groups[key_of(r)].append(r)
    out = {}
    for k, rs in groups.items():
        entry = {"runs": len(rs)}
        for field in rs[0]:
            vals = [r[field] for r in rs if isinstance(r.get(field), (int, float))]
            if len(vals) == len(rs) and field not in ("qos", "size", "subs", "channels"):
                entry[field] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
            else:
                entry[field] = rs[0][field]
        out[k] = entry
    return out


def med(s, key, field):
    e = s.get(key)
    if not e or field not in e or not isinstance(e[field], dict):
        return None
    return e[field]["median"]


def fmt_rate(v):
    if v is None:
        return "-"
    return f"{v / 1000:.1f}k" if v < 1e6 else f"{v / 1e6:.2f}M"


def cell(s, key, field, unit=""):
    e = s.get(key)
    if not e or field not in e or not isinstance(e[field], dict):
        return "-"
    m = e[field]
    if unit == "rate":
        return f"{fmt_rate(m['median'])} ({fmt_rate(m['min'])}-{fmt_rate(m['max'])})"
    if unit == "us":
        return f"{m['median']:.1f} ({m['min']:.1f}-{m['max']:.1f})"
    if unit == "ns":
        return f"{m['median']:.0f} ({m['min']:.0f}-{m['max']:.0f})"
    if unit == "pct":
        return f"{100 * m['median']:.1f}%"
    if unit == "kib":
        return f"{m['median'] / 1024:.1f} MiB"
    if unit == "bytes":
        return f"{m['median'] / 1024:.0f} KiB"
    return f"{m['median']:.3g}"


def main():
    raw, outdir = sys.argv[1], sys.argv[2]
    opts = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    rows = [json.loads(l) for l in open(raw) if l.strip().startswith("{")]
    s = summarise(rows)
    sizes = sorted({int(r["size"]) for r in rows if r["bench"] == "nomq_tput"})
    wires = [w for w in ("v2", "v1") if any(r.get("wire") == w and r["bench"] == "nomq_tput" for r in rows)]

    seq = defaultdict(list)  # key -> values in repetition order (repetitions are outermost)
    for r in rows:
        seq[key_of(r)].append(r)

    def paired(num_key, den_key, field):
        """Ratios within each repetition (figures taken seconds apart), for the spread."""
        a = [r[field] for r in seq.get(num_key, [])]
        b = [r[field] for r in seq.get(den_key, [])]
        vals = [x / y for x, y in zip(a, b) if y]
        return (statistics.median(vals), min(vals), max(vals)) if vals else None

    ratios, spreads = {}, {}
    for size in sizes:
        udp = med(s, f"udp_tput size={size}", "msgs_per_s")
        for w in wires:
            for q in (0, 1, 2):
                n = med(s, f"nomq_tput wire={w} qos={q} size={size}", "msgs_per_s")
                suffix = "" if w == "v2" else "_v1"
                nk = f"nomq_tput wire={w} qos={q} size={size}"
                if n and udp:
                    ratios[f"qos{q}_{size}_vs_udp{suffix}"] = n / udp
                    spreads[f"qos{q}_{size}_vs_udp{suffix}"] = paired(nk, f"udp_tput size={size}", "msgs_per_s")
                m = med(s, f"mqtt_tput qos={q} size={size}", "msgs_per_s")
                if n and m:
                    ratios[f"qos{q}_{size}_vs_mosquitto{suffix}"] = n / m
                    spreads[f"qos{q}_{size}_vs_mosquitto{suffix}"] = paired(nk, f"mqtt_tput qos={q} size={size}", "msgs_per_s")
        # Node::Batch (v2): against both raw UDP variants, the per-datagram one and sendmmsg x32.
        for q in (0, 1):
            bk = f"nomq_tput_batch wire=v2 qos={q} size={size}"
            n = med(s, bk, "msgs_per_s")
            for name, den in ((f"qos{q}_{size}_batch_vs_udp", f"udp_tput size={size}"),
                              (f"qos{q}_{size}_batch_vs_udp_batch", f"udp_tput_batch size={size}"),
                              (f"qos{q}_{size}_batch_vs_mosquitto", f"mqtt_tput qos={q} size={size}")):
                d = med(s, den, "msgs_per_s")
                if n and d:
                    ratios[name] = n / d
                    spreads[name] = paired(bk, den, "msgs_per_s")
    # The path most users take: the loop on the background thread (start()) against run_once(),
    # and the command-line tools against raw UDP.
    for name, num, den in (("qos0_64_thread_vs_loop", "nomq_tput_threaded wire=v2 qos=0 size=64",
                            "nomq_tput wire=v2 qos=0 size=64"),
                           ("cli_qos0_64_vs_udp", "cli_tput qos=0 size=64", "udp_tput size=64")):
        n, d = med(s, num, "msgs_per_s"), med(s, den, "msgs_per_s")
        if n and d:
            ratios[name] = n / d
            spreads[name] = paired(num, den, "msgs_per_s")
    # Issue 16: the Python package (asyncio API, Python publisher into Python subscriber)
    # against the C++ Node doing the same in this run, and next to paho-mqtt through Mosquitto.
    for q in (0, 1):
        pk = f"py_tput wire=v2 qos={q} size=64"
        for name, den in ((f"python_qos{q}_64_vs_cpp", f"nomq_tput wire=v2 qos={q} size=64"),
                          (f"python_qos{q}_64_vs_paho", f"paho_tput qos={q} size=64")):
            n, d = med(s, pk, "msgs_per_s"), med(s, den, "msgs_per_s")
            if n and d:
                ratios[name] = n / d
                spreads[name] = paired(pk, den, "msgs_per_s")
    for w in wires:
        suffix = "" if w == "v2" else "_v1"
        u = med(s, "udp_rtt size=64", "p50_us")
        for q in (1, 2):
            n = med(s, f"nomq_rtt wire={w} qos={q} size=64", "p50_us")
            if n and u:
                ratios[f"qos{q}_rtt_p50_vs_udp{suffix}"] = n / u
                spreads[f"qos{q}_rtt_p50_vs_udp{suffix}"] = paired(f"nomq_rtt wire={w} qos={q} size=64", "udp_rtt size=64", "p50_us")
        n = med(s, f"nomq_rtt wire={w} qos=1 size=64", "p50_us")
        m = med(s, "mqtt_lat qos=1 size=64", "p50_us")
        if n and m:
            ratios[f"qos1_latency_p50_vs_mosquitto{suffix}"] = n / m

    n, m = med(s, "first_publish_nomq qos=1", "p50_ms"), med(s, "first_publish_mosquitto qos=1", "p50_ms")
    if n and m:
        ratios["first_publish_q1_p50_vs_mosquitto"] = n / m
        spreads["first_publish_q1_p50_vs_mosquitto"] = paired("first_publish_nomq qos=1", "first_publish_mosquitto qos=1", "p50_ms")
    for q in (0, 1):
        a = med(s, f"engine_subs qos={q} subs=1", "sub_ns_per_delivery")
        b = med(s, f"engine_subs qos={q} subs=1000", "sub_ns_per_delivery")
        if a and b:
            ratios[f"fanout_qos{q}_sub_1000_vs_1"] = b / a
    a = med(s, "engine_subs qos=1 subs=10", "pub_ns_per_delivery")
    b = med(s, "engine_subs qos=1 subs=1000", "pub_ns_per_delivery")
    if a and b:
        ratios["fanout_qos1_pub_1000_vs_10"] = b / a
    for side in ("pub", "sub"):
        a = med(s, "engine_channels qos=0 channels=10", f"{side}_ns_per_msg")
        b = med(s, "engine_channels qos=0 channels=10000", f"{side}_ns_per_msg")
        if a and b:
            ratios[f"channels_{side}_10000_vs_10"] = b / a

    md = []
    md.append(f"Each figure: median (min-max) of {max(e['runs'] for e in s.values())} runs, "
              "all measured in one run of the command.\n")
    md.append("### Throughput between two processes (messages/s delivered at the receiver)\n")
    head = "| | " + " | ".join(f"{z} B" for z in sizes) + " |"
    md += [head, "|---" * (len(sizes) + 1) + "|"]

    def row(label, keyfmt, field="msgs_per_s", unit="rate"):
        md.append(f"| {label} | " + " | ".join(cell(s, keyfmt.format(size=z), field, unit) for z in sizes) + " |")

    row("raw UDP sendto/recvfrom (limit)", "udp_tput size={size}")
    row("raw UDP sendmmsg/recvmmsg x32 (batched)", "udp_tput_batch size={size}")
    for w in wires:
        for q in (0, 1, 2):
            row(f"NoMQ {w} QoS {q}", f"nomq_tput wire={w} qos={q} size={{size}}")
        row(f"NoMQ {w} QoS 0 to the group (broadcast)", f"nomq_tput_group wire={w} qos=0 size={{size}}")
        for q in ((0, 1) if w == "v2" else ()):
            row(f"NoMQ {w} QoS {q}, loop on the background thread (start())",
                f"nomq_tput_threaded wire={w} qos={q} size={{size}}")
        for q in ((0, 1) if w == "v2" else ()):
            row(f"NoMQ {w} QoS {q}, publishes in a Node::Batch (sendmmsg x32)",
                f"nomq_tput_batch wire={w} qos={q} size={{size}}")
    row("nomq pub --repeat -q 0 -h into nomq sub > file (CLI, processes)", "cli_tput qos=0 size={size}")
    for q in (0, 1, 2):
        row(f"Mosquitto QoS {q} (via broker)", f"mqtt_tput qos={q} size={{size}}")
    row("ZeroMQ PUB/SUB (TCP, batched)", "zmq_tput size={size}")
    md.append("")
    if any(r["bench"] in ("py_tput", "paho_tput") for r in rows):
        md.append("### From Python (messages/s delivered to a Python subscriber, 64 B, two processes)\n")
        md.append("| | QoS 0 | QoS 1 |")
        md.append("|---|---|---|")
        for label, kf in (("nomq package (asyncio), Python to Python", "py_tput wire=v2 qos={q} size=64"),
                          ("C++ Node, same run (nomq_tput)", "nomq_tput wire=v2 qos={q} size=64"),
                          ("paho-mqtt through Mosquitto, Python to Python", "paho_tput qos={q} size=64")):
            md.append(f"| {label} | " + " | ".join(cell(s, kf.format(q=q), "msgs_per_s", "rate")
                                                   for q in (0, 1)) + " |")
        md.append("")
    md.append("Offered rate: messages/s the publisher handed to the library (NoMQ, Mosquitto, ZeroMQ) "
              "or to the kernel (raw UDP); the sender's cost alone, whatever the receiver keeps up with:\n")
    md += [head, "|---" * (len(sizes) + 1) + "|"]
    row("raw UDP sendto", "udp_tput size={size}", "sent_per_s")
    row("raw UDP sendmmsg x32", "udp_tput_batch size={size}", "sent_per_s")
    for w in wires:
        for q in (0, 1, 2):
            row(f"NoMQ {w} QoS {q}", f"nomq_tput wire={w} qos={q} size={{size}}", "sent_per_s")
        for q in ((0, 1) if w == "v2" else ()):
            row(f"NoMQ {w} QoS {q}, background thread", f"nomq_tput_threaded wire={w} qos={q} size={{size}}", "sent_per_s")
        for q in ((0, 1) if w == "v2" else ()):
            row(f"NoMQ {w} QoS {q}, Node::Batch", f"nomq_tput_batch wire={w} qos={q} size={{size}}", "sent_per_s")
    for q in (0, 1, 2):
        row(f"Mosquitto QoS {q}", f"mqtt_tput qos={q} size={{size}}", "sent_per_s")
    md.append("")
    md.append("Loss at the receiver (sent but not delivered when the run ended; QoS 0 and UDP only "
              "lose under overload):\n")
    md += [head, "|---" * (len(sizes) + 1) + "|"]
    row("raw UDP", "udp_tput size={size}", "loss", "pct")
    for w in wires:
        row(f"NoMQ {w} QoS 0", f"nomq_tput wire={w} qos=0 size={{size}}", "loss", "pct")
        row(f"NoMQ {w} QoS 0 to the group", f"nomq_tput_group wire={w} qos=0 size={{size}}", "loss", "pct")
    row("Mosquitto QoS 0", "mqtt_tput qos=0 size={size}", "loss", "pct")
    row("ZeroMQ", "zmq_tput size={size}", "loss", "pct")
    md.append("")
    md.append("### Round-trip latency, microseconds: p50 (min-max of runs) / p99\n")
    md += [head, "|---" * (len(sizes) + 1) + "|"]

    def lat(label, keyfmt):
        cells = []
        for z in sizes:
            k = keyfmt.format(size=z)
            cells.append(f"{cell(s, k, 'p50_us', 'us')} / {cell(s, k, 'p99_us')}" if k in s else "-")
        md.append(f"| {label} | " + " | ".join(cells) + " |")

    lat("raw UDP ping-pong", "udp_rtt size={size}")
    for w in wires:
        lat(f"NoMQ {w} QoS 1 publish to delivery report", f"nomq_rtt wire={w} qos=1 size={{size}}")
        lat(f"NoMQ {w} QoS 2 publish to delivery report", f"nomq_rtt wire={w} qos=2 size={{size}}")
    lat("Mosquitto QoS 1 publish to subscriber (2 TCP hops)", "mqtt_lat qos=1 size={size}")
    lat("ZeroMQ REQ/REP round trip", "zmq_rtt size={size}")
    md.append("")

    if "first_publish_nomq qos=1" in s:
        # Issue 15 §2: what `time nomq pub -q 1` shows, next to mosquitto_pub.
        md.append("### First publish from a fresh process, QoS 1: spawn to exit after the "
                  "acknowledgement, milliseconds: p50 / p90 / max of each run's samples, "
                  "median (min-max) over runs\n")
        md.append("| | p50 | p90 | max |")
        md.append("|---|---|---|---|")
        for label, k in (("`nomq pub -q 1` (one `nomq sub` running; discovery included)", "first_publish_nomq qos=1"),
                         ("`mosquitto_pub -q 1` (broker on loopback, one `mosquitto_sub`)", "first_publish_mosquitto qos=1")):
            md.append(f"| {label} | " + " | ".join(cell(s, k, f, "us") for f in ("p50_ms", "p90_ms", "max_ms")) + " |")
        md.append("")

    md.append("### Where the time goes: the library without sockets (ns per message, one core)\n")
    md += [head, "|---" * (len(sizes) + 1) + "|"]
    for w in wires:
        row(f"seal one PUBLISH {w} (encode: pad, AES-256-CBC, MAC)", f"codec wire={w} size={{size}}", "seal_ns", "ns")
        row(f"open one PUBLISH {w} (MAC check, decrypt, parse)", f"codec wire={w} size={{size}}", "open_ns", "ns")
        for q in (0, 1, 2):
            row(f"engine pair {w} QoS {q}, OpenSSL (whole exchange)", f"engine_pair wire={w} crypto=openssl qos={q} size={{size}}", "ns_per_msg", "ns")
    for q in (0, 1, 2):
        row(f"engine pair v2 QoS {q}, null crypto (engine alone)", f"engine_pair wire=v2 crypto=null qos={q} size={{size}}", "ns_per_msg", "ns")
    md.append("")

    subs = sorted({int(r["subs"]) for r in rows if r["bench"] == "engine_subs"})
    if subs:
        md.append("### Scaling with subscribers (engines in memory, 64 B, one channel)\n")
        md.append("| subscribers | QoS | publisher ns/delivery | subscriber ns/delivery | "
                  "publisher state | subscriber state | process peak RSS |")
        md.append("|---|---|---|---|---|---|---|")
        for q in (0, 1):
            for n in subs:
                k = f"engine_subs qos={q} subs={n}"
                if k in s:
                    md.append(f"| {n} | {q} | {cell(s, k, 'pub_ns_per_delivery', 'ns')} | "
                              f"{cell(s, k, 'sub_ns_per_delivery', 'ns')} | {cell(s, k, 'pub_state_bytes', 'bytes')} | "
                              f"{cell(s, k, 'sub_state_bytes', 'bytes')} | {cell(s, k, 'process_peak_rss_kib', 'kib')} |")
        md.append("")
    chans = sorted({int(r["channels"]) for r in rows if r["bench"] == "engine_channels"})
    if chans:
        md.append("### Scaling with channels (one publisher, one subscriber following all, 64 B, QoS 0)\n")
        md.append("| channels | publisher ns/msg | subscriber ns/msg | publisher state | subscriber state |")
        md.append("|---|---|---|---|---|")
        for n in chans:
            k = f"engine_channels qos=0 channels={n}"
            if k in s:
                md.append(f"| {n} | {cell(s, k, 'pub_ns_per_msg', 'ns')} | {cell(s, k, 'sub_ns_per_msg', 'ns')} | "
                          f"{cell(s, k, 'pub_state_bytes', 'bytes')} | {cell(s, k, 'sub_state_bytes', 'bytes')} |")
        md.append("")
    mem = [k for k in s if k.startswith("nomq_tput wire=v2 qos=1 size=64")]
    md.append("### Memory at default limits\n")
    if mem:
        md.append(f"- peak RSS of a subscriber node process (v2, after a QoS 1 run): "
                  f"{cell(s, mem[0], 'sub_peak_rss_kib', 'kib')}")
    k = "engine_pair wire=v2 crypto=openssl qos=0 size=64"
    if k in s:
        md.append(f"- Engine::state_bytes() at default limits (v2): {cell(s, k, 'state_bytes_default', 'bytes')}")
    k = "engine_pair wire=v1 crypto=openssl qos=0 size=64"
    if k in s:
        md.append(f"- Engine::state_bytes() at default limits (v1): {cell(s, k, 'state_bytes_default', 'bytes')}")
    md.append("")

    md.append("### Ratios (medians of this run) and targets\n")
    md.append("Value: ratio of the medians. Within one repetition: the same ratio computed per "
              "repetition (figures taken seconds apart), median (min-max); it shows how much a "
              "busy machine moved the figures.\n")
    md.append("| ratio | value | within one repetition | target |")
    md.append("|---|---|---|---|")
    for name, v in ratios.items():
        t = TARGETS.get(name)
        verdict = ""
        if t:
            ok = v >= t[1] if t[0] == ">=" else v <= t[1]
            verdict = f"{t[0]} {t[1]}: {'met' if ok else 'MISSED'}"
        sp = spreads.get(name)
        within = f"{sp[0]:.2f} ({sp[1]:.2f}-{sp[2]:.2f})" if sp else ""
        md.append(f"| {name} | {v:.2f} | {within} | {verdict} |")
    md.append("")
    if "machine" in opts:
        md.append(f"Machine: {opts['machine']}\n")
    if "command" in opts:
        md.append(f"Command: `{opts['command']}`\n")

    with open(f"{outdir}/results.md", "w") as f:
        f.write("\n".join(md))
    with open(f"{outdir}/results.json", "w") as f:
        json.dump({"summary": s, "ratios": ratios, "ratios_within_repetition": spreads, "raw": rows, **opts},
                  f, indent=1, sort_keys=True)

    # Chart data: one line per series, one column per size (medians, min, max).
    series = [("raw UDP", "udp_tput size={size}")]
    for w in wires:
        series += [(f"NoMQ {w} QoS {q}", f"nomq_tput wire={w} qos={q} size={{size}}") for q in (0, 1, 2)]
    series += [(f"Mosquitto QoS {q}", f"mqtt_tput qos={q} size={{size}}") for q in (0, 1, 2)]
    series += [("ZeroMQ PUB/SUB", "zmq_tput size={size}")]
    with open(f"{outdir}/throughput.dat", "w") as f:
        f.write("series " + " ".join(f"{z}B" for z in sizes) + "\n")
        for label, kf in series:
            vals = [med(s, kf.format(size=z), "msgs_per_s") or 0 for z in sizes]
            f.write(f"\"{label}\" " + " ".join(f"{v:.0f}" for v in vals) + "\n")
    lseries = [("raw UDP ping-pong", "udp_rtt size=64")]
    for w in wires:
        lseries += [(f"NoMQ {w} QoS {q}", f"nomq_rtt wire={w} qos={q} size=64") for q in (1, 2)]
    lseries += [("Mosquitto QoS 1", "mqtt_lat qos=1 size=64"), ("ZeroMQ REQ/REP", "zmq_rtt size=64")]
    with open(f"{outdir}/latency.dat", "w") as f:
        f.write("series p50 p99\n")
        for label, k in lseries:
            f.write(f"\"{label}\" {med(s, k, 'p50_us') or 0:.2f} {med(s, k, 'p99_us') or 0:.2f}\n")

    for name, v in ratios.items():
        print(f"ratio {name}: {v:.2f}")


if __name__ == "__main__":
    main()
