#!/usr/bin/env python3
"""Fails when a source file or a function grows too long to read in one go.

Checked: every .rs file under each workspace package's src/ (the root package's src/ and
crates/*/src). A file may have at most MAX_FILE_LINES lines of non-test code, a function
(from the line of its `fn` to the line of its closing brace, found by matching braces in
the code with comments and literals blanked) at most MAX_FN_LINES lines. Test code is left
out: items under #[cfg(test)] (`mod tests` blocks above all), tests.rs files, tests/ and
benches/ directories.

Exceptions live in .ci/size-exceptions.txt, one a line:
    path[:function] max_lines  # reason
where path is relative to the repository and function is the name this script prints
(`Type::method` inside an impl, `outer::inner` for a nested fn, `name#2` for a second
function of the same name). An exception lets that file or function reach max_lines; when
the item is back under the limit (or gone) the script says to remove the exception, and
when it shrank well below max_lines, to lower it.

Usage: check_sizes.py [--exceptions FILE] [--root SRC_DIR ...] | --self-test"""
import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in .ci/
sys.path.insert(0, str(Path(__file__).resolve().parent))
import rust_source  # noqa: E402

MAX_FILE_LINES = 600
MAX_FN_LINES = 100

_ATTRIBUTES = re.compile(r"#\s*!?\s*\[[^\]]*\]")
_FN = re.compile(r"(?<![\w$])fn\s+(\w+)\s*[<(]")
_IMPL = re.compile(r"^(?:unsafe\s+)?impl\b")
_NAMED = re.compile(r"(?<![\w$])(?:mod|trait)\s+(\w+)")
_EXCEPTION = re.compile(r"^(?P<path>[^\s:]+)(?::(?P<function>\S+))?\s+(?P<max>\d+)\s*(?:#.*)?$")


def _strip_generics(text: str) -> str:
    out, depth = [], 0
    for c in text:
        if c == "<":
            depth += 1
        elif c == ">" and depth:
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def impl_label(header: str) -> str:
    """`Type` for `impl<T> Trait<T> for a::Type<T> where ...`."""
    rest = _strip_generics(re.sub(r"->", " ", header[header.index("impl") + 4:]))
    rest = re.split(r"\bwhere\b", rest)[0]
    parts = re.split(r"\bfor\b", rest)
    target = parts[-1].strip() if len(parts) > 1 else parts[0].strip()
    target = re.sub(r"^(?:&\s*(?:'\w+\s*)?(?:mut\s+)?|dyn\s+)", "", target).strip()
    return target.split("::")[-1].strip() or "impl"


def functions(code: str):
    """(name, first line, last line, start offset) of each fn with a body in blanked code.
    Names are qualified by the enclosing impl type, trait, inline module or function."""
    stack = []  # the label (or None) of each open brace
    found = []
    last_boundary = 0
    parens = 0
    for k, c in enumerate(code):
        if c in "([":
            parens += 1
        elif c in ")]":
            parens = max(0, parens - 1)
        elif c == "{" and parens:
            # A block inside parentheses: a closure argument, a struct pattern in a
            # parameter list. It names nothing.
            stack.append(None)
        elif c == "{":
            segment = _ATTRIBUTES.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)),
                                      code[last_boundary:k])
            header = segment.strip()
            label = None
            fn = _FN.search(segment)
            if fn:
                label = fn.group(1)
                scope = [s for s in stack if s]
                at = last_boundary + fn.start()
                end = rust_source.matching_brace(code, k)
                found.append(("::".join(scope + [label]), rust_source.line_of(code, at),
                              rust_source.line_of(code, end), at))
            elif _IMPL.match(re.sub(r"^(?:pub(?:\s*\([^)]*\))?\s+)?(?:default\s+)?", "",
                                    header)):
                label = impl_label(header)
            elif header.startswith(("mod", "trait", "pub", "unsafe")):
                named = _NAMED.search(header)
                label = named.group(1) if named else None
            stack.append(label)
            last_boundary = k + 1
        elif c == "}":
            if stack:
                stack.pop()
            if not parens:
                last_boundary = k + 1
        elif c == ";" and not parens:
            last_boundary = k + 1
    # A second function of the same name gets #2, the third #3, ...
    seen, named = {}, []
    for name, first, last, at in found:
        seen[name] = seen.get(name, 0) + 1
        named.append((name if seen[name] == 1 else f"{name}#{seen[name]}", first, last, at))
    return named


