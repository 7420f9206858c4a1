"""A synthetic interaction log with the structure real recommendation logs have, for the demo.

Real logs are not random: users have a few interests, popularity is heavy-tailed, people binge within a
category and follow series (episode 1, then episode 2), and who you are (age, gender, city) says something
about what you like. A model trained on uniform noise learns nothing, and a demo on it would show nothing, so
the generator plants each of these effects, with strengths chosen so that a small two-tower model clearly
beats the popularity baseline (docs/demo.md):

  items      ITEMS items (rows 1..ITEMS; row 0 is the padding row of the item table) in CATEGORIES categories
             of uneven size; within a category popularity is Zipf-like (weight 1 / rank^ZIPF_EXPONENT).
             Each item has one "successor" (the next episode, the matching accessory), usually in its own
             category, sometimes in a related one.
  users      age bucket, gender and city; each group has a taste over categories, and a user's 1-3 latent
             interests (weighted) are drawn from the mixture of the tastes of the groups they belong to.
  sequences  20-60 distinct items, oldest first. The next item is the previous item's successor, or another
             item of the previous item's category, or an item of one of the user's interests, or (rarely)
             anything popular.

Everything is drawn from one numpy Generator, so a seed fixes the log exactly.
"""

from dataclasses import dataclass
from typing import List

import numpy as np

ITEMS = 3000
CATEGORIES = 30
USERS = 2000
AGE_BUCKETS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("female", "male", "unspecified")
CITIES = 20
MIN_LENGTH, MAX_LENGTH = 20, 60

ZIPF_EXPONENT = 1.0
SUCCESSOR_IN_SAME_CATEGORY = 0.8
# How the next item is chosen (the rest: one of the user's interests, drawn by interest weight).
P_SUCCESSOR = 0.30
P_SAME_CATEGORY = 0.30
P_EXPLORE = 0.05

CATEGORY_NAMES = (
    "jazz", "techno", "hip-hop", "classical", "metal", "folk", "k-pop", "podcasts-news", "podcasts-true-crime",
    "audiobooks-sci-fi", "audiobooks-romance", "cooking", "fitness", "yoga", "gaming", "esports", "anime",
    "documentary", "stand-up", "kids", "gardening", "diy", "travel", "finance", "tech-reviews", "fashion",
    "football", "cycling", "meditation", "world-history",
)
assert len(CATEGORY_NAMES) == CATEGORIES


@dataclass
class InteractionLog:
    """The generated world and log. Arrays indexed by item row have ITEMS + 1 entries (row 0 = padding)."""

    item_category: np.ndarray    # int64 [ITEMS + 1]; -1 for the padding row
    item_popularity: np.ndarray  # float64 [ITEMS + 1]; the Zipf weight within its category (0 for padding)
    successor: np.ndarray        # int64 [ITEMS + 1]; the item that tends to follow (0 for padding)
    age: np.ndarray              # int64 [USERS], index into AGE_BUCKETS
    gender: np.ndarray           # int64 [USERS], index into GENDERS
    city: np.ndarray             # int64 [USERS], 0..CITIES-1
    interests: List[np.ndarray]  # per user: category numbers, strongest first
    interest_weights: List[np.ndarray]
    sequences: List[List[int]]   # per user: distinct item rows, oldest first

    @property
    def users(self) -> int:
        return len(self.sequences)

    def category_name(self, row: int) -> str:
        return CATEGORY_NAMES[int(self.item_category[row])]


class _CategorySampler:
    """Draws items of one category by Zipf weight, by inverse CDF (rng.choice with p= is O(n) per call)."""

    def __init__(self, rows: np.ndarray, weights: np.ndarray):
        self.rows = rows
        self.cumulative = np.cumsum(weights) / weights.sum()

    def draw(self, rng: np.random.Generator) -> int:
        at = int(np.searchsorted(self.cumulative, rng.random(), side="right"))
        return int(self.rows[min(at, len(self.rows) - 1)])


def _taste(rng: np.random.Generator, concentration: float) -> np.ndarray:
    """A peaked distribution over categories: a group likes a handful of them."""
    return rng.dirichlet(np.full(CATEGORIES, concentration))


