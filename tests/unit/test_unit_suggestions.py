"""The routing suggestions' TF-IDF (services/proposals/unit_suggestions.py)
held to scikit-learn's ``TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3),
sublinear_tf=True)`` and ``linear_kernel``, which it writes out in plain Python
to keep scikit-learn out of the proposals process."""
from datetime import date

import pytest
from hypothesis import given, settings, strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

from deploy.demo_data import proposals as demo
from services.proposals import unit_suggestions as us


def reference(query, texts):
    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3),
                             sublinear_tf=True).fit_transform(texts + [query])
    return [float(x) for x in linear_kernel(matrix[len(texts)], matrix[:len(texts)]).ravel()]


def demo_texts(n=120):
    members = [f"m{i:03d}" for i in range(50)]
    records = demo.year_of_proposals(members, year=2025, until=date(2025, 12, 31),
                                     session_days=(date(2025, 1, 6), date(2025, 1, 9)),
                                     n=n, seed=3)
    return [us.proposal_text(r["proposal"]) for r in records]


ODD = ["", " ", "a", "ab", "abc", "A  B\tc", "交通", "关于 加强 农村 道路 建设的建议",
       "Wi-Fi 覆盖 5G", "重复重复重复重复", "x" * 40, "  前后空格  "]


@pytest.mark.parametrize("text", ODD + demo_texts(5))
def test_the_same_ngrams_as_char_wb(text):
    analyse = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)).build_analyzer()
    assert us.char_wb_ngrams(text) == analyse(text)


def test_the_same_similarities_on_a_year_of_proposals():
    texts = demo_texts()
    for query in texts[:10] + ["关于加强农村学校教师队伍建设的建议", "交通"]:
        assert us.similarities(query, texts) == pytest.approx(reference(query, texts), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="农村道路交通学校教师 医疗aB", max_size=30),
       st.lists(st.text(alphabet="农村道路交通学校教师 医疗aB", max_size=30), min_size=1,
                max_size=8))
def test_the_same_similarities_on_any_texts(query, texts):
    if not any(t.split() for t in texts + [query]):
        return   # scikit-learn refuses a vocabulary of nothing; the service never asks
    assert us.similarities(query, texts) == pytest.approx(reference(query, texts), abs=1e-9)