def measure(repo: Path, src: Path):
    """{key: lines} for every file (non-test lines) and every non-test function of a crate."""
    sizes = {}
    for file, (text, code, ranges) in rust_source.source_files(src).items():
        rel = file.relative_to(repo).as_posix()
        test_lines = set()
        for start, end in ranges:
            test_lines.update(range(rust_source.line_of(code, start),
                                    rust_source.line_of(code, max(start, end - 1)) + 1))
        total = len(text.splitlines())
        sizes[rel] = total - len(test_lines)
        for name, first, last, at in functions(code):
            if any(start <= at < end for start, end in ranges):
                continue
            sizes[f"{rel}:{name}"] = last - first + 1
    return sizes


def read_exceptions(path: Path):
    exceptions, problems = {}, []
    if not path.exists():
        return exceptions, problems
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _EXCEPTION.match(line)
        if not match or "#" not in line:
            problems.append(f"{path.name}:{number}: expected `path[:function] max_lines  "
                            f"# reason`, got: {raw}")
            continue
        key = match["path"] + (f":{match['function']}" if match["function"] else "")
        exceptions[key] = int(match["max"])
    return exceptions, problems


def check(repo: Path, crates, exceptions_file: Path):
    """(failures, notes) for the crates against the exceptions."""
    sizes = {}
    for _, src in crates:
        sizes.update(measure(repo, src))
    exceptions, failures = read_exceptions(exceptions_file)
    notes = []
    for key, lines in sorted(sizes.items()):
        is_fn = ":" in key
        limit = MAX_FN_LINES if is_fn else MAX_FILE_LINES
        what = "function" if is_fn else "file"
        allowed = exceptions.get(key)
        if lines <= limit:
            if allowed is not None:
                notes.append(f"note: {key} has {lines} lines, within the {what} limit of {limit}: "
                             f"remove its line from {exceptions_file.name}")
            continue
        if allowed is None:
            failures.append(f"{key}: {lines} lines, over the {what} limit of {limit} "
                            f"({'non-test lines' if not is_fn else 'fn to closing brace'})")
        elif lines > allowed:
            failures.append(f"{key}: {lines} lines, over its exception of {allowed} "
                            f"in {exceptions_file.name} (limit {limit})")
        elif lines < allowed - max(10, allowed // 10):
            notes.append(f"note: {key} has {lines} lines now: lower its exception from "
                         f"{allowed} to {lines} in {exceptions_file.name}")
    for key in sorted(set(exceptions) - set(sizes)):
        notes.append(f"note: {key} in {exceptions_file.name} no longer exists: remove its line")
    return failures, notes


def run(repo: Path, crates, exceptions_file: Path) -> int:
    failures, notes = check(repo, crates, exceptions_file)
    for line in failures + notes:
        print(line)
    where = ", ".join(str(src.relative_to(repo)) for _, src in crates)
    if failures:
        shown = (exceptions_file.relative_to(repo) if repo in exceptions_file.parents
                 else exceptions_file)
        print(f"{len(failures)} size problem(s) in {where}: split the file or function, or "
              f"add a line with the reason to {shown}")
        return 1
    print(f"sizes within limits in {where} (files <= {MAX_FILE_LINES} non-test lines, "
          f"functions <= {MAX_FN_LINES} lines)")
    return 0


def self_test() -> int:
    problems = []

    def expect(condition, message):
        if not condition:
            problems.append(message)

    long_body = "".join(f"    let x{i} = {i};\n" for i in range(MAX_FN_LINES))
    tricky = (
        "    let s = \"}}}\"; let r = r#\"{ \"# ; let c = '}'; let e = '\\'';\n"
        "    // }\n    /* { /* } */ } */\n    let l: &'static str = \"\";\n"
    )
    source = (
        "pub struct Thing;\n"
        "impl Thing {\n"
        "    pub fn short(&self) -> u8 {\n        1\n    }\n"
        f"    pub fn long(&self) {{\n{tricky}{long_body}    }}\n"
        "}\n"
        "impl std::fmt::Display for Thing {\n"
        "    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n"
        "        fn inner() {}\n        Ok(())\n    }\n"
        "}\n"
        "fn free() where u8: Copy {\n    let _ = Thing {};\n}\n"
        "#[cfg(test)]\n"
        f"mod tests {{\n    fn huge() {{\n{long_body}    }}\n}}\n"
    )
    code = rust_source.blank_non_code(source)
    names = {name: last - first + 1 for name, first, last, _ in functions(code)}
    expected_long = MAX_FN_LINES + 4 + 2
    expect(names.get("Thing::short") == 3, f"Thing::short: {names}")
    expect(names.get("Thing::long") == expected_long,
           f"Thing::long should be {expected_long} lines: {names}")
    expect(names.get("Thing::fmt") == 4 and "Thing::fmt::inner" in names, f"fmt: {names}")
    expect(names.get("free") == 3, f"free: {names}")

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        src = repo / "src"
        (src / "deep" / "tests").mkdir(parents=True)
        (src / "lib.rs").write_text(source)
        (src / "big.rs").write_text("fn a() {}\n" * (MAX_FILE_LINES + 1)
                                    + "#[cfg(test)]\nmod tests {\n" + "\n" * 50 + "}\n")
        (src / "tested.rs").write_text("fn a() {}\n" * 10 + "#[cfg(test)]\nmod tests {\n"
                                       + "\n" * MAX_FILE_LINES + "}\n")
        (src / "deep" / "tests.rs").write_text("\n" * 2000)
        (src / "deep" / "tests" / "x.rs").write_text("\n" * 2000)
        exceptions = repo / "exceptions.txt"
        crates = [("t", src)]

        exceptions.write_text("")
        failures, notes = check(repo, crates, exceptions)
        expect(sorted(f.split(": ")[0] for f in failures)
               == ["src/big.rs", "src/lib.rs:Thing::long"],
               f"without exceptions: {failures}")
        expect(not notes, f"without exceptions, no notes: {notes}")

        exceptions.write_text(
            f"src/big.rs {MAX_FILE_LINES + 1}  # generated table\n"
            f"src/lib.rs:Thing::long {expected_long + 50}  # one long match\n"
            "src/tested.rs 700  # was long\n"
            "src/gone.rs:f 200  # removed since\n"
        )
        failures, notes = check(repo, crates, exceptions)
        expect(not failures, f"with exceptions, no failures: {failures}")
        joined = "\n".join(notes)
        for part in ("src/tested.rs has 10 lines", "lower its exception from",
                     "src/gone.rs:f in exceptions.txt no longer exists"):
            expect(part in joined, f"notes should mention '{part}': {notes}")

        exceptions.write_text(f"src/big.rs {MAX_FILE_LINES}  # too tight\nsrc/lib.rs 3\n")
        failures, _ = check(repo, crates, exceptions)
        expect(any("over its exception of 600" in f for f in failures), f"tight: {failures}")
        expect(any("expected `path[:function] max_lines" in f for f in failures),
               f"an exception without a reason is refused: {failures}")

    for problem in problems:
        print(f"self-test: {problem}")
    if problems:
        return 1
    print("check_sizes self-test: passed")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true",
                        help="check the checker on made-up files")
    parser.add_argument("--exceptions", type=Path, help="default: .ci/size-exceptions.txt")
    parser.add_argument("--root", action="append", type=Path, default=[],
                        help="a crate's src directory (default: every workspace package's)")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    repo = Path(__file__).resolve().parent.parent
    exceptions = (args.exceptions or repo / ".ci" / "size-exceptions.txt").resolve()
    if args.root:
        crates = [(p.resolve().parent.name, p.resolve()) for p in args.root]
    else:
        crates = rust_source.crates(repo)
    return run(repo, crates, exceptions)


if __name__ == "__main__":
    sys.exit(main())
