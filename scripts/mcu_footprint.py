#!/usr/bin/env python3
"""Flash footprint of NoMQ on the target, from a GNU ld link map (scripts/mcu.sh).

Sums the sizes of the .text* and .rodata* input sections the linker kept, per library:
core = the codec and the engine (libnomq_core_mcu.a); crypto = the mbedTLS backend and the
mbedTLS modules it uses (libnomq_mbedtls_mcu.a, libmbedcrypto_mcu.a). Prints
  mcu flash_core_bytes: N     (core + codec)
  mcu flash_total_bytes: N    (core + crypto)
An optional second argument is appended to the names, e.g. `_no_error_text` for the map of the
program built on the core with NOMQ_ERROR_TEXT=0 (mcu_engine_lean).
"""
import re
import sys

GROUPS = {
    "libnomq_core_mcu.a": "core",
    "libnomq_mbedtls_mcu.a": "crypto",
    "libmbedcrypto_mcu.a": "crypto",
}
# " .text.name  0xADDR  0xSIZE  file" or the name alone, the rest on the next line.
ROW = re.compile(r"^\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)$")
NAMED_ROW = re.compile(r"^ (\.(?:text|rodata)\S*)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)$")
NAME_ONLY = re.compile(r"^ (\.\S+)$")


def group_of(path):
    for lib, group in GROUPS.items():
        # The library, or its variant built with NOMQ_ERROR_TEXT=0 (libnomq_core_mcu_lean.a).
        for name in (lib, lib.replace(".a", "_lean.a")):
            if f"/{name}(" in path or path.startswith(f"{name}("):
                return group
    return None


def main():
    sizes = {"core": 0, "crypto": 0}
    in_memory_map = False
    pending = None
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("Linker script and memory map"):
                in_memory_map = True
                continue
            if not in_memory_map:
                continue
            m = NAMED_ROW.match(line)
            if m:
                name, size, path = m.group(1), int(m.group(2), 16), m.group(3)
                pending = None
            else:
                n = NAME_ONLY.match(line)
                if n:
                    pending = n.group(1)
                    continue
                r = ROW.match(line)
                if not (r and pending):
                    pending = None
                    continue
                name, size, path = pending, int(r.group(1), 16), r.group(2)
                pending = None
            if not (name.startswith(".text") or name.startswith(".rodata")):
                continue
            group = group_of(path)
            if group:
                sizes[group] += size
    suffix = sys.argv[2] if len(sys.argv) > 2 else ""
    print(f"mcu flash_core_bytes{suffix}: {sizes['core']}")
    print(f"mcu flash_total_bytes{suffix}: {sizes['core'] + sizes['crypto']}")


if __name__ == "__main__":
    main()
