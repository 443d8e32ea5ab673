#!/usr/bin/env python3
"""valgrind memcheck on CLI round trips (docs/security.md). Usage: valgrind_cli.py PATH/TO/nomq

Runs under `valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite`:
  1. nomq decode of every v2 known-answer packet (tests/vectors/v2-kat.json), all accepted;
  2. nomq decode of the v1 packet vectors (legacy-v1.json), all accepted;
  3. nomq decode of every v1 negative vector, all rejected (nomq exits 1 by design there, so that
     run is judged on valgrind's ERROR SUMMARY instead of the exit code);
  4. nomq keygen (the master-secret form it writes by default);
  5. nomq sub and nomq pub (QoS 1) on loopback (127.255.255.255, a free port), both under
     valgrind, keys derived from keygen's master secret: the message arrives and both exit 0.
Each run must report "ERROR SUMMARY: 0 errors". Prints one line per run and a summary line;
exits 1 on any failure.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VEC = os.path.join(ROOT, "tests", "vectors")
VALGRIND = ["valgrind", "--error-exitcode=1", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--track-fds=no", "-q"]


def write_config(path, keys, wire, port=8888):
    """keys: either {encryption_key, hmac_key} (raw keys) or {master_secret, group_id, key_epoch}
    (the key schedule, what `nomq keygen` writes by default)."""
    cfg = {"ip": "127.0.0.1", "port": port, "use_ipv6": False, "wire": wire,
           "group": "127.255.255.255"}
    cfg.update(keys)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)


def errors_in(log):
    text = open(log).read()
    m = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
    # -q prints nothing when clean; any "== ... ==" line is a finding.
    findings = [line for line in text.splitlines() if re.match(r"==\d+==", line)]
    count = sum(int(x) for x in m) if m else 0
    return count + (0 if m else len(findings)), text


def run(name, argv, logdir, expect_exit, timeout=300):
    log = os.path.join(logdir, name + ".vg")
    p = subprocess.run(VALGRIND + ["--log-file=" + log] + argv, capture_output=True, text=True,
                       timeout=timeout)
    errs, text = errors_in(log)
    ok = errs == 0 and p.returncode in expect_exit
    print(f"valgrind {name}: exit {p.returncode}, memcheck errors {errs}: {'ok' if ok else 'FAIL'}")
    if not ok:
        sys.stdout.write(text[-4000:] + p.stderr[-2000:])
    return ok


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pubsub(nomq, tmp):
    port = free_port()
    cfg = os.path.join(tmp, "pubsub.json")
    keys = subprocess.run([nomq, "keygen"], capture_output=True, text=True, check=True).stdout
    k = json.loads(keys)
    # keygen's default form: a master secret from which the node derives every key (HKDF).
    write_config(cfg, {f: k[f] for f in ("master_secret", "group_id", "key_epoch")}, "v2", port)
    sub_log = os.path.join(tmp, "sub.vg")
    pub_log = os.path.join(tmp, "pub.vg")
    sub = subprocess.Popen(VALGRIND + ["--log-file=" + sub_log, nomq, "sub", "-c", cfg, "-d", "-t",
                                       "vg/test", "-C", "1", "-W", "120"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    ready = False
    err_lines = []
    while time.time() < deadline:
        line = sub.stderr.readline()
        if not line:
            break
        err_lines.append(line)
        if "nomq sub: ready" in line:
            ready = True
            break
    if not ready:
        sub.kill()
        print("valgrind pubsub: subscriber never became ready: FAIL\n" + "".join(err_lines))
        return False
    pub = subprocess.run(VALGRIND + ["--log-file=" + pub_log, nomq, "pub", "-c", cfg, "-t",
                                     "vg/test", "-m", "under valgrind", "-q", "1"],
                         capture_output=True, text=True, timeout=180)
    try:
        out, err = sub.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        sub.kill()
        out, err = sub.communicate()
    sub_errs, sub_text = errors_in(sub_log)
    pub_errs, pub_text = errors_in(pub_log)
    ok = (pub.returncode == 0 and sub.returncode == 0 and out == "under valgrind\n" and
          sub_errs == 0 and pub_errs == 0)
    print(f"valgrind pubsub (QoS 1, loopback): pub exit {pub.returncode}, sub exit "
          f"{sub.returncode}, memcheck errors {pub_errs}+{sub_errs}: {'ok' if ok else 'FAIL'}")
    if not ok:
        sys.stdout.write(pub.stderr[-2000:] + err[-2000:] + pub_text[-3000:] + sub_text[-3000:])
    return ok


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    nomq = os.path.abspath(sys.argv[1])
    v1 = json.load(open(os.path.join(VEC, "legacy-v1.json")))
    v2 = json.load(open(os.path.join(VEC, "v2-kat.json")))
    results = []
    with tempfile.TemporaryDirectory(prefix="nomq-valgrind-") as tmp:
        c1 = os.path.join(tmp, "v1.json")
        c2 = os.path.join(tmp, "v2.json")
        write_config(c1, {f: v1["keys"][f] for f in ("encryption_key", "hmac_key")}, "v1")
        write_config(c2, {f: v2["keys"][f] for f in ("encryption_key", "hmac_key")}, "v2")
        v2_hex = [v["packet"] for v in v2["vectors"] if v["inputs"]["timestamp"] == 1700000000]
        results.append(run("decode-v2-kat", [nomq, "decode", "-c", c2, "--now", "1700000000"] +
                           v2_hex, tmp, {0}))
        v1_hex = [v["packet"] for v in v1["packet_vectors"]
                  if v.get("encryption_key", v1["keys"]["encryption_key"]) ==
                  v1["keys"]["encryption_key"] and v["inputs"]["timestamp"] >= 1700000000]
        # Decode is stateless apart from PUBLISH replays among its arguments: one per run.
        results.append(run("decode-v1-vectors", [nomq, "decode", "-c", c1, "--now", "1700000003"] +
                           v1_hex, tmp, {0, 1}))
        neg = [v["packet"] for v in v1["negative_vectors"]]
        results.append(run("decode-v1-negative", [nomq, "decode", "-c", c1, "--now", "1700000001",
                                                  "-t", "sensors/temp"] + neg, tmp, {1}))
        results.append(run("keygen", [nomq, "keygen", "-o", os.path.join(tmp, "k.json")], tmp,
                           {0}))
        results.append(pubsub(nomq, tmp))
    passed = sum(results)
    print(f"valgrind: {passed}/{len(results)} runs clean")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
