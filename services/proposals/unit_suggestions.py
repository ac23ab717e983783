"""Routing suggestions (which unit should handle a proposal) and similar
proposals (并案 candidates), from Chinese text.

Text is vectorised by TF-IDF over character 2- and 3-grams within words,
which needs no word segmentation and copes with the short, formulaic titles of
proposals. Pure: callers pass the units and the platform's past assignments.

The vectoriser is scikit-learn's ``TfidfVectorizer(analyzer="char_wb",
ngram_range=(2, 3), sublinear_tf=True)`` written out in plain Python: the
same n-grams, weights and norms (tests/unit/test_unit_suggestions.py holds it
to scikit-learn's results), without the 90 MB that scikit-learn, SciPy and
NumPy add to a proposals process for corpora of a few hundred texts
(docs/performance.md).
"""
import math
import re
from collections import Counter

CO_WEIGHT = 0.4      # a past co-handling counts this much of a lead assignment
TOPIC_WEIGHT = 0.35  # share of the score that comes from the unit's own topics
NEIGHBOURS = 15


def proposal_text(p):
    """The words routing and similarity look at: title twice, then the content."""
    title = p.get("title") or ""
    return " ".join([title, title, p.get("suggestions") or "", p.get("situation") or ""])


_SPACES = re.compile(r"\s\s+")


def char_wb_ngrams(text, low=2, high=3):
    """Character n-grams of each word padded with one space each side, as
    scikit-learn's ``analyzer="char_wb"`` makes them (a word shorter than
    ``n`` counts once, whole, and ends the longer n-grams of that word)."""
    grams = []
    for word in _SPACES.sub(" ", text.lower()).split():
        word = f" {word} "
        for n in range(low, high + 1):
            if len(word) <= n:
                grams.append(word)
                break
            grams.extend([word[i:i + n] for i in range(len(word) - n + 1)])
    return grams


def similarities(query, texts):
    """The cosine similarity of ``query`` to each of ``texts`` under TF-IDF
    fitted on all of them: sublinear term frequency (1 + ln tf) times
    smoothed inverse document frequency (ln((1 + n) / (1 + df)) + 1), each
    vector of unit length, as ``TfidfVectorizer`` weighs them and
    ``linear_kernel`` compares them."""
    counts = [Counter(char_wb_ngrams(t)) for t in texts]
    q = Counter(char_wb_ngrams(query))
    df = Counter(q.keys())
    for c in counts:
        df.update(c.keys())
    n = len(texts) + 1
    idf = {gram: math.log((1 + n) / (1 + d)) + 1 for gram, d in df.items()}

    def weights(c):
        w = dict(zip(c, map(idf.__getitem__, c)))
        for gram, tf in c.most_common():    # the repeated grams come first
            if tf == 1:
                break
            w[gram] *= 1 + math.log(tf)
        return w

    def norm(w):
        return math.hypot(*w.values()) or 1.0

    qw = weights(q)
    qn = norm(qw)
    out = []
    for c in counts:
        w = weights(c)
        shared = qw.keys() & w.keys()
        out.append(math.fsum(qw[g] * w[g] for g in shared) / (qn * norm(w)) if shared
                   else 0.0)
    return out


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
    corpus = [unit_profile(u) for u in units] + [h[0] for h in history]
    sims = similarities(text, corpus)
    scores = [TOPIC_WEIGHT * s for s in sims[:len(units)]]
    if history:
        sims = sims[len(units):]
        nearest = sorted(range(len(history)), key=lambda i: -sims[i])[:NEIGHBOURS]
        total = sum(sims[i] for i in nearest) or 1.0
        votes = [0.0] * len(units)
        for i in nearest:
            _, lead, co = history[i]
            votes[index[lead]] += sims[i]
            for u in co or ():
                if u in index:
                    votes[index[u]] += CO_WEIGHT * sims[i]
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
    sims = similarities(text, [c[1] for c in candidates])
    hits = [(s, c[0]) for s, c in zip(sims, candidates) if s >= threshold]
    hits.sort(key=lambda h: (-h[0], h[1]))
    return [{"proposal_id": pid, "score": round(s, 4)} for s, pid in hits[:top]]
