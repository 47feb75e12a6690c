#!/usr/bin/env python3
"""Fails when modules of a crate depend on each other in a cycle.

For each crate of the workspace (the root package's src/ and each crates/*/src), files map
to module paths (lib.rs is the crate root, foo.rs and foo/mod.rs are `foo`, foo/bar.rs is
`foo::bar`; inline `mod x { ... }` blocks are modules too). References are the paths in
`use` declarations (grouped ones included: `use crate::{a, b::c}`) and paths written inline
(`crate::a::f()`), starting with `crate::`, `self::` or `super::`, resolved to absolute
module paths. Paths through a name already imported, or re-exported, are not followed.

Then, for every module P, the graph among P's direct children has an edge A -> B when
code anywhere in A's subtree refers to anything in B's subtree (a reference to an item of
P itself, or of any other ancestor, is no edge). Each strongly connected component of more
than one child is reported with file:line evidence for each of its edges; exit status 1.

Test code is left out, as it may look anywhere: items under #[cfg(test)] (`mod tests`
blocks above all), tests.rs files and tests/ directories under src. So is a binary's
src/main.rs (and src/bin/) when the crate has a library: it sits outside the library's
module graph.

Usage: check_module_cycles.py [--root SRC_DIR ...] | --self-test"""
import argparse
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in .ci/
sys.path.insert(0, str(Path(__file__).resolve().parent))
import rust_source  # noqa: E402

_USE = re.compile(r"(?<![\w$])use\s+([^;]*);")
_TOKEN = re.compile(r"::|[{},*]|\w+")
_INLINE_PATH = re.compile(
    r"(?<![\w$])((?:crate|self|super)(?:\s*::\s*(?:super|self))*(?:\s*::\s*\w+)+)"
)
_INLINE_MOD = re.compile(r"(?<![\w$])mod\s+(\w+)\s*\{")
EVIDENCE_PER_EDGE = 5


def module_path(src: Path, file: Path):
    """Module path of a file below src as a tuple; () for the crate root."""
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def parse_use_tree(tokens, pos, prefix):
    """Paths named by the use tree starting at tokens[pos] ((text, offset) pairs):
    ([(segments, offset)], next pos)."""
    segments = list(prefix)
    while pos < len(tokens):
        token, offset = tokens[pos]
        if token == "{":
            paths, pos = [], pos + 1
            while pos < len(tokens) and tokens[pos][0] != "}":
                sub, pos = parse_use_tree(tokens, pos, segments)
                paths += sub
                if pos < len(tokens) and tokens[pos][0] == ",":
                    pos += 1
            return paths, pos + 1
        if token == "*":
            return [(segments, offset)], pos + 1
        if token == "::":
            pos += 1
            continue
        if token in (",", "}"):
            return [], pos
        segments.append(token)
        pos += 1
        if pos < len(tokens) and tokens[pos][0] == "::":
            pos += 1
            continue
        if pos < len(tokens) and tokens[pos][0] == "as":
            pos += 2
        if len(segments) > 1 and segments[-1] == "self":
            segments.pop()
        return [(segments, offset)], pos
    return [(segments, 0)] if segments else [], pos


def resolve(segments, current):
    """Absolute module path (tuple) for a path written in module `current`, or None for a
    path that is not crate-relative (another crate, a local name, a prelude item)."""
    if not segments:
        return None
    head = segments[0]
    if head == "crate":
        rest, base = segments[1:], []
    elif head in ("self", "super"):
        rest, base = segments, list(current)
    else:
        return None
    while rest and rest[0] in ("self", "super"):
        if rest[0] == "super":
            if not base:
                return None
            base.pop()
        rest = rest[1:]
    return tuple(base) + tuple(rest)


