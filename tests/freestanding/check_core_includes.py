#!/usr/bin/env python3
"""Fails if the NoMQ core includes anything but the C++ standard library and core headers.

The core (src/wire, src/core, src/crypto/constant_time.cpp and the core public headers) must
build for a microcontroller: no OS headers, no OpenSSL, no runtime headers. This scans every
#include line of those files (including ones inside #if blocks: a conditional OS include is
still an OS include) and prints one line per violation, "file:line: <header>: why".

Usage: check_core_includes.py SOURCE_DIR     check the project tree (exit 1 on a violation)
       check_core_includes.py --self-test    prove that the check catches a planted include
"""
import pathlib
import re
import sys
import tempfile

# The public headers that make up the core's interface (include/nomq/<name>.hpp).
CORE_PUBLIC_HEADERS = ["error", "bytes", "time", "crypto", "endpoint", "wire", "engine", "key_schedule"]

# Every header of the C++20 standard library ([headers] tables 24 and 25), by name.
STANDARD_HEADERS = set("""
algorithm any array atomic barrier bit bitset charconv chrono codecvt compare complex concepts
condition_variable coroutine deque exception execution filesystem format forward_list fstream
functional future initializer_list iomanip ios iosfwd iostream istream iterator latch limits
list locale map memory memory_resource mutex new numbers numeric optional ostream queue random
ranges ratio regex scoped_allocator semaphore set shared_mutex source_location span sstream
stack stdexcept stop_token streambuf string string_view strstream syncstream system_error
thread tuple type_traits typeindex typeinfo unordered_map unordered_set utility valarray
variant vector version
cassert cctype cerrno cfenv cfloat cinttypes climits clocale cmath csetjmp csignal cstdarg
cstddef cstdint cstdio cstdlib cstring ctime cuchar cwchar cwctype
""".split())

# Standard, but thin wrappers over OS services (threads, files, consoles, signals). The core
# takes such things as inputs instead, so these are refused too.
OS_FACING_STANDARD_HEADERS = set("""
barrier condition_variable csignal filesystem fstream future iostream latch mutex semaphore
shared_mutex stop_token syncstream thread
""".split())

INCLUDE = re.compile(r'^\s*#\s*include\s*(.*?)\s*(?://.*|/\*.*)?$')
ANGLE = re.compile(r'^<([^>]+)>$')
QUOTE = re.compile(r'^"([^"]+)"$')


def core_files(root: pathlib.Path):
    """The files to scan, and an error for each expected file that is missing."""
    files, missing = [], []
    for sub in ("src/wire", "src/core"):
        d = root / sub
        if d.is_dir():
            files += sorted(p for p in d.rglob("*")
                            if p.suffix in (".cpp", ".hpp", ".h", ".ipp", ".inc"))
    for rel in ["src/crypto/constant_time.cpp"] + [
            f"include/nomq/{h}.hpp" for h in CORE_PUBLIC_HEADERS]:
        p = root / rel
        (files if p.is_file() else missing).append(p if p.is_file() else rel)
    return files, missing


def why_refused(target: str, root: pathlib.Path):
    """None if the include target is allowed in the core, else the reason."""
    m = ANGLE.match(target)
    if m:
        name = m.group(1)
        if name in OS_FACING_STANDARD_HEADERS:
            return "standard header wrapping an OS service; the core takes this as an input"
        if name in STANDARD_HEADERS:
            return None
        if name.endswith(".h") and ("c" + name[:-2]) in STANDARD_HEADERS:
            return f"C header; use <c{name[:-2]}>"
        return "not a C++ standard library header (OS or third-party header)"
    m = QUOTE.match(target)
    if m:
        name = m.group(1)
        if name.startswith("nomq/"):
            stem = name[len("nomq/"):]
            if stem.endswith(".hpp") and stem[:-4] in CORE_PUBLIC_HEADERS:
                return None
            return "public header outside the core (core headers: " + \
                ", ".join(f"nomq/{h}.hpp" for h in CORE_PUBLIC_HEADERS) + ")"
        if name.startswith(("core/", "wire/")):
            if (root / "src" / name).is_file():
                return None
            return "no such core header under src/"
        return 'project includes in the core are spelled "nomq/...", "core/..." or "wire/..."'
    return "computed or malformed #include (cannot be checked)"


def check(root: pathlib.Path):
    """All violations as 'file:line: target: reason' strings."""
    files, missing = core_files(root)
    problems = [f"{root / rel}: missing core header" for rel in missing]
    for path in files:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            reason = why_refused(m.group(1), root)
            if reason:
                problems.append(f"{path}:{lineno}: {m.group(1)}: {reason}")
    return problems, len(files)


def self_test():
    """The check must pass on a clean tree and name the file and line of each planted include."""
    clean = {
        "include/nomq/" + h + ".hpp": '#pragma once\n#include <cstdint>\n#include "nomq/bytes.hpp"\n'
        for h in CORE_PUBLIC_HEADERS
    }
    clean["src/crypto/constant_time.cpp"] = '#include "nomq/crypto.hpp"\n'
    clean["src/wire/helper.hpp"] = "#pragma once\n#include <span>\n"
    clean["src/wire/codec.cpp"] = ('#include "nomq/wire.hpp"\n#include <algorithm>\n'
                                   '#include "wire/helper.hpp"\n')
    planted = {
        "src/wire/codec.cpp": (3, "#include <sys/socket.h>"),
        "src/core/engine.cpp": (2, "#  include <thread>  // for a sleep"),
        "include/nomq/engine.hpp": (4, '#include "nomq/openssl_crypto.hpp"'),
        "src/wire/helper.hpp": (3, "#include <string.h>"),
        "src/crypto/constant_time.cpp": (2, '#include "wire/missing.hpp"'),
    }
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        for rel, text in clean.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        (root / "src/core").mkdir(parents=True, exist_ok=True)
        problems, _ = check(root)
        if problems:
            failures.append("clean tree refused: " + "; ".join(problems))
        for rel, (lineno, line) in planted.items():
            p = root / rel
            lines = p.read_text().splitlines() if p.exists() else []
            while len(lines) < lineno - 1:
                lines.append("// filler")
            lines.insert(lineno - 1, line)
            p.write_text("\n".join(lines) + "\n")
        problems, _ = check(root)
        for rel, (lineno, _line) in planted.items():
            prefix = f"{root / rel}:{lineno}: "
            if not any(pr.startswith(prefix) for pr in problems):
                failures.append(f"planted include not reported: {rel}:{lineno}")
        if len(problems) != len(planted):
            failures.append(f"expected {len(planted)} problems, got: " + "; ".join(problems))
    for f in failures:
        print("self-test FAILED: " + f)
    if not failures:
        print(f"self-test passed: clean tree accepted, {len(planted)} planted includes reported")
    return 1 if failures else 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-2].strip(), file=sys.stderr)
        return 2
    root = pathlib.Path(argv[1]).resolve()
    problems, scanned = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) not allowed in the core ({scanned} files scanned)")
        return 1
    print(f"core includes only standard and core headers ({scanned} files scanned)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
