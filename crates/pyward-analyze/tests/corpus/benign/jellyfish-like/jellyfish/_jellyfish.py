# Inert benign sample: jellyfish-style string distances.
import unicodedata

def levenshtein_distance(s1, s2):
    if s1 == s2:
        return 0
    rows = len(s1) + 1
    cols = len(s2) + 1
    cur = list(range(cols))
    for r in range(1, rows):
        prev, cur = cur, [r] + [0] * (cols - 1)
        for c in range(1, cols):
            cur[c] = min(prev[c] + 1, cur[c - 1] + 1, prev[c - 1] + (s1[r - 1] != s2[c - 1]))
    return cur[-1]

def hamming_distance(s1, s2):
    return sum(a != b for a, b in zip(s1, s2)) + abs(len(s1) - len(s2))

def soundex(s):
    s = unicodedata.normalize('NFKD', s).upper()
    codes = ''.join(chr(c) for c in [66, 70, 80, 86])
    return s[:1] + codes
