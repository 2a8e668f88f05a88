"""`nslab cache`: what nslab's shared cache holds (kernels, userlands, apt lists) and its size;
`nslab cache clean` empties it, leaving what a running matrix uses."""

from __future__ import annotations

from nslab.matrix import cache


def add_arguments(parser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "clean"), default="list",
                        help="list (default): each entry and its size; clean: remove every entry no run is using")


def run(args) -> int:
    top = cache.root()
    found = cache.entries()
    if args.action == "clean":
        busy = [entry for entry in found if not cache.remove(entry.path)]
        freed = sum(entry.size for entry in found if entry not in busy)
        print(f"nslab cache: removed {len(found) - len(busy)} entries ({cache.human(freed)}) from {top}")
        for entry in busy:
            print(f"  kept {entry.name}: a running nslab uses it")
        return 0
    if not found:
        print(f"nslab cache: {top} is empty")
        return 0
    width = max(len(entry.name) for entry in found)
    print(f"nslab cache: {top}")
    for entry in found:
        print(f"  {entry.name:<{width}}  {cache.human(entry.size):>10}")
    print(f"  {'total':<{width}}  {cache.human(sum(entry.size for entry in found)):>10}")
    return 0
