"""Hypothesis strategies for the fuzz tests: any JSON, and platform-shaped bodies with any values.

``maybe(s)`` is "the right kind of value, or anything at all": bodies keep the platform's shape
often enough to reach deep into each parser, while every field may still be of the wrong type.
"""

from __future__ import annotations

from hypothesis import strategies as st

text = st.text(max_size=120)
json_leaf = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
             | text)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return strategy | json_value


def optional_fields(**fields: st.SearchStrategy) -> st.SearchStrategy:
    """A JSON object with any subset of ``fields``, each of its type or of any type."""
    return st.fixed_dictionaries({}, optional={name: maybe(s) for name, s in fields.items()})


TS = st.sampled_from(["1700000000.000100", "1700000001.000200"]) | st.text(max_size=20)
ID = st.sampled_from(["U0CUSTOMER1", "U0REP1", "U0BOT"]) | st.text(max_size=12)
MESSAGE_TEXT = st.text(max_size=300) | st.sampled_from(["How do I reset my password?", "<@U0BOT> refund?"])

