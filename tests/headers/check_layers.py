"""Checks the layering rule of include/reclite: a header includes only its own layer and lower ones,
with full paths ("reclite/ops/dot.hpp", never "../"). Exits non-zero naming each violation."""
import pathlib
import re
import sys

LAYERS = ["core", "ops", "format", "models", "index", "pipeline"]
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]')


def main(root):
    root = pathlib.Path(root)
    problems = []
    for header in sorted(root.rglob("*.hpp")) + sorted(root.rglob("*.h")):
        relative = header.relative_to(root).as_posix()
        parts = relative.split("/")
        layer = parts[1] if len(parts) > 2 else None  # reclite/<layer>/x.hpp; reclite.hpp has none
        for number, line in enumerate(header.read_text().splitlines(), 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            target = match.group(1)
            if ".." in target:
                problems.append(f"{relative}:{number}: relative include {target}")
            if not target.startswith("reclite/"):
                continue
            target_parts = target.split("/")
            if len(target_parts) < 3:
                problems.append(f"{relative}:{number}: only reclite.hpp may include {target}")
                continue
            target_layer = target_parts[1]
            if target_layer not in LAYERS:
                problems.append(f"{relative}:{number}: unknown layer in {target}")
            elif layer is not None and LAYERS.index(target_layer) > LAYERS.index(layer):
                problems.append(f"{relative}:{number}: layer {layer} includes higher layer {target}")
            if "xsimd" in target and relative != "reclite/ops/simd.hpp":
                problems.append(f"{relative}:{number}: only ops/simd.hpp may include xsimd")
        text = header.read_text()
        if "xsimd/" in text and relative != "reclite/ops/simd.hpp":
            problems.append(f"{relative}: names xsimd outside ops/simd.hpp")
        if "hnswlib/" in text and relative != "reclite/index/hnsw_index.hpp":
            problems.append(f"{relative}: includes hnswlib outside index/hnsw_index.hpp")
    for problem in problems:
        print(problem)
    print(f"checked {len(list(root.rglob('*.hpp')))} headers, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
