#!/usr/bin/env python3
"""Fails unless every ```cpp block of a Markdown file is an excerpt of one example program.

The examples are compiled and run by CTest, so a block that is an excerpt of one compiles too.
A block is an excerpt of a file when its lines appear in the file in the same order; lines are
compared without // comments and with runs of spaces collapsed (so a block may comment and
align differently), and blank lines and "..." lines (elisions) are skipped.

Usage: check_doc_excerpts.py DOC.md EXAMPLES_DIR   one line per block that is not an excerpt
       check_doc_excerpts.py --self-test          prove that a block not in an example is caught
"""
import pathlib
import re
import sys
import tempfile

FENCE = re.compile(r"^```(\w*)\s*$")


def normalize(line: str) -> str:
    """The line without a // comment (outside string and char literals), spaces collapsed."""
    out, quote, i = [], None, 0
    while i < len(line):
        c = line[i]
        if quote:
            out.append(c)
            if c == "\\" and i + 1 < len(line):
                out.append(line[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
            out.append(c)
        elif line.startswith("//", i):
            break
        else:
            out.append(c)
        i += 1
    return " ".join("".join(out).split())


def code_lines(text: str):
    return [n for n in (normalize(l) for l in text.splitlines()) if n and n != "..."]


def cpp_blocks(markdown: str):
    """(first line number, text) of every ```cpp block."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(markdown.splitlines(), 1):
        m = FENCE.match(line.strip())
        if current is None and m and m.group(1) == "cpp":
            current, start = [], number + 1
        elif current is not None and m and m.group(1) == "":
            blocks.append((start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def first_missing(block, example):
    """None if `block` (normalized lines) is a subsequence of `example`, else the first line
    that is not."""
    at = 0
    for line in block:
        try:
            at = example.index(line, at) + 1
        except ValueError:
            return line
    return None


def check(doc: pathlib.Path, examples_dir: pathlib.Path):
    examples = {p.name: code_lines(p.read_text(encoding="utf-8"))
                for p in sorted(examples_dir.glob("*.cpp"))}
    problems = []
    for start, text in cpp_blocks(doc.read_text(encoding="utf-8")):
        block = code_lines(text)
        misses = {name: first_missing(block, lines) for name, lines in examples.items()}
        if block and all(misses.values()):
            best = min(misses.items(), key=lambda kv: block.index(kv[1]) * -1)
            problems.append(f"{doc}:{start}: block is not an excerpt of any of "
                            f"{', '.join(examples)} (in {best[0]}, missing: {best[1]!r})")
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "ex").mkdir()
        (root / "ex" / "a.cpp").write_text(
            'int main() {\n  int x = 1;   // one\n  return x; // "//" is a comment here\n}\n')
        (root / "good.md").write_text(
            "```cpp\nint main() {\n  ...\n  return x;  // other words\n```\n")
        (root / "bad.md").write_text("text\n```cpp\nint main() {\n  return y;\n```\n")
        good = check(root / "good.md", root / "ex")
        bad = check(root / "bad.md", root / "ex")
    failures = []
    if good:
        failures.append("an excerpt was refused: " + "; ".join(good))
    if len(bad) != 1 or ":3: " not in bad[0] or "return y;" not in bad[0]:
        failures.append("a block not in the example was not reported with its line: " + repr(bad))
    for f in failures:
        print("self-test FAILED: " + f)
    if not failures:
        print("self-test passed: excerpt accepted, a foreign block reported")
    return 1 if failures else 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-2].strip(), file=sys.stderr)
        return 2
    if self_test() != 0:
        return 1
    problems = check(pathlib.Path(argv[1]), pathlib.Path(argv[2]))
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"every C++ block of {argv[1]} is an excerpt of an example")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
