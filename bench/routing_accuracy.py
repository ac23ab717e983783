"""How often the routing suggestion names the unit that really led.

Generates several years of a county's proposals (deploy/demo_data/proposals.py),
learns from the older 80% of assignments and asks for the newer 20%, as the
service does (unit topics + nearest past assignments). Prints top-1 and top-3
hit rates of the lead unit, and the time per suggestion.

    .venv/bin/python bench/routing_accuracy.py [--years 3] [--per-year 400]
"""
import argparse
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import services  # noqa: E402,F401  (quiets eventlet's notice)
from deploy.demo_data import proposals as demo  # noqa: E402
from services.proposals import unit_suggestions as routing  # noqa: E402


def history(years, per_year, seed):
    rows = []
    members = [f"m{i:03d}" for i in range(200)]
    for k, year in enumerate(range(2020, 2020 + years)):
        records = demo.year_of_proposals(members, year=year, until=date(year, 12, 31),
                                         session_days=(date(year, 1, 6), date(year, 1, 9)),
                                         n=per_year, seed=seed + k)
        for r in records:
            assign = [a for a in r["actions"] if a["action"] in ("assign", "reassign")]
            if assign:
                data = assign[-1]["data"]
                rows.append((assign[-1]["on"], routing.proposal_text(r["proposal"]),
                             data["lead_unit"], data.get("co_units") or []))
    rows.sort(key=lambda row: row[0])
    return [row[1:] for row in rows]


def sklearn_time(test, units, past):
    """The same similarities by scikit-learn (a test dependency; the service
    uses the plain-Python equivalent), per suggestion."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.metrics.pairwise import linear_kernel
    except ImportError:
        return "not installed:"
    corpus = [routing.unit_profile(u) for u in units] + [row[0] for row in past]
    started = time.perf_counter()
    for text, _, _ in test:
        matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3),
                                 sublinear_tf=True).fit_transform(corpus + [text])
        linear_kernel(matrix[len(corpus)], matrix[:len(corpus)])
    return f"{(time.perf_counter() - started) / len(test) * 1000:.1f} ms"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--per-year", type=int, default=400)
    parser.add_argument("--held-out", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rows = history(args.years, args.per_year, args.seed)
    cut = int(len(rows) * (1 - args.held_out))
    past, test = rows[:cut], rows[cut:]
    units = [dict(u) for u in demo.units()]
    top1 = top3 = 0
    started = time.perf_counter()
    for text, lead, _ in test:
        ranked = [r["unit"] for r in routing.suggest(text, units, past, top=3)]
        top1 += bool(ranked) and ranked[0] == lead
        top3 += lead in ranked
    elapsed = time.perf_counter() - started
    random_top1 = 1 / len(units)
    print(f"assignments: {len(rows)} ({len(past)} learned from, {len(test)} held out); "
          f"units: {len(units)}")
    print(f"top-1 hit rate: {top1 / len(test):.1%}   top-3 hit rate: {top3 / len(test):.1%}   "
          f"(random top-1: {random_top1:.1%})")
    print(f"time per suggestion: {elapsed / len(test) * 1000:.1f} ms "
          f"({sklearn_time(test, units, past)} with scikit-learn's TF-IDF in the same run)")
    topics_only = sum(
        1 for text, lead, _ in test
        if (routing.suggest(text, units, [], top=1) or [{"unit": None}])[0]["unit"] == lead)
    print(f"top-1 from unit topics alone (no history): {topics_only / len(test):.1%}")


if __name__ == "__main__":
    main()
