"""PromQL written inside a message: where an expression starts (a PromQL function call or a
metric with a label selector or a range), and where it ends (its brackets balanced, then no
operator, ``by``/``without`` clause or ``offset`` continuing it)."""

from __future__ import annotations

import re

FUNCTIONS = (
    "abs|absent|absent_over_time|avg|avg_over_time|bottomk|ceil|changes|clamp|clamp_max|"
    "clamp_min|count|count_over_time|count_values|delta|deriv|exp|floor|group|"
    "histogram_quantile|holt_winters|idelta|increase|irate|label_join|label_replace|ln|log2|"
    "log10|max|max_over_time|min|min_over_time|predict_linear|quantile|quantile_over_time|"
    "rate|resets|round|scalar|sort|sort_desc|sqrt|stddev|stddev_over_time|sum|sum_over_time|"
    "time|timestamp|topk|vector"
)
AGGREGATIONS = "avg|bottomk|count|count_values|group|max|min|quantile|stddev|stdvar|sum|topk"
MATCHERS = r'\{\s*(?:[a-zA-Z_]\w*\s*(?:=~|!~|!=|=)\s*"[^"]*"\s*,?\s*)*\}'
START = re.compile(
    rf"\b(?:(?:{FUNCTIONS})\s*\(|(?:{AGGREGATIONS})\s+(?:by|without)\s*\("
    rf"|[a-zA-Z_:][\w:]*\s*{MATCHERS}|[a-zA-Z_:][\w:]*\[\d+[smhdwy]\])"
)
CONTINUES = re.compile(
    r"\s*(?:[-+*/%^]|==|!=|>=|<=|>|<|\b(?:by|without|on|ignoring|group_left|group_right|"
    r"and|or|unless|offset|bool)\b)"
)
PAIRS = {"(": ")", "{": "}", "[": "]"}


def _balanced_end(text: str, start: int) -> int | None:
    """The end of the bracketed term starting at ``start`` (None when never closed)."""
    stack: list[str] = []
    i = start
    while i < len(text):
        ch = text[i]
        if ch in ('"', "'"):
            close = text.find(ch, i + 1)
            if close < 0:
                return None
            i = close
        elif ch in PAIRS:
            stack.append(PAIRS[ch])
        elif ch in PAIRS.values():
            if not stack or stack.pop() != ch:
                return None
            if not stack and (i + 1 >= len(text) or text[i + 1] not in "([{"):
                return i + 1
        elif not stack and not (ch.isalnum() or ch in "_:"):
            return i
        i += 1
    return None if stack else len(text)


def extract_promql(text: str) -> str | None:
    """The PromQL expression in ``text``, or None when it holds none."""
    found = START.search(text)
    if found is None:
        return None
    end = found.start()
    while True:
        term_end = _balanced_end(text, end)
        if term_end is None:
            return None
        end = term_end
        after = end
        while after < len(text) and text[after] == " ":
            after += 1
        if after < len(text) and text[after] == "(":  # `sum by (job) (…)`: the grouped term
            end = after
            continue
        more = CONTINUES.match(text, end)
        if more is None:
            break
        nxt = more.end()
        while nxt < len(text) and text[nxt] == " ":
            nxt += 1
        if nxt >= len(text):
            break
        end = nxt
    expression = text[found.start() : end].strip()
    return expression or None