def references(src: Path, file: Path, text: str, code: str, modules: set):
    """(source module, target path, line) for each crate-relative path in one file (the line
    of a use declaration is its first); adds the file's inline modules to `modules`."""
    own = module_path(src, file)
    inline = []  # (start, end, module path)
    for block in _INLINE_MOD.finditer(code):
        end = rust_source.matching_brace(code, block.end() - 1)
        inline.append((block.start(), end, block.group(1)))

    def module_at(offset):
        path = list(own)
        for start, end, name in inline:
            if start < offset < end:
                path.append(name)
        return tuple(path)

    for start, _, _ in inline:
        modules.add(module_at(start + 1))

    found = []
    remaining = list(code)
    for use in _USE.finditer(code):
        body_start = use.start(1)
        tokens = [(m.group(0), body_start + m.start()) for m in _TOKEN.finditer(use.group(1))]
        try:
            paths, _ = parse_use_tree(tokens, 0, [])
        except IndexError:
            print(f"warning: {file}:{rust_source.line_of(code, use.start())}: "
                  "use declaration not understood; skipped", file=sys.stderr)
            paths = []
        current = module_at(use.start())
        for segments, offset in paths:
            target = resolve(segments, current)
            if target is not None:
                found.append((current, target, rust_source.line_of(code, use.start())))
        for k in range(use.start(), use.end()):
            if remaining[k] != "\n":
                remaining[k] = " "
    rest = "".join(remaining)
    for inline_path in _INLINE_PATH.finditer(rest):
        segments = [s.strip() for s in inline_path.group(1).split("::")]
        current = module_at(inline_path.start())
        target = resolve(segments, current)
        if target is not None:
            found.append((current, target, rust_source.line_of(code, inline_path.start())))
    return found


