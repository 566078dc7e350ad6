# Reference values for test/eval/f1-em.test.ts: the normalize_answer / f1_score /
# exact_match_score functions of the official SQuAD v1.1 evaluate script
# (evaluate-v1.1.py, rajpurkar.github.io/SQuAD-explorer), reproduced verbatim.
import re, string
from collections import Counter
def normalize_answer(s):
    def remove_articles(text): return re.sub(r'\b(a|an|the)\b', ' ', text)
    def white_space_fix(text): return ' '.join(text.split())
    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)
    def lower(text): return text.lower()
    return white_space_fix(remove_articles(remove_punc(lower(s))))
def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0: return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)
def em(p, g): return normalize_answer(p) == normalize_answer(g)
def mx(fn, p, gs): return max(fn(p, g) for g in gs)
cases = [
  ("The Eiffel Tower!", ["the eiffel tower"]),
  ("in the year 1889", ["1889", "year 1889"]),
  ("Denver Broncos", ["Denver Broncos", "The Denver Broncos", "Broncos"]),
  ("the Broncos of Denver, Colorado", ["Denver Broncos"]),
  ("An apple a day keeps the doctor away", ["apple day keeps doctor away"]),
  ("theory of an anthem", ["the theory anthem"]),
  ("Santa Clara, California (Levi's Stadium)", ["Levi's Stadium", "Levi's Stadium in the San Francisco Bay Area at Santa Clara, California."]),
  ("cat cat cat dog", ["cat dog dog"]),
]
for p, gs in cases:
    print(repr(p), repr(normalize_answer(p)), mx(em, p, gs), repr(mx(f1_score, p, gs)))
