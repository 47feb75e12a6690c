#!/usr/bin/env python3
"""The Rust version the project declares must build it: Cargo.toml's rust-version, the
Dockerfile's builder image and the README agree, and no crate in Cargo.lock needs a newer
compiler (cargo refuses to build such a crate, so the image build would fail while CI,
on a newer toolchain, stays green)."""
import json
import re
import subprocess
import sys
from pathlib import Path


def parse(version: str) -> tuple:
    return tuple(int(part) for part in version.split("."))


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--locked", "--format-version", "1"],
            cwd=root, check=True, capture_output=True, text=True,
        ).stdout
    )
    ours = next(p for p in metadata["packages"] if p["name"] == "teams-voice-exporter")
    declared = ours["rust_version"]
    problems = []

    dockerfile = (root / "Dockerfile").read_text()
    image = re.search(r"^ARG RUST_VERSION=(\S+)$", dockerfile, re.M)
    if not image or parse(image.group(1))[:2] != parse(declared)[:2]:
        problems.append(
            f"Dockerfile builds with Rust {image.group(1) if image else '?'} but Cargo.toml "
            f"declares rust-version {declared}: make them the same"
        )
    if f"Rust toolchain ({declared} or newer)" not in (root / "README.md").read_text():
        problems.append(f"README.md should say 'Rust toolchain ({declared} or newer)'")

    for package in metadata["packages"]:
        needed = package.get("rust_version")
        if needed and parse(needed)[:2] > parse(declared)[:2]:
            problems.append(
                f"{package['name']} {package['version']} needs Rust {needed}, newer than "
                f"the declared {declared}: raise rust-version (Cargo.toml, Dockerfile, "
                "README) or pin an older version of the crate"
            )

    for problem in problems:
        print(f"rust version: {problem}", file=sys.stderr)
    if not problems:
        print(f"rust version: {declared} declared; Dockerfile, README and all "
              f"{len(metadata['packages'])} locked packages agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
