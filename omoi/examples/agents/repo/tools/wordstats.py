"""Word statistics of a text file."""

import sys


def main(cmd: str, path: str) -> None:
    lines = open(path, encoding="utf-8").read().splitlines()
    words = [w for line in lines for w in line.split()]
    if cmd == "count":
        for i, line in enumerate(lines, 1):
            print(f"line {i}: {len(line.split())} words")
    elif cmd == "longest":
        print("longest:", max(words, key=len))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
