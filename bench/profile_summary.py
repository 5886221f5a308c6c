"""Summarise py-spy raw (collapsed-stack) profiles: where the samples went.

    .venv/bin/python bench/profile_summary.py PROFILE.txt [--top 25] [--match WORD ...]

Prints the share of samples by thread, the functions with the most self time, and the
inclusive share of every frame whose text contains one of the --match words.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append((stack.split(";"), int(count)))
    return stacks


def short(frame: str) -> str:
    """'func (path/to/module.py:12)' -> 'func (module.py)'."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if file else name


def summary(path: Path, top: int = 25, match: list[str] | None = None) -> str:
    """The text `main` prints for one profile."""
    stacks = load(path)
    total = sum(c for _, c in stacks) or 1
    threads: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        threads[frames[0]] += count
        own[short(frames[-1])] += count
        for frame in {short(f) for f in frames[1:]}:
            inclusive[frame] += count
    lines = [f"{path}: {total} samples", "", "by thread:"]
    for name, count in threads.most_common(8):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines += ["", f"self time, top {top}:"]
    for name, count in own.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    if match:
        lines += ["", "inclusive time of matching frames:"]
        hits = [(n, c) for n, c in inclusive.items() if any(m in n for m in match)]
        for name, count in sorted(hits, key=lambda h: -h[1])[: top * 2]:
            lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", nargs="*", default=[])
    args = parser.parse_args()
    print(summary(args.profile, args.top, args.match))


if __name__ == "__main__":
    main()
