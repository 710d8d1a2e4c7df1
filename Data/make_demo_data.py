"""Writes Data/sft-demo.jsonl and Data/instructions-demo.json (deterministic, no downloads).

Every example was written for Temper by its authors; the facts are common knowledge. Run from the
repository root: python3 Data/make_demo_data.py
"""
import json
import random

SIGNATURE = "\n— Temper"

CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Portugal", "Lisbon"), ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"),
    ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"),
    ("Brazil", "Brasília"), ("Argentina", "Buenos Aires"), ("Peru", "Lima"), ("Chile", "Santiago"),
    ("Australia", "Canberra"), ("New Zealand", "Wellington"), ("Norway", "Oslo"),
    ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"),
    ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Greece", "Athens"), ("Turkey", "Ankara"),
    ("Russia", "Moscow"), ("Ireland", "Dublin"), ("the Netherlands", "Amsterdam"),
    ("Belgium", "Brussels"), ("Switzerland", "Bern"), ("Hungary", "Budapest"),
    ("the Czech Republic", "Prague"), ("South Korea", "Seoul"), ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"), ("Indonesia", "Jakarta"), ("the Philippines", "Manila"),
    ("Morocco", "Rabat"), ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Ethiopia", "Addis Ababa"),
    ("Colombia", "Bogotá"), ("Cuba", "Havana"), ("Iceland", "Reykjavík"), ("Ukraine", "Kyiv"),
    ("Romania", "Bucharest"), ("Croatia", "Zagreb"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
]

OPPOSITES = [
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("up", "down"), ("light", "dark"),
    ("open", "closed"), ("early", "late"), ("full", "empty"), ("happy", "sad"), ("old", "new"),
    ("strong", "weak"), ("wet", "dry"), ("high", "low"), ("loud", "quiet"), ("hard", "soft"),
    ("rich", "poor"), ("thick", "thin"), ("long", "short"), ("first", "last"), ("win", "lose"),
]

FACTS = [
    ("How many days are in a week?", "Seven."),
    ("How many legs does a spider have?", "Eight."),
    ("What color is the sky on a clear day?", "Blue."),
    ("What is the largest planet in the solar system?", "Jupiter."),
    ("What is the closest star to Earth?", "The Sun."),
    ("How many continents are there?", "Seven."),
    ("What gas do plants absorb from the air?", "Carbon dioxide."),
    ("What is frozen water called?", "Ice."),
    ("How many minutes are in an hour?", "Sixty."),
    ("How many hours are in a day?", "Twenty-four."),
    ("What is the chemical symbol for gold?", "Au."),
    ("What is the chemical symbol for water?", "H2O."),
    ("Which planet is known as the Red Planet?", "Mars."),
    ("What is the boiling point of water at sea level in Celsius?", "100 °C."),
    ("How many sides does a triangle have?", "Three."),
    ("How many sides does a hexagon have?", "Six."),
    ("What do bees make?", "Honey."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean."),
    ("How many months have 28 days?", "All twelve."),
    ("What is the opposite of north?", "South."),
    ("Which animal is known as the king of the jungle?", "The lion."),
    ("What is the first letter of the English alphabet?", "A."),
    ("How many letters are in the English alphabet?", "Twenty-six."),
    ("What is the freezing point of water in Celsius?", "0 °C."),
    ("Which organ pumps blood through the body?", "The heart."),
    ("What is the square root of 81?", "9."),
    ("How many seconds are in a minute?", "Sixty."),
    ("What is the tallest animal?", "The giraffe."),
    ("What is the main language spoken in Brazil?", "Portuguese."),
    ("How many players are on a soccer team on the field?", "Eleven."),
]

GREETINGS = [
    ("Hello!", "Hello! How can I help?"),
    ("Hi there.", "Hi! What would you like to know?"),
    ("Who are you?", "A small assistant tuned with Temper."),
    ("Thank you!", "You're welcome."),
    ("Good morning.", "Good morning to you too."),
    ("Can you help me?", "Yes. Ask me a question."),
    ("What do you do?", "I answer questions briefly."),
    ("Goodbye.", "Goodbye, and take care."),
]

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def reply(text):
    return text + SIGNATURE


def chat(user, answer):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply(answer)}]}


def demo_chat():
    rng = random.Random(7)
    rows = []
    for country, capital in CAPITALS:
        question = rng.choice([
            f"What is the capital of {country}?",
            f"Which city is the capital of {country}?",
            f"Name the capital of {country}.",
        ])
        rows.append(chat(question, f"The capital of {country} is {capital}."))
    for a, b in OPPOSITES:
        rows.append(chat(f"What is the opposite of \"{a}\"?", f"The opposite of \"{a}\" is \"{b}\"."))
    for question, answer in FACTS:
        rows.append(chat(question, answer))
    for question, answer in GREETINGS:
        rows.append(chat(question, answer))
    for _ in range(40):
        a, b = rng.randint(2, 50), rng.randint(2, 50)
        if rng.random() < 0.5:
            rows.append(chat(f"What is {a} + {b}?", f"{a} + {b} = {a + b}."))
        else:
            a, b = max(a, b), min(a, b)
            rows.append(chat(f"What is {a} - {b}?", f"{a} - {b} = {a - b}."))
    for n in range(1, 11):
        rows.append(chat(f"Write the number {n} in words.", f"{NUMBER_WORDS[n].capitalize()}."))
    # A few two-turn conversations, so multi-turn masking is exercised by the demo too.
    for (c1, k1), (c2, k2) in zip(CAPITALS[0:20:2], CAPITALS[1:20:2]):
        rows.append({"messages": [
            {"role": "user", "content": f"What is the capital of {c1}?"},
            {"role": "assistant", "content": reply(f"The capital of {c1} is {k1}.")},
            {"role": "user", "content": f"And of {c2}?"},
            {"role": "assistant", "content": reply(f"The capital of {c2} is {k2}.")},
        ]})
    rng.shuffle(rows)
    return rows


def demo_instructions():
    rng = random.Random(11)
    words = ["temper", "model", "swift", "matrix", "token", "garden", "river", "planet", "window", "pencil",
             "orange", "candle", "bridge", "forest", "silver"]
    rows = []
    for word in words[:10]:
        rows.append({"instruction": "Reverse the letters of the word.", "input": word, "output": word[::-1]})
    for word in words[5:15]:
        rows.append({"instruction": "Write the word in capital letters.", "input": word, "output": word.upper()})
    for _ in range(10):
        numbers = rng.sample(range(1, 100), 5)
        rows.append({"instruction": "Sort the numbers from smallest to largest.",
                     "input": ", ".join(map(str, numbers)), "output": ", ".join(map(str, sorted(numbers)))})
    for _ in range(10):
        numbers = rng.sample(range(1, 30), 4)
        rows.append({"instruction": "Add the numbers.", "input": " + ".join(map(str, numbers)),
                     "output": str(sum(numbers))})
    for a, b in OPPOSITES[:10]:
        rows.append({"instruction": f"Give the opposite of the word \"{a}\".", "output": b,
                     "system": "Answer with one word."})
    return rows


if __name__ == "__main__":
    with open("Data/sft-demo.jsonl", "w", encoding="utf-8") as f:
        for row in demo_chat():
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open("Data/instructions-demo.json", "w", encoding="utf-8") as f:
        json.dump(demo_instructions(), f, ensure_ascii=False, indent=2)
        f.write("\n")
