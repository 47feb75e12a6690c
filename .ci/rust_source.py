"""Shared helpers for .ci/check_module_cycles.py and .ci/check_sizes.py: where a crate's
sources are, which files and regions are test code, and a copy of a Rust file with its
comments and literals blanked, so that brace matching and path searches see code only.

Not a Rust parser: a scan good enough for the code base's own style, with the limits said
where they matter (no `#[path]` attributes, no macros that define modules or functions)."""
import json
import re
import subprocess
from pathlib import Path

_IDENT = re.compile(r"[A-Za-z0-9_]")
_RAW_STRING = re.compile(r"[bc]?r(#*)\"")


def _is_ident(char: str) -> bool:
    return bool(_IDENT.match(char))


def blank_non_code(text: str) -> str:
    """The text with comments and the contents of string, raw-string and char literals
    replaced by spaces. Newlines are kept, so offsets and line numbers stay the same.
    Lifetimes and labels ('a) are left alone."""
    out = list(text)
    n = len(text)

    def blank(start: int, end: int) -> None:
        for k in range(start, min(end, n)):
            if out[k] != "\n":
                out[k] = " "

    i = 0
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
            continue
        if c == "/" and text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
            continue
        if c in "bcr" and (i == 0 or not _is_ident(text[i - 1])):
            raw = _RAW_STRING.match(text, i)
            if raw:
                closing = '"' + raw.group(1)
                end = text.find(closing, raw.end())
                end = n if end < 0 else end
                blank(raw.end(), end)
                i = end + len(closing)
                continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
            continue
        if c == "'":
            if i + 1 < n and text[i + 1] == "\\":
                # An escaped char: '\n', '\'', '\\', '\x7f', '\u{1F600}'.
                end = text.find("'", i + 3)
                end = n if end < 0 else end
                blank(i + 1, end)
                i = end + 1
                continue
            if i + 2 < n and text[i + 2] == "'":
                blank(i + 1, i + 2)
                i += 3
                continue
            i += 1  # a lifetime or a label
            continue
        i += 1
    return "".join(out)


def matching_brace(code: str, open_at: int) -> int:
    """Offset of the `}` that closes the `{` at open_at (in blanked code), or len(code)."""
    depth = 0
    for k in range(open_at, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(code)


def item_end(code: str, start: int) -> int:
    """End offset (exclusive) of the item starting at start: through its `;` or through the
    `}` closing its first `{` outside parentheses and brackets."""
    depth = 0
    for k in range(start, len(code)):
        c = code[k]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and c == ";":
            return k + 1
        elif depth == 0 and c == "{":
            return matching_brace(code, k) + 1
    return len(code)


_CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
_INNER_CFG_TEST = re.compile(r"#\s*!\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
_ATTRIBUTE = re.compile(r"\s*#\s*\[")
_MOD_DECL = re.compile(r"(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(\w+)\s*;")
_TESTS_BLOCK = re.compile(r"(?<![\w$])mod\s+tests\s*\{")


def _skip_attributes(code: str, at: int) -> int:
    while True:
        attribute = _ATTRIBUTE.match(code, at)
        if not attribute:
            return at
        depth, k = 0, attribute.end() - 1
        while k < len(code):
            if code[k] == "[":
                depth += 1
            elif code[k] == "]":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        at = k + 1


def test_regions(code: str):
    """Test code in blanked code: (ranges, declared) where ranges are (start, end) offsets of
    items under `#[cfg(test)]` and of `mod tests { ... }` blocks, and declared names the
    modules declared `#[cfg(test)] mod name;` (whose files are test code). A file starting
    with `#![cfg(test)]` is one range."""
    inner = _INNER_CFG_TEST.search(code)
    if inner and not code[: inner.start()].strip():
        return [(0, len(code))], []
    ranges, declared = [], []
    for attribute in _CFG_TEST.finditer(code):
        start = _skip_attributes(code, attribute.end())
        while start < len(code) and code[start].isspace():
            start += 1
        declaration = _MOD_DECL.match(code, start)
        if declaration:
            declared.append(declaration.group(1))
        ranges.append((attribute.start(), item_end(code, start)))
    for block in _TESTS_BLOCK.finditer(code):
        if not any(a <= block.start() < b for a, b in ranges):
            ranges.append((block.start(), matching_brace(code, block.end() - 1) + 1))
    return sorted(ranges), declared


def blank_ranges(code: str, ranges) -> str:
    out = list(code)
    for start, end in ranges:
        for k in range(start, min(end, len(out))):
            if out[k] != "\n":
                out[k] = " "
    return "".join(out)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def crates(repo: Path):
    """(name, src directory) of each package of the workspace, root package first: from
    `cargo metadata --no-deps`, or, without cargo, `src` and `crates/*/src`."""
    found = []
    try:
        metadata = json.loads(
            subprocess.run(
                ["cargo", "metadata", "--no-deps", "--format-version", "1"],
                cwd=repo, check=True, capture_output=True, text=True,
            ).stdout
        )
        for package in metadata["packages"]:
            src = Path(package["manifest_path"]).parent / "src"
            if src.is_dir():
                found.append((package["name"], src.resolve()))
    except (OSError, subprocess.CalledProcessError, ValueError, KeyError):
        candidates = [repo / "src"] + sorted(repo.glob("crates/*/src"))
        found = [(_package_name(c.parent), c.resolve()) for c in candidates if c.is_dir()]
    root = (repo / "src").resolve()
    found.sort(key=lambda crate: (crate[1] != root, str(crate[1])))
    return found


def _package_name(directory: Path) -> str:
    try:
        text = (directory / "Cargo.toml").read_text(encoding="utf-8")
    except OSError:
        return directory.name
    package = re.search(r"^\[package\][^\[]*?^name\s*=\s*\"([^\"]+)\"", text, re.M | re.S)
    return package.group(1) if package else directory.name


def module_dir(src: Path, file: Path) -> Path:
    """The directory where `mod x;` in file looks for x.rs and x/mod.rs."""
    if file.name in ("lib.rs", "main.rs", "mod.rs") or file.parent == src / "bin":
        return file.parent
    return file.parent / file.stem


def is_test_path(src: Path, file: Path) -> bool:
    """tests.rs files and anything under a tests/ or benches/ directory below src."""
    relative = file.relative_to(src)
    return file.name == "tests.rs" or any(
        part in ("tests", "benches") for part in relative.parts[:-1]
    )


def source_files(src: Path):
    """Non-test .rs files of a crate's src directory, sorted, each with its blanked code and
    its test ranges; files declared `#[cfg(test)] mod x;` are left out with their subtree."""
    files = {}
    test_dirs = []
    for file in sorted(src.rglob("*.rs")):
        if is_test_path(src, file):
            continue
        text = file.read_text(encoding="utf-8")
        code = blank_non_code(text)
        ranges, declared = test_regions(code)
        files[file] = (text, code, ranges)
        for name in declared:
            base = module_dir(src, file)
            test_dirs += [base / f"{name}.rs", base / name]
    return {
        file: info for file, info in files.items()
        if not any(file == t or t in file.parents for t in test_dirs)
    }