def generate(seed: int = 2024, users: int = USERS) -> InteractionLog:
    rng = np.random.default_rng(seed)

    # Items: uneven category sizes (log-normal shares), every category at least 20 items.
    shares = np.exp(rng.normal(0.0, 0.5, size=CATEGORIES))
    sizes = np.maximum(20, np.floor(shares / shares.sum() * ITEMS)).astype(np.int64)
    while sizes.sum() > ITEMS:
        sizes[np.argmax(sizes)] -= 1
    while sizes.sum() < ITEMS:
        sizes[np.argmin(sizes)] += 1
    category = np.concatenate([[-1], rng.permutation(np.repeat(np.arange(CATEGORIES), sizes))]).astype(np.int64)
    popularity = np.zeros(ITEMS + 1)
    samplers = []
    for c in range(CATEGORIES):
        rows = np.flatnonzero(category == c)
        rank = rng.permutation(len(rows)) + 1  # which item is the hit of its category is random
        weights = 1.0 / rank.astype(np.float64) ** ZIPF_EXPONENT
        popularity[rows] = weights
        samplers.append(_CategorySampler(rows, weights))
    # Global popularity: category share times within-category weight, for exploration draws.
    global_weights = popularity.copy()
    for c in range(CATEGORIES):
        rows = samplers[c].rows
        global_weights[rows] *= sizes[c] / popularity[rows].sum()
    explore = _CategorySampler(np.arange(1, ITEMS + 1), global_weights[1:])

    # Successors: mostly within the category (a series), else in one of two related categories.
    related = np.stack([rng.permutation(CATEGORIES), rng.permutation(CATEGORIES)], axis=1)
    successor = np.zeros(ITEMS + 1, dtype=np.int64)
    for row in range(1, ITEMS + 1):
        c = int(category[row])
        if rng.random() >= SUCCESSOR_IN_SAME_CATEGORY:
            c = int(related[c, rng.integers(0, 2)])
        candidate = samplers[c].draw(rng)
        while candidate == row:
            candidate = samplers[c].draw(rng)
        successor[row] = candidate

    # Users: group tastes make features predictive of interests without determining them.
    age_taste = np.stack([_taste(rng, 0.3) for _ in AGE_BUCKETS])
    gender_taste = np.stack([_taste(rng, 0.5) for _ in GENDERS])
    city_taste = np.stack([_taste(rng, 0.3) for _ in range(CITIES)])
    age = rng.choice(len(AGE_BUCKETS), size=users, p=[0.2, 0.27, 0.2, 0.15, 0.11, 0.07])
    gender = rng.choice(len(GENDERS), size=users, p=[0.47, 0.47, 0.06])
    city = np.minimum(rng.zipf(1.6, size=users) - 1, CITIES - 1)  # a few big cities, many small ones
    interests, interest_weights, sequences = [], [], []
    for user in range(users):
        prior = 0.45 * age_taste[age[user]] + 0.2 * gender_taste[gender[user]] + 0.25 * city_taste[city[user]] \
            + 0.1 / CATEGORIES
        count = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
        chosen = rng.choice(CATEGORIES, size=count, replace=False, p=prior / prior.sum())
        weights = np.sort(rng.dirichlet(np.full(count, 2.0)))[::-1]
        interests.append(chosen.astype(np.int64))
        interest_weights.append(weights)

        length = int(rng.integers(MIN_LENGTH, MAX_LENGTH + 1))
        seen = set()
        sequence: List[int] = []
        while len(sequence) < length:
            draw = rng.random()
            previous = sequence[-1] if sequence else 0
            if previous and draw < P_SUCCESSOR:
                item = int(successor[previous])
            elif previous and draw < P_SUCCESSOR + P_SAME_CATEGORY:
                item = samplers[int(category[previous])].draw(rng)
            elif draw < P_SUCCESSOR + P_SAME_CATEGORY + P_EXPLORE:
                item = explore.draw(rng)
            else:
                item = samplers[int(chosen[rng.choice(count, p=weights)])].draw(rng)
            # A user consumes an item once: the evaluation excludes seen items, so a repeat could never be hit.
            if item in seen:
                continue
            seen.add(item)
            sequence.append(item)
        sequences.append(sequence)

    return InteractionLog(item_category=category, item_popularity=popularity, successor=successor, age=age,
                          gender=gender, city=city, interests=interests, interest_weights=interest_weights,
                          sequences=sequences)


__all__ = ["InteractionLog", "generate", "ITEMS", "CATEGORIES", "USERS", "AGE_BUCKETS", "GENDERS", "CITIES",
           "CATEGORY_NAMES"]
