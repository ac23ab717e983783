"""Routing suggestions (which unit should handle a proposal) and similar
proposals (并案 candidates), from Chinese text.

Text is vectorised with scikit-learn's TF-IDF over character 2- and 3-grams,
which needs no word segmentation and copes with the short, formulaic titles of
proposals. Pure: callers pass the units and the platform's past assignments.

scikit-learn is imported on first use: it is most of a proposals process's
memory (about 80 MB), paid only once the office asks for a suggestion or for
similar proposals (docs/performance.md).
"""

CO_WEIGHT = 0.4      # a past co-handling counts this much of a lead assignment
TOPIC_WEIGHT = 0.35  # share of the score that comes from the unit's own topics
NEIGHBOURS = 15


def proposal_text(p):
    """The words routing and similarity look at: title twice, then the content."""
    title = p.get("title") or ""
    return " ".join([title, title, p.get("suggestions") or "", p.get("situation") or ""])


def _vectoriser():
    from sklearn.feature_extraction.text import TfidfVectorizer
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), sublinear_tf=True)


def linear_kernel(a, b):
    from sklearn.metrics.pairwise import linear_kernel as kernel
    return kernel(a, b)


def unit_profile(unit):
    topics = " ".join(unit.get("topics") or ())
    return " ".join([unit.get("name") or "", topics, topics])


def suggest(text, units, history, top=5):
    """Units ranked for ``text``: ``[{"unit", "name", "score"}]``.

    ``units`` are the active units (dicts with ``id``, ``name``, ``topics``);
    ``history`` is ``[(text, lead_unit, co_units)]`` of past assignments.
    """
    units = [u for u in units if u.get("id")]
    if not units or not text.strip():
        return []
    ids = [u["id"] for u in units]
    index = {uid: i for i, uid in enumerate(ids)}
    history = [h for h in history if h[1] in index]
    corpus = [unit_profile(u) for u in units] + [h[0] for h in history] + [text]
    matrix = _vectoriser().fit_transform(corpus)
    query = matrix[len(corpus) - 1]
    topic_sim = linear_kernel(query, matrix[:len(units)]).ravel()
    scores = [TOPIC_WEIGHT * float(s) for s in topic_sim]
    if history:
        sims = linear_kernel(query, matrix[len(units):len(units) + len(history)]).ravel()
        nearest = sorted(range(len(history)), key=lambda i: -sims[i])[:NEIGHBOURS]
        total = sum(float(sims[i]) for i in nearest) or 1.0
        votes = [0.0] * len(units)
        for i in nearest:
            _, lead, co = history[i]
            votes[index[lead]] += float(sims[i])
            for u in co or ():
                if u in index:
                    votes[index[u]] += CO_WEIGHT * float(sims[i])
        scores = [s + (1 - TOPIC_WEIGHT) * v / total for s, v in zip(scores, votes)]
    ranked = sorted(range(len(units)), key=lambda i: (-scores[i], ids[i]))[:top]
    return [{"unit": ids[i], "name": units[i].get("name"), "score": round(scores[i], 4)}
            for i in ranked if scores[i] > 0]


def routing_advice(ranked, co_ratio=0.5, max_co=3):
    """Lead = the best unit; co-handlers = the next ones scoring at least
    ``co_ratio`` of the lead's score."""
    if not ranked:
        return {"lead_unit": None, "co_units": [], "ranked": []}
    best = ranked[0]["score"]
    co = [r["unit"] for r in ranked[1:] if r["score"] >= co_ratio * best][:max_co]
    return {"lead_unit": ranked[0]["unit"], "co_units": co, "ranked": ranked}


def similar(text, candidates, threshold, top=10):
    """``candidates`` are ``[(id, text)]``; those at least ``threshold``
    cosine-similar to ``text``, best first: ``[{"proposal_id", "score"}]``."""
    candidates = [c for c in candidates if c[1].strip()]
    if not candidates or not text.strip():
        return []
    matrix = _vectoriser().fit_transform([c[1] for c in candidates] + [text])
    sims = linear_kernel(matrix[len(candidates)], matrix[:len(candidates)]).ravel()
    hits = [(float(s), c[0]) for s, c in zip(sims, candidates) if s >= threshold]
    hits.sort(key=lambda h: (-h[0], h[1]))
    return [{"proposal_id": pid, "score": round(s, 4)} for s, pid in hits[:top]]
