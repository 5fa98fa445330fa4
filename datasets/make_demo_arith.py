"""Generate datasets/demo-arith.jsonl: seeded arithmetic word problems with integer answers.

The demo set must be small, cheap, unambiguous to grade and identical on every machine, so
it is generated from a fixed seed by this script rather than copied from somewhere. Every
answer is a whole number by construction (prices, speeds and percentages are chosen so
that divisions come out even). `steps` counts the arithmetic operations a solver needs.
No question is a substring of another, because the simulator finds items by substring.

    python datasets/make_demo_arith.py                 # rewrite datasets/demo-arith.jsonl
    python datasets/make_demo_arith.py --out /tmp/x.jsonl --seed 7 --count 100
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

DEFAULT_SEED = 20261125
DEFAULT_COUNT = 60
DEFAULT_OUT = Path(__file__).resolve().with_name("demo-arith.jsonl")

NAMES = (
    "Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas",
    "Kemi", "Liam", "Maya", "Noor", "Oscar", "Priya", "Quinn", "Rosa", "Sami", "Tara",
    "Umar", "Vera", "Wen", "Yusuf", "Zoe",
)  # fmt: skip
ITEMS = (
    ("notebook", "notebooks"), ("pen", "pens"), ("mug", "mugs"), ("candle", "candles"),
    ("ticket", "tickets"), ("plant", "plants"), ("scarf", "scarves"), ("puzzle", "puzzles"),
    ("lamp", "lamps"), ("towel", "towels"), ("cushion", "cushions"), ("kite", "kites"),
)  # fmt: skip
THINGS = ("marbles", "stickers", "cookies", "stamps", "apples", "pencils", "cards", "shells")
VEHICLES = ("train", "bus", "truck", "ferry", "van", "tram")
RELATIVES = ("aunt", "uncle", "grandmother", "grandfather", "mother", "father")
PLACES = ("warehouse", "library", "depot", "shop", "bakery", "school")
GOODS = {
    "warehouse": "boxes",
    "library": "books",
    "depot": "crates",
    "shop": "hats",
    "bakery": "loaves",
    "school": "chairs",
}
GROUPS = (
    ("A school", "students"),
    ("A choir", "singers"),
    ("A sports club", "members"),
    ("A village", "residents"),
    ("An office", "employees"),
)
CITIES = ("Oslo", "Lyon", "Quito", "Perth", "Cairo", "Osaka", "Lima", "Riga")

Problem = tuple[str, int, int]  # question, answer, steps


def _name(rng: random.Random) -> str:
    return rng.choice(NAMES)


def _n(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def _two_names(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(NAMES, 2)
    return a, b


# --- templates: each returns (question, integer answer, number of operations) -------------


def shop_one(rng: random.Random) -> Problem:
    name = _name(rng)
    _, plural = rng.choice(ITEMS)
    n, price = rng.randint(3, 12), rng.randint(2, 25)
    q = f"{name} buys {n} {plural} that cost ${price} each. How many dollars does {name} pay?"
    return q, n * price, 1


def shop_two(rng: random.Random) -> Problem:
    name = _name(rng)
    (_, p1), (_, p2) = rng.sample(ITEMS, 2)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    c1, c2 = rng.randint(3, 20), rng.randint(2, 15)
    q = (
        f"{name} buys {a} {p1} at ${c1} each and {b} {p2} at ${c2} each. "
        f"How many dollars does {name} spend in total?"
    )
    return q, a * c1 + b * c2, 3


def shop_change(rng: random.Random) -> Problem:
    name = _name(rng)
    (_, p1), (_, p2) = rng.sample(ITEMS, 2)
    a, b = rng.randint(2, 6), rng.randint(2, 6)
    c1, c2 = rng.randint(2, 12), rng.randint(2, 9)
    total = a * c1 + b * c2
    bill = next(x for x in (20, 50, 100, 200) if x > total)
    q = (
        f"{name} buys {a} {p1} for ${c1} each and {b} {p2} for ${c2} each, and pays with "
        f"a ${bill} bill. How many dollars of change does {name} get back?"
    )
    return q, bill - total, 4


def travel_distance(rng: random.Random) -> Problem:
    vehicle = rng.choice(VEHICLES)
    speed, hours = rng.randint(3, 12) * 10, rng.randint(2, 7)
    q = (
        f"A {vehicle} travels at a steady {speed} km/h for {hours} hours. "
        "How many kilometres does it travel?"
    )
    return q, speed * hours, 1


def travel_time(rng: random.Random) -> Problem:
    name = _name(rng)
    speed, hours = rng.randint(8, 25), rng.randint(2, 6)
    q = (
        f"{name} cycles {speed * hours} km at a constant speed of {speed} km/h. "
        "How many hours does the ride take?"
    )
    return q, hours, 1


def travel_two_legs(rng: random.Random) -> Problem:
    vehicle = rng.choice(VEHICLES)
    a, b = rng.sample(CITIES, 2)
    t1, t2 = rng.randint(1, 4), rng.randint(1, 4)
    v1, v2 = rng.randint(4, 11) * 10, rng.randint(4, 11) * 10
    q = (
        f"A {vehicle} leaves {a} and travels for {_n(t1, 'hour', 'hours')} at {v1} km/h, "
        f"then for {_n(t2, 'hour', 'hours')} at {v2} km/h to reach {b}. "
        "How many kilometres is the whole trip?"
    )
    return q, t1 * v1 + t2 * v2, 3


def travel_average(rng: random.Random) -> Problem:
    name = _name(rng)
    hours = rng.randint(2, 5)
    speed = rng.randint(6, 15)
    total = speed * hours
    first = rng.randint(total // 4, 3 * total // 4)
    q = (
        f"{name} runs {first} km in the morning and {total - first} km in the evening, "
        f"spending {hours} hours running in all. What is {name}'s average speed in km/h?"
    )
    return q, speed, 2


def share_equal(rng: random.Random) -> Problem:
    name = _name(rng)
    things = rng.choice(THINGS)
    friends, each = rng.randint(3, 9), rng.randint(4, 15)
    q = (
        f"{name} shares {friends * each} {things} equally among {friends} friends. "
        f"How many {things} does each friend get?"
    )
    return q, each, 1


def share_after_keeping(rng: random.Random) -> Problem:
    name = _name(rng)
    things = rng.choice(THINGS)
    keep, friends, each = rng.randint(2, 12), rng.randint(3, 8), rng.randint(3, 12)
    q = (
        f"{name} has {keep + friends * each} {things}, keeps {keep} for later, and "
        f"splits the rest equally among {friends} classmates. How many {things} does each "
        "classmate receive?"
    )
    return q, each, 2


def ages_future(rng: random.Random) -> Problem:
    name = _name(rng)
    relative = rng.choice(RELATIVES)
    age, factor, years = rng.randint(5, 12), rng.randint(3, 5), rng.randint(2, 9)
    q = (
        f"{name} is {age} years old, and {name}'s {relative} is {factor} times as old. "
        f"How old will the {relative} be in {years} years?"
    )
    return q, age * factor + years, 2


def ages_past(rng: random.Random) -> Problem:
    a, b = _two_names(rng)
    future, years, gap = rng.randint(15, 40), rng.randint(2, 8), rng.randint(1, 9)
    q = (
        f"In {years} years {a} will be {future} years old. "
        f"{b} is {_n(gap, 'year', 'years')} younger than {a}. How old is {b} now?"
    )
    return q, future - years - gap, 2


def ages_sum(rng: random.Random) -> Problem:
    a, b, c = rng.sample(NAMES, 3)
    age, older = rng.randint(6, 20), rng.randint(2, 9)
    q = (
        f"{a} is {age} years old. {b} is {older} years older than {a}, and {c} is twice as "
        f"old as {a}. What is the sum of the three ages?"
    )
    return q, age + (age + older) + 2 * age, 4


def percent_of(rng: random.Random) -> Problem:
    place, people = rng.choice(GROUPS)
    pct = rng.choice((10, 20, 25, 30, 40, 50, 60, 75, 80))
    unit = 100 // _gcd(pct, 100)
    total = unit * rng.randint(2, 30)
    q = (
        f"{place} has {total} {people}, and {pct}% of them wear glasses. "
        f"How many of the {people} wear glasses?"
    )
    return q, total * pct // 100, 1


def percent_discount(rng: random.Random) -> Problem:
    name = _name(rng)
    singular, _ = rng.choice(ITEMS)
    pct = rng.choice((10, 15, 20, 25, 30, 35, 40, 50))
    unit = 100 // _gcd(pct, 100)
    price = unit * rng.randint(2, max(3, 120 // unit))
    q = (
        f"A {singular} costs ${price}. {name} buys it during a sale at {pct}% off. "
        "How many dollars does the sale price come to?"
    )
    return q, price - price * pct // 100, 2


def percent_growth(rng: random.Random) -> Problem:
    city = rng.choice(CITIES)
    pct = rng.choice((5, 10, 12, 15, 20, 25, 30))
    unit = 100 // _gcd(pct, 100)
    start = unit * rng.randint(10, 60)
    q = (
        f"A club in {city} had {start} members last year, and membership grew by {pct}% "
        "this year. How many members does the club have now?"
    )
    return q, start + start * pct // 100, 2


def temperature(rng: random.Random) -> Problem:
    city = rng.choice(CITIES)
    start, rise, fall = rng.randint(-8, 6), rng.randint(2, 9), rng.randint(8, 20)
    q = (
        f"At dawn in {city} the temperature was {start} degrees Celsius. By noon it had "
        f"risen by {rise} degrees, and by midnight it had fallen {fall} degrees from the noon "
        "value. What was the temperature at midnight, in degrees Celsius?"
    )
    return q, start + rise - fall, 2


def bank_balance(rng: random.Random) -> Problem:
    name = _name(rng)
    balance = rng.randint(20, 120)
    rent, food = rng.randint(40, 150), rng.randint(10, 60)
    q = (
        f"{name}'s account holds ${balance}. {name} pays ${rent} for rent and ${food} for "
        "food from it. What is the balance afterwards, in dollars (negative if overdrawn)?"
    )
    return q, balance - rent - food, 2


def baker_boxes(rng: random.Random) -> Problem:
    trays, per_tray = rng.randint(3, 9), rng.choice((6, 8, 10, 12, 24))
    box = rng.choice((4, 6, 8))
    made = trays * per_tray
    boxes = rng.randint(2, made // box - 1)
    sold = made - boxes * box
    q = (
        f"A baker bakes {trays} trays of {per_tray} muffins each, sells {sold} muffins, and "
        f"packs all the rest into boxes of {box}. How many boxes does the baker fill?"
    )
    return q, boxes, 3


def stock_chain(rng: random.Random) -> Problem:
    """Two to four operations on a running stock, ending in an even split."""
    place = rng.choice(PLACES)
    goods = GOODS[place]
    ops = rng.randint(2, 4)
    value = rng.randint(40, 150)
    parts = [f"A {place} starts the week with {value} {goods}."]
    for _ in range(ops - 1):
        kind = rng.choice(("in", "out", "double"))
        if kind == "in":
            x = rng.randint(10, 80)
            value += x
            parts.append(f"Then {x} more {goods} arrive.")
        elif kind == "out" and value > 20:
            x = rng.randint(5, value - 10)
            value -= x
            parts.append(f"Then {x} {goods} are sent away.")
        else:
            value *= 2
            parts.append(f"Then the number of {goods} doubles.")
    divisors = [d for d in range(2, 10) if value % d == 0]
    if divisors:
        d = rng.choice(divisors)
        parts.append(f"Finally all the {goods} are split equally between {d} rooms.")
        parts.append(f"How many {goods} end up in each room?")
        return " ".join(parts), value // d, ops
    parts.append(f"How many {goods} does the {place} have at the end?")
    return " ".join(parts), value, ops - 1


TEMPLATES: tuple[Callable[[random.Random], Problem], ...] = (
    shop_one,
    shop_two,
    shop_change,
    travel_distance,
    travel_time,
    travel_two_legs,
    travel_average,
    share_equal,
    share_after_keeping,
    ages_future,
    ages_past,
    ages_sum,
    percent_of,
    percent_discount,
    percent_growth,
    temperature,
    bank_balance,
    baker_boxes,
    stock_chain,
    stock_chain,
)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def generate(seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT) -> list[dict[str, object]]:
    """The rows, in order; the same seed and count always give the same rows."""
    rng = random.Random(seed)
    schedule = [TEMPLATES[i % len(TEMPLATES)] for i in range(count)]
    rng.shuffle(schedule)
    questions: list[str] = []
    rows: list[dict[str, object]] = []
    for index, template in enumerate(schedule, start=1):
        for _attempt in range(1000):
            question, answer, steps = template(rng)
            if not any(question in q or q in question for q in questions):
                break
        else:
            raise RuntimeError(f"could not make a distinct question with {template.__name__}")
        questions.append(question)
        rows.append(
            {
                "id": f"arith-{index:03d}",
                "question": question,
                "answer": str(answer),
                "steps": steps,
            }
        )
    return rows


def write(rows: list[dict[str, object]], out: Path) -> None:
    """One JSON object per line, UTF-8, "\\n" line ends: byte-identical across platforms."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(text.encode("utf-8"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    rows = generate(args.seed, args.count)
    write(rows, args.out)
    print(f"wrote {len(rows)} problems to {args.out}")


if __name__ == "__main__":
    main()
