"""Writing generated documents, or checking that the committed ones are current."""
import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sync(rendered, argv, description, command):
    """Write ``rendered`` (``{path: text}``); with ``--check`` in ``argv``,
    write nothing and return 1 when a committed file differs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the committed documents differ from the code")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date (run {command}): " + ", ".join(stale))
        return 1
    return 0
