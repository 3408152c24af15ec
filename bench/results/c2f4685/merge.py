"""Merges each build's results.jsonl into one file, every row labelled with its build, in run order."""
import json, pathlib, sys

src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
rows = []
for build_dir in sorted(p for p in src.iterdir() if p.is_dir()):
    path = build_dir / "results.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            row["build"] = build_dir.name
            rows.append(row)
dst.write_text("".join(json.dumps(r) + "\n" for r in rows))
print(f"{len(rows)} rows -> {dst}")