def strongly_connected(nodes, edges):
    """Tarjan's algorithm: the components of more than one node, each sorted."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return result


def show(path):
    return "::".join(("crate",) + tuple(path))


def check_crate(repo: Path, name: str, src: Path):
    """Cycle reports (strings) for one crate."""
    files = rust_source.source_files(src)
    if (src / "lib.rs") in files:
        files = {
            f: info for f, info in files.items()
            if f != src / "main.rs" and src / "bin" not in f.parents
        }
    modules = {()}
    for file in files:
        path = module_path(src, file)
        for depth in range(len(path) + 1):
            modules.add(path[:depth])
    refs = []  # (source module, target, file, line)
    for file, (text, code, ranges) in files.items():
        code = rust_source.blank_ranges(code, ranges)
        for source, target, line in references(src, file, text, code, modules):
            refs.append((source, target, file, line))

    children = defaultdict(set)
    for module in modules:
        if module:
            children[module[:-1]].add(module[-1])

    # edges[parent][a][b] = [(file, line, target)]
    edges = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for source, target, file, line in refs:
        for depth in range(len(source)):
            parent = source[:depth]
            if target[:depth] != parent or len(target) <= depth:
                continue
            a, b = source[depth], target[depth]
            if a != b and b in children[parent]:
                edges[parent][a][b].append((file, line, target))

    reports = []
    for parent in sorted(edges):
        graph = {a: set(bs) for a, bs in edges[parent].items()}
        for component in strongly_connected(children[parent], graph):
            lines = [
                f"module cycle in crate {name}: among the children of {show(parent)}: "
                + ", ".join(component)
            ]
            for a in component:
                for b in sorted(edges[parent][a]):
                    if b not in component:
                        continue
                    evidence = {}
                    for file, line, target in sorted(edges[parent][a][b]):
                        evidence.setdefault((file, line), target)
                    evidence = sorted(evidence.items())
                    lines.append(f"  {show(parent + (a,))} -> {show(parent + (b,))}")
                    for (file, line), target in evidence[:EVIDENCE_PER_EDGE]:
                        text = files[file][0].splitlines()[line - 1].strip()
                        if len(text) > 90:
                            text = text[:87] + "..."
                        lines.append(
                            f"    {file.relative_to(repo)}:{line}: {show(target)}   <- {text}"
                        )
                    if len(evidence) > EVIDENCE_PER_EDGE:
                        lines.append(f"    ... and {len(evidence) - EVIDENCE_PER_EDGE} more")
            reports.append("\n".join(lines))
    return reports


def run(repo: Path, crates) -> int:
    reports = []
    for name, src in crates:
        reports += check_crate(repo, name, src)
    for report in reports:
        print(report)
    names = ", ".join(name for name, _ in crates)
    if reports:
        print(f"{len(reports)} module cycle(s) in {names}: break each one, e.g. by moving what "
              "both sides need into one of them or into a module below their common parent")
        return 1
    print(f"no module cycles in {names}")
    return 0


def self_test() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def write(rel, text):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

        # A cycle at the crate root (a <-> b, one edge a grouped use, the other an inline
        # path from a submodule of b), one among the children of `sim` (x <-> y through
        # super::), and references that must not count: comments, strings, test code,
        # ancestors, the binary.
        write("cyc/src/lib.rs", "pub mod a;\npub mod b;\npub mod sim;\npub mod c;\n")
        write("cyc/src/main.rs", "use cyc::a;\nfn main() { crate::c::go(); }\n")
        write("cyc/src/a.rs",
              "use crate::{b::{self, Thing}, c};\n"
              "// crate::c::nothing()\n")
        write("cyc/src/b/mod.rs", "pub mod deep;\npub struct Thing;\n")
        write("cyc/src/b/deep.rs",
              "pub fn f() -> u8 {\n    crate::a::helper()\n}\n")
        write("cyc/src/c.rs",
              "pub fn go() { let _ = \"crate::a::x\"; let _ = 'c'; }\n"
              "#[cfg(test)]\nmod tests {\n    use crate::a::helper;\n}\n")
        write("cyc/src/sim/mod.rs", "mod x;\nmod y;\nmod z;\n#[cfg(test)]\nmod tests;\n")
        write("cyc/src/sim/x.rs", "use super::y::Y;\nuse super::super::b::Thing;\n")
        write("cyc/src/sim/y.rs", "pub struct Y;\nfn g() { super::x::h(); }\n")
        write("cyc/src/sim/z.rs", "use super::x;\nuse super::*;\n")
        write("cyc/src/sim/tests.rs", "use super::z::Z;\n")
        # The same shapes without the cycles.
        write("acyc/src/lib.rs", "pub mod a;\npub mod b;\npub mod sim;\n")
        write("acyc/src/main.rs", "fn main() { crate::b::f(); }\n")
        write("acyc/src/a.rs", "use crate::{b::{self, Thing}};\n")
        write("acyc/src/b/mod.rs", "pub mod deep;\npub struct Thing;\n"
              "#[cfg(test)]\nmod tests {\n    use crate::a::helper;\n}\n")
        write("acyc/src/b/deep.rs", "// crate::a::helper()\nfn f() { super::Thing; }\n")
        write("acyc/src/sim/mod.rs", "mod x;\nmod y;\n#[cfg(test)]\nmod tests;\n")
        write("acyc/src/sim/x.rs", "use super::y::Y;\n")
        write("acyc/src/sim/y.rs", "pub struct Y;\nfn g() { let s = r#\"super::x::h()\"#; }\n")
        write("acyc/src/sim/tests.rs", "use super::x::X;\n")

        cyclic = check_crate(root, "cyc", root / "cyc/src")
        acyclic = check_crate(root, "acyc", root / "acyc/src")
        problems = []
        heads = sorted(r.splitlines()[0] for r in cyclic)
        expected = [
            "module cycle in crate cyc: among the children of crate: a, b",
            "module cycle in crate cyc: among the children of crate::sim: x, y",
        ]
        if heads != expected:
            problems.append(f"cyclic tree: expected {expected}, got {heads}")
        joined = "\n".join(cyclic)
        for evidence in ("cyc/src/a.rs:1:", "cyc/src/b/deep.rs:2:", "cyc/src/sim/x.rs:1:",
                         "cyc/src/sim/y.rs:2:"):
            if evidence not in joined:
                problems.append(f"cyclic tree: evidence {evidence} missing from:\n{joined}")
        for wrong in ("a.rs:2:", "c.rs", "main.rs", "tests"):
            if wrong in joined:
                problems.append(f"cyclic tree: {wrong} should not be evidence:\n{joined}")
        if acyclic:
            problems.append("acyclic tree reported:\n" + "\n".join(acyclic))
    for problem in problems:
        print(f"self-test: {problem}")
    if problems:
        return 1
    print("check_module_cycles self-test: passed")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true",
                        help="check the checker on a made-up crate with known cycles")
    parser.add_argument("--root", action="append", type=Path, default=[],
                        help="a crate's src directory (default: every workspace package's)")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    repo = Path(__file__).resolve().parent.parent
    if args.root:
        crates = [(p.resolve().parent.name, p.resolve()) for p in args.root]
    else:
        crates = rust_source.crates(repo)
    return run(repo, crates)


if __name__ == "__main__":
    sys.exit(main())
