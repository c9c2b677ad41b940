"""Build the demo pair's training text from public-domain Project Gutenberg books kept in two
public GitHub repositories (read from local git mirrors; nothing is downloaded here).

    python scripts/build_demo_corpus.py --mirror MIRROR_A --mirror MIRROR_B --out assets/demo/corpus.txt.xz

Each book's Project Gutenberg header and licence footer are cut at the "*** START/END OF" lines
where present; hard-wrapped lines are joined into paragraphs. One book per block, separated by a
blank line and a line "=== <title> ===" so the training script can split held-out text per book.
The sources and their commits are listed in assets/demo/SOURCES.md.
"""

from __future__ import annotations

import argparse
import lzma
import re
import subprocess
from pathlib import Path

# (repository, commit, path, Gutenberg ebook number, title)
BOOKS = [
    ("clocasto/HaikuGenerator", "936af28fdf47e9a50abf52183a04959df01daf17", "pg11.txt", 11,
     "Alice's Adventures in Wonderland"),
    ("clocasto/HaikuGenerator", "936af28fdf47e9a50abf52183a04959df01daf17", "pg16.txt", 16, "Peter Pan"),
    ("clocasto/HaikuGenerator", "936af28fdf47e9a50abf52183a04959df01daf17", "pg236.txt", 236, "The Jungle Book"),
    ("AllenDowney/CompStats", "4882a55bf9573fa7f76fada14d5fbf16169caaaa", "pg2591.txt", 2591,
     "Grimms' Fairy Tales"),
    ("clocasto/HaikuGenerator", "936af28fdf47e9a50abf52183a04959df01daf17", "pg1342.txt", 1342, "Pride and Prejudice"),
    ("clocasto/HaikuGenerator", "936af28fdf47e9a50abf52183a04959df01daf17", "pg1661.txt", 1661,
     "The Adventures of Sherlock Holmes"),
    ("clocasto/HaikuGenerator", "936af28fdf47e9a50abf52183a04959df01daf17", "pg98.txt", 98, "A Tale of Two Cities"),
    ("clocasto/HaikuGenerator", "936af28fdf47e9a50abf52183a04959df01daf17", "pg345.txt", 345, "Dracula"),
    ("clocasto/HaikuGenerator", "936af28fdf47e9a50abf52183a04959df01daf17", "pg2701.txt", 2701, "Moby Dick"),
    ("clocasto/HaikuGenerator", "936af28fdf47e9a50abf52183a04959df01daf17", "pg174.txt", 174,
     "The Picture of Dorian Gray"),
    ("clocasto/HaikuGenerator", "936af28fdf47e9a50abf52183a04959df01daf17", "pg5200.txt", 5200, "Metamorphosis"),
]


BOILERPLATE = re.compile(r"^(End of (the )?Project Gutenberg|Produced by )", flags=re.I)


def read_book(mirrors: list[Path], repo: str, commit: str, path: str) -> str:
    """The file at ``commit`` from the mirror of ``repo`` (a bare or normal git directory)."""
    slug = repo.replace("/", "+")
    for mirror in mirrors:
        if slug in str(mirror):
            raw = subprocess.run(["git", "--git-dir", str(mirror), "show", f"{commit}:{path}"], check=True,
                                 capture_output=True).stdout
            return raw.decode("utf-8-sig", errors="replace")
    raise SystemExit(f"no mirror of {repo} among {mirrors}; fetch it first")


def strip_gutenberg(text: str) -> str:
    text = text.replace("\r\n", "\n")
    start = re.search(r"^\*\*\* ?START OF.*$", text, flags=re.M)
    end = re.search(r"^\*\*\* ?END OF.*$", text, flags=re.M)
    return text[start.end() if start else 0:end.start() if end else len(text)]


def paragraphs(text: str) -> str:
    """Join hard-wrapped lines; keep paragraph breaks; collapse runs of spaces."""
    paras = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text)]
    return "\n".join(p for p in paras if p and not BOILERPLATE.match(p))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mirror", action="append", type=Path, required=True, help="git directory of a source repo")
    parser.add_argument("--out", type=Path, default=Path("assets/demo/corpus.txt.xz"))
    args = parser.parse_args()
    blocks = []
    for repo, commit, path, number, title in BOOKS:
        body = paragraphs(strip_gutenberg(read_book(args.mirror, repo, commit, path)))
        blocks.append(f"=== {title} ===\n{body}")
        print(f"{title:40s} {len(body.split()):>8,} words  (Gutenberg #{number}, {repo}@{commit[:7]}:{path})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(lzma.compress("\n\n".join(blocks).encode(), preset=9))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB compressed)")


if __name__ == "__main__":
    main()
