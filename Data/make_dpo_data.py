"""Writes Data/dpo-demo.jsonl and Data/dpo-demo-eval.jsonl (deterministic, no downloads).

A preference (DPO) demo in TRL's conversational explicit-prompt format, one object per line:
{"prompt": [{"role": "user", ...}], "chosen": [{"role": "assistant", ...}], "rejected": [...]}

The preference is checkable by a program: "chosen" is a concise, correct, direct answer (8-30 words);
"rejected" answers the same question with the same correct sentence, buried in opening pleasantries,
hedging and filler (45-90 words). Every question and answer was written for Temper by its authors;
the facts are common knowledge. Held-out prompts are different questions (different facts, different
numbers), never rephrasings of training questions. Standard library only. Run from the repository
root: python3 Data/make_dpo_data.py
"""
import json
import random
import statistics

SEED = 20240607
EVAL_FRACTION = 0.12
CHOSEN_WORDS = (8, 30)
REJECTED_WORDS = (45, 90)

# (country, capital, where the capital is). Plain ASCII spellings.
CAPITALS = [
    ("France", "Paris", "on the Seine in northern France"),
    ("Germany", "Berlin", "in the northeast of the country"),
    ("Italy", "Rome", "in the central region of Lazio"),
    ("Spain", "Madrid", "near the geographic center of the country"),
    ("Portugal", "Lisbon", "on the Atlantic coast at the mouth of the Tagus"),
    ("Japan", "Tokyo", "on the island of Honshu"),
    ("Egypt", "Cairo", "on the Nile just south of its delta"),
    ("Kenya", "Nairobi", "in the south-central highlands"),
    ("Canada", "Ottawa", "in the province of Ontario"),
    ("Australia", "Canberra", "in the Australian Capital Territory"),
    ("Norway", "Oslo", "at the head of the Oslofjord"),
    ("Sweden", "Stockholm", "on the east coast by the Baltic Sea"),
    ("Finland", "Helsinki", "on the south coast by the Gulf of Finland"),
    ("Poland", "Warsaw", "on the Vistula River"),
    ("Austria", "Vienna", "on the Danube in the east of the country"),
    ("Greece", "Athens", "in the region of Attica"),
    ("Turkey", "Ankara", "in central Anatolia, not Istanbul as many assume"),
    ("Ireland", "Dublin", "on the east coast by the Irish Sea"),
    ("Hungary", "Budapest", "on both banks of the Danube"),
    ("South Korea", "Seoul", "on the Han River in the northwest"),
    ("Thailand", "Bangkok", "on the Chao Phraya River"),
    ("Vietnam", "Hanoi", "on the Red River in the north"),
    ("Morocco", "Rabat", "on the Atlantic coast, not Casablanca"),
    ("Nigeria", "Abuja", "in the center of the country, having replaced Lagos in 1991"),
    ("Ghana", "Accra", "on the Gulf of Guinea coast"),
    ("Ethiopia", "Addis Ababa", "in the central highlands"),
    ("Argentina", "Buenos Aires", "on the Rio de la Plata"),
    ("Peru", "Lima", "on the Pacific coast"),
    ("Chile", "Santiago", "in a valley below the Andes"),
    ("Colombia", "Bogota", "on a high plateau in the Andes"),
    ("Cuba", "Havana", "on the northern coast of the island"),
    ("Iceland", "Reykjavik", "on the southwest coast"),
    ("New Zealand", "Wellington", "at the southern tip of the North Island"),
    ("Brazil", "Brasilia", "on the central plateau, a planned city opened in 1960"),
    ("Mexico", "Mexico City", "in the Valley of Mexico"),
    ("Denmark", "Copenhagen", "on the islands of Zealand and Amager"),
]

GEOGRAPHY = [
    ("What is the longest river in Africa?",
     "The Nile is the longest river in Africa, flowing north for about 6,650 kilometers to the Mediterranean Sea."),
    ("What is the largest desert in the world?",
     "The largest desert overall is the Antarctic polar desert; the Sahara is the largest hot desert."),
    ("What is the highest mountain on Earth?",
     "Mount Everest is the highest mountain above sea level, at about 8,849 meters on the Nepal-China border."),
    ("Which ocean lies between Africa and Australia?",
     "The Indian Ocean lies between Africa to the west and Australia to the east."),
    ("What is the smallest continent by area?",
     "Australia is the smallest continent by land area, at about 7.7 million square kilometers."),
    ("Which country has the largest population?",
     "India has the largest population, having passed China in 2023 with more than 1.4 billion people."),
    ("What is the largest country by area?",
     "Russia is the largest country by area, covering about 17 million square kilometers."),
    ("Which river flows through London?",
     "The River Thames flows through London on its way east to the North Sea."),
    ("Which river runs through Paris?",
     "The Seine runs through Paris before reaching the English Channel at Le Havre."),
    ("What is the largest lake in Africa?",
     "Lake Victoria is the largest lake in Africa by area, shared by Uganda, Kenya and Tanzania."),
    ("Which mountains are traditionally taken as the border between Europe and Asia?",
     "The Ural Mountains in Russia are traditionally taken as the boundary between Europe and Asia."),
    ("On which continent is the Amazon rainforest?",
     "The Amazon rainforest is in South America, with most of it inside Brazil."),
    ("What is the largest island in the world?",
     "Greenland is the largest island in the world, since Australia is counted as a continent instead."),
    ("What is the deepest point in the ocean?",
     "The Challenger Deep in the Mariana Trench is the deepest known point, nearly 11,000 meters below sea level."),
    ("Which sea separates southern Europe from North Africa?",
     "The Mediterranean Sea separates southern Europe from North Africa."),
    ("Which US state is the largest by area?",
     "Alaska is the largest US state by area, more than twice the size of Texas."),
    ("What line divides Earth into the Northern and Southern Hemispheres?",
     "The equator divides Earth into the Northern and Southern Hemispheres, at 0 degrees latitude."),
    ("Where is the Great Barrier Reef?",
     "The Great Barrier Reef lies off the northeast coast of Australia, in the Coral Sea."),
    ("Which country is Mount Kilimanjaro in?",
     "Mount Kilimanjaro is in Tanzania, and it is the highest mountain in Africa."),
    ("Which two countries share the longest international border?",
     "Canada and the United States share the longest international border, about 8,900 kilometers."),
    ("Which canal links the Atlantic and Pacific Oceans?",
     "The Panama Canal links the Atlantic and Pacific Oceans across the Isthmus of Panama."),
    ("Which canal connects the Mediterranean Sea to the Red Sea?",
     "The Suez Canal in Egypt connects the Mediterranean Sea to the Red Sea."),
    ("Where is the Sahara Desert?",
     "The Sahara Desert covers most of northern Africa, stretching from the Atlantic coast to the Red Sea."),
    ("Which European country is shaped like a boot?",
     "Italy is the European country usually described as shaped like a boot."),
    ("Which is the largest ocean?",
     "The Pacific is the largest and deepest ocean, covering about a third of Earth's surface."),
    ("Which countries do the Alps run through?",
     "The Alps run through France, Switzerland, Italy, Monaco, Liechtenstein, Austria, Germany and Slovenia."),
    ("What is the longest river in South America?",
     "The Amazon is the longest river in South America and carries more water than any other river."),
    ("Which river flows through Cairo?",
     "The Nile flows through Cairo before spreading into its delta and reaching the Mediterranean."),
    ("What is the highest waterfall in the world?",
     "Angel Falls in Venezuela is the highest uninterrupted waterfall, dropping about 979 meters."),
    ("Which continent has the most countries?",
     "Africa has the most countries of any continent, with 54 recognized sovereign states."),
]

HISTORY = [
    ("In what year did World War II end?",
     "World War II ended in 1945, with Germany surrendering in May and Japan in September."),
    ("When did World War I begin?",
     "World War I began in 1914 and lasted until the armistice of November 1918."),
    ("In what year did humans first land on the Moon?",
     "Humans first landed on the Moon in 1969, when Apollo 11 touched down on July 20."),
    ("Who was the first person to travel into space?",
     "Yuri Gagarin of the Soviet Union became the first person in space in April 1961."),
    ("When did the Berlin Wall fall?",
     "The Berlin Wall fell on November 9, 1989, and Germany reunified the following year."),
    ("In what year did Christopher Columbus first reach the Americas?",
     "Christopher Columbus first reached the Americas in 1492, landing in the Bahamas in October."),
    ("When was the US Declaration of Independence adopted?",
     "The Declaration of Independence was adopted by the Continental Congress on July 4, 1776."),
    ("When did the French Revolution begin?",
     "The French Revolution began in 1789, marked by the storming of the Bastille on July 14."),
    ("Who was the first President of the United States?",
     "George Washington was the first President of the United States, serving from 1789 to 1797."),
    ("When did the Titanic sink?",
     "The Titanic sank on April 15, 1912, after hitting an iceberg on its first voyage."),
    ("Who developed the movable-type printing press in Europe?",
     "Johannes Gutenberg developed the movable-type printing press in Europe around 1440."),
    ("When did the Soviet Union dissolve?",
     "The Soviet Union dissolved in December 1991, splitting into fifteen independent countries."),
    ("Who proposed the theory of evolution by natural selection?",
     "Charles Darwin set out evolution by natural selection in On the Origin of Species, published in 1859."),
    ("When was the Battle of Hastings?",
     "The Battle of Hastings was fought in 1066, when William of Normandy defeated King Harold."),
    ("Who was the first woman to win a Nobel Prize?",
     "Marie Curie was the first woman to win a Nobel Prize, sharing the 1903 prize in physics."),
    ("When was the Magna Carta sealed?",
     "King John sealed the Magna Carta in 1215 at Runnymede in England."),
    ("Who built the pyramids of Giza?",
     "The ancient Egyptians built the pyramids of Giza, mostly around 4,500 years ago."),
    ("When did the Wright brothers make their first powered flight?",
     "The Wright brothers made the first powered airplane flight on December 17, 1903, near Kitty Hawk."),
    ("Who painted the Mona Lisa?",
     "Leonardo da Vinci painted the Mona Lisa in the early 1500s; it hangs in the Louvre in Paris."),
    ("When did Nelson Mandela become President of South Africa?",
     "Nelson Mandela became President of South Africa in 1994, after the country's first fully democratic election."),
    ("When did the Western Roman Empire fall?",
     "The Western Roman Empire is usually dated as falling in AD 476, when Romulus Augustulus was deposed."),
    ("Who discovered penicillin?",
     "Alexander Fleming discovered penicillin in 1928 when he noticed mold killing bacteria in a dish."),
    ("When was the first iPhone released?",
     "Apple released the first iPhone in the United States in June 2007."),
    ("Who composed the symphony with the famous four-note opening, da-da-da-dum?",
     "Ludwig van Beethoven composed it; that short-short-short-long opening begins his Fifth Symphony."),
    ("Who wrote Romeo and Juliet?",
     "William Shakespeare wrote Romeo and Juliet, a tragedy first performed in the 1590s."),
    ("When did the American Civil War end?",
     "The American Civil War ended in 1865, after Robert E. Lee surrendered at Appomattox in April."),
    ("Who was the first Roman emperor?",
     "Augustus was the first Roman emperor, ruling from 27 BC until his death in AD 14."),
    ("When did India gain independence?",
     "India gained independence from British rule on August 15, 1947."),
    ("When was the United Nations founded?",
     "The United Nations was founded in 1945, when its charter came into force on October 24."),
    ("Who developed the theory of relativity?",
     "Albert Einstein developed special relativity in 1905 and general relativity in 1915."),
    ("Who wrote Pride and Prejudice?",
     "Jane Austen wrote Pride and Prejudice, which was first published in 1813."),
    ("Who developed the first successful polio vaccine?",
     "Jonas Salk developed the first successful polio vaccine, announced as safe and effective in 1955."),
]

SCIENCE = [
    ("What is the chemical symbol for sodium?",
     "The chemical symbol for sodium is Na, from its Latin name natrium."),
    ("What is the chemical formula for table salt?",
     "Table salt is sodium chloride, with the chemical formula NaCl."),
    ("How many bones are in the adult human body?",
     "An adult human body has 206 bones; babies are born with more, and some fuse as they grow."),
    ("What is the speed of light?",
     "Light travels at about 299,792 kilometers per second in a vacuum, roughly 300,000 km per second."),
    ("Which planet is closest to the Sun?",
     "Mercury is the planet closest to the Sun, and it is also the smallest planet."),
    ("What is the hardest natural substance?",
     "Diamond is the hardest natural substance, made of tightly bonded carbon atoms."),
    ("Which gas do our lungs take from the air?",
     "Our lungs take in oxygen, which passes into the blood and fuels the body's cells."),
    ("What is photosynthesis?",
     "Photosynthesis is how plants use sunlight, water and carbon dioxide to make sugar, releasing oxygen."),
    ("Which part of the cell is called its powerhouse?",
     "The mitochondria are called the powerhouse of the cell because they produce most of its energy as ATP."),
    ("What are the three common states of matter?",
     "The three common states of matter are solid, liquid and gas; plasma is often added as a fourth."),
    ("What keeps the planets in orbit around the Sun?",
     "Gravity keeps the planets in orbit, pulling them toward the Sun as they move forward."),
    ("What is the center of an atom called?",
     "The center of an atom is the nucleus, made of protons and neutrons."),
    ("What electric charge does an electron have?",
     "An electron carries a negative electric charge, equal in size to a proton's positive charge."),
    ("How long does Earth take to orbit the Sun?",
     "Earth takes about 365.25 days to orbit the Sun, which is why leap years add an extra day."),
    ("How long does Earth take to spin once on its axis?",
     "Earth spins once about every 24 hours relative to the Sun, which gives us day and night."),
    ("What is the most abundant gas in Earth's atmosphere?",
     "Nitrogen is the most abundant gas in Earth's atmosphere, making up about 78 percent of it."),
    ("What is the pH of pure water?",
     "Pure water has a pH of 7 at 25 degrees Celsius, which is neutral."),
    ("Which organs filter the blood to make urine?",
     "The kidneys filter the blood, removing waste and extra water to make urine."),
    ("What is the largest organ of the human body?",
     "The skin is the largest organ of the human body, covering about two square meters in adults."),
    ("Is a whale a fish or a mammal?",
     "A whale is a mammal: it breathes air, is warm-blooded and feeds its young milk."),
    ("What do you call animals that eat only plants?",
     "Animals that eat only plants are called herbivores, such as cows, rabbits and deer."),
    ("What is the chemical symbol for iron?",
     "The chemical symbol for iron is Fe, from the Latin word ferrum."),
    ("Which planet has the most prominent rings?",
     "Saturn has the most prominent rings, made mostly of ice with some rock and dust."),
    ("What does an element's atomic number tell you?",
     "The atomic number is the number of protons in an atom's nucleus, which identifies the element."),
    ("What causes the seasons on Earth?",
     "Seasons are caused by the tilt of Earth's axis, about 23.5 degrees, as it orbits the Sun."),
    ("What is the unit of electrical resistance?",
     "Electrical resistance is measured in ohms, written with the Greek letter omega."),
    ("What does DNA stand for?",
     "DNA stands for deoxyribonucleic acid, the molecule that carries genetic information."),
    ("How many chambers does the human heart have?",
     "The human heart has four chambers: two atria on top and two ventricles below."),
    ("Why is the sky blue?",
     "The sky looks blue because air scatters the short blue wavelengths of sunlight much more than red ones."),
    ("What is the chemical symbol for potassium?",
     "The chemical symbol for potassium is K, from its Latin name kalium."),
    ("What is the Sun mostly made of?",
     "The Sun is mostly hydrogen, about three quarters of its mass, with most of the rest helium."),
    ("What does Newton's first law of motion say?",
     "An object stays at rest or keeps moving in a straight line at constant speed unless a force acts on it."),
    ("What is the SI unit of force?",
     "The SI unit of force is the newton, the force that accelerates one kilogram by one meter per second squared."),
    ("What do red blood cells carry?",
     "Red blood cells carry oxygen from the lungs to the body, using a protein called hemoglobin."),
    ("How many planets are in the solar system?",
     "There are eight planets in the solar system; Pluto was reclassified as a dwarf planet in 2006."),
    ("What is the chemical symbol for silver?",
     "The chemical symbol for silver is Ag, from the Latin word argentum."),
    ("What is a light-year?",
     "A light-year is a distance: how far light travels in one year, about 9.46 trillion kilometers."),
    ("What is it called when liquid water turns into vapor at its surface?",
     "That process is called evaporation; when it happens throughout the liquid at the boiling point, it is boiling."),
    ("What is the smallest unit of life?",
     "The cell is the smallest unit of life that can carry out all life processes on its own."),
    ("What is the chemical formula for water?",
     "The chemical formula for water is H2O: two hydrogen atoms bonded to one oxygen atom."),
    ("What is the boiling point of water in Fahrenheit?",
     "At sea level, water boils at 212 degrees Fahrenheit, which equals 100 degrees Celsius."),
    ("What is the freezing point of water in Fahrenheit?",
     "Water freezes at 32 degrees Fahrenheit, which is 0 degrees Celsius."),
]

UNITS = [
    ("How many centimeters are in a meter?",
     "One meter equals 100 centimeters, since the prefix centi means one hundredth."),
    ("How many grams are in a kilogram?",
     "A kilogram is 1,000 grams, since the prefix kilo means one thousand."),
    ("How many meters are in a kilometer?",
     "There are 1,000 meters in a kilometer, which is about 0.62 miles."),
    ("How many inches are in a foot?",
     "There are 12 inches in a foot, and 3 feet in a yard."),
    ("How many centimeters are in an inch?",
     "One inch is exactly 2.54 centimeters under the international definition adopted in 1959."),
    ("How many ounces are in a pound?",
     "There are 16 ounces in a pound in the avoirdupois system used for everyday weights."),
    ("How many milliliters are in a liter?",
     "A liter contains 1,000 milliliters, and one milliliter is the same as one cubic centimeter."),
    ("How many kilometers are in a mile?",
     "One mile is about 1.609 kilometers, so 10 miles is roughly 16 kilometers."),
    ("How many pounds are in a kilogram?",
     "One kilogram is about 2.2 pounds, or more precisely 2.2046 pounds."),
    ("How many feet are in a mile?",
     "A mile is 5,280 feet, which is the same as 1,760 yards."),
    ("How do you convert Celsius to Fahrenheit?",
     "Multiply the Celsius temperature by 9/5 and add 32; for example, 20 degrees Celsius is 68 degrees Fahrenheit."),
    ("How many seconds are in an hour?",
     "An hour has 3,600 seconds, because it is 60 minutes of 60 seconds each."),
    ("How many days are in a leap year?",
     "A leap year has 366 days, with the extra day added as February 29."),
    ("How many hours are in a week?",
     "A week has 168 hours, which is 7 days times 24 hours."),
    ("How many grams are in an ounce?",
     "One ounce is about 28.35 grams, so four ounces is roughly 113 grams."),
    ("How many cups are in a US quart?",
     "A US quart holds 4 cups, and 4 quarts make a gallon."),
    ("How many teaspoons are in a tablespoon?",
     "One tablespoon equals 3 teaspoons, which is about 15 milliliters."),
    ("How many liters are in a US gallon?",
     "A US gallon is about 3.785 liters; the imperial gallon is larger, about 4.546 liters."),
    ("What is a hectare?",
     "A hectare is 10,000 square meters, the area of a square 100 meters on each side."),
    ("How many bits are in a byte?",
     "A byte is 8 bits, which together can represent 256 different values."),
    ("How many millimeters are in a centimeter?",
     "There are 10 millimeters in a centimeter, so a millimeter is a tenth of a centimeter."),
    ("How many minutes are in a day?",
     "A day has 1,440 minutes, which is 24 hours times 60 minutes."),
    ("What is absolute zero in Celsius?",
     "Absolute zero is minus 273.15 degrees Celsius, which is 0 kelvin."),
    ("How many square feet are in a square yard?",
     "A square yard is 9 square feet, because it measures 3 feet by 3 feet."),
    ("What is 60 miles per hour in kilometers per hour?",
     "60 miles per hour is about 97 kilometers per hour, since a mile is roughly 1.609 kilometers."),
    ("How many weeks are in a year?",
     "A year has 52 weeks plus one day, or plus two days in a leap year."),
]

MATH = [
    ("What do the angles of a triangle add up to?",
     "The interior angles of a triangle always add up to 180 degrees."),
    ("What is pi to two decimal places?",
     "Pi to two decimal places is 3.14; it is the ratio of a circle's circumference to its diameter."),
    ("What is a prime number?",
     "A prime number is a whole number greater than 1 whose only divisors are 1 and itself, like 2, 3, 5 or 7."),
    ("Is 1 a prime number?",
     "No, 1 is not a prime number, because a prime must have exactly two distinct divisors."),
    ("What is the smallest prime number?",
     "The smallest prime number is 2, which is also the only even prime."),
    ("How do you find the area of a rectangle?",
     "Multiply its length by its width; a rectangle 3 meters by 4 meters has an area of 12 square meters."),
    ("How do you find the area of a circle?",
     "The area of a circle is pi times the radius squared, written A = pi r^2."),
    ("How many sides does an octagon have?",
     "An octagon has eight sides, like the shape of a standard stop sign."),
    ("What is the square root of 144?",
     "The square root of 144 is 12, because 12 times 12 equals 144."),
    ("What is zero factorial?",
     "Zero factorial equals 1 by definition, which keeps counting formulas consistent."),
    ("How many zeros are in one million?",
     "One million is written 1,000,000, so it has six zeros."),
    ("What does the Pythagorean theorem say?",
     "In a right triangle, the square of the hypotenuse equals the sum of the squares of the other two sides."),
    ("What is the denominator of a fraction?",
     "The denominator is the bottom number of a fraction, showing how many equal parts make a whole."),
    ("How many degrees are in a full circle?",
     "A full circle measures 360 degrees, so a half turn is 180 degrees."),
    ("What is an even number?",
     "An even number is an integer divisible by 2 with no remainder, such as 4, 10 or 36."),
    ("What is the sum of the whole numbers from 1 to 10?",
     "The sum of 1 through 10 is 55, which you can get from 10 times 11 divided by 2."),
    ("What is one third written as a decimal?",
     "One third is 0.333..., a decimal in which the digit 3 repeats forever."),
    ("What is the perimeter of a square with 5 cm sides?",
     "Its perimeter is 20 centimeters, because a square has four equal sides of 5 cm."),
    ("How many degrees are in a right angle?",
     "A right angle measures exactly 90 degrees, a quarter of a full turn."),
]

COOKING = [
    ("How long should I boil an egg for a hard yolk?",
     "Boil a large egg for about 10 to 12 minutes for a fully set yolk, then cool it in cold water."),
    ("What internal temperature should cooked chicken reach?",
     "Cook chicken until its thickest part reaches 74 degrees Celsius, or 165 degrees Fahrenheit."),
    ("How do I cook white rice on the stove?",
     "Simmer 1 cup of rinsed rice in about 1.5 to 2 cups of water, covered, for 15 to 18 minutes, then let it rest."),
    ("What does it mean to blanch vegetables?",
     "Blanching means boiling vegetables briefly and then plunging them into ice water to stop the cooking."),
    ("What makes bread rise?",
     "Yeast makes bread rise by eating sugars and releasing carbon dioxide gas, which gets trapped in the dough."),
    ("What is the difference between baking soda and baking powder?",
     "Baking soda is pure sodium bicarbonate and needs an acid; baking powder already contains both the base and an acid."),
    ("How do I stop pasta from sticking together?",
     "Use plenty of boiling water, stir during the first couple of minutes, and drain the pasta promptly."),
    ("What is the main ingredient in guacamole?",
     "The main ingredient in guacamole is ripe avocado, mashed with lime, salt and often onion and chili."),
    ("What does simmer mean in a recipe?",
     "To simmer is to cook a liquid just below boiling, with small bubbles gently rising to the surface."),
    ("How should I store fresh parsley?",
     "Stand the stems in a glass of water in the fridge, loosely covered, and the parsley will keep about a week."),
    ("What is hummus made from?",
     "Hummus is made mainly from chickpeas, blended with tahini, lemon juice, garlic and olive oil."),
    ("Why should meat rest after cooking?",
     "Resting lets the juices settle back through the meat, so less runs out when you cut it."),
    ("What is a roux?",
     "A roux is flour cooked in an equal weight of fat, used to thicken sauces and soups."),
    ("How can I tell if an egg is fresh?",
     "Place it in a bowl of water: a fresh egg sinks and lies flat, while an old egg stands up or floats."),
    ("What does al dente mean?",
     "Al dente means pasta cooked until tender but still slightly firm to the bite; it is Italian for to the tooth."),
    ("What is traditional pesto made from?",
     "Traditional Genovese pesto is made from fresh basil, pine nuts, garlic, Parmesan and olive oil."),
    ("How do I keep cut apples from turning brown?",
     "Toss or brush the cut apples with lemon juice; its acid slows the browning reaction."),
    ("What is the safe way to thaw frozen meat?",
     "Thaw frozen meat in the refrigerator, or in cold water changed every 30 minutes, never on the counter."),
    ("Why do people salt pasta water?",
     "Salting the water seasons the pasta from the inside, since it absorbs water as it cooks."),
    ("What is caramelization?",
     "Caramelization is the browning of sugar under heat, which creates nutty flavors and a golden color."),
    ("What is tofu made from?",
     "Tofu is made from soybeans: soy milk is curdled and the curds are pressed into blocks."),
    ("How do I make a basic vinaigrette?",
     "Whisk about three parts oil with one part vinegar, then season with salt, pepper and a little mustard."),
    ("What does it mean to fold ingredients together?",
     "Folding means gently combining a light mixture, like whipped egg whites, into a heavier one without knocking out the air."),
    ("What kind of rice is used for risotto?",
     "Risotto uses short-grain rice such as Arborio or Carnaroli, which releases starch and turns creamy."),
    ("What is meringue made from?",
     "Meringue is made from egg whites whipped with sugar until stiff and glossy."),
    ("How do I keep a cutting board from slipping?",
     "Put a damp paper towel or a damp cloth under the cutting board to keep it from sliding."),
]

LANGUAGE = [
    ("What is a synonym?",
     "A synonym is a word with the same or nearly the same meaning as another, like big and large."),
    ("What is an antonym?",
     "An antonym is a word with the opposite meaning to another, such as hot and cold."),
    ("What is the plural of mouse?",
     "The plural of mouse is mice, as in three mice ran across the floor."),
    ("What is the plural of child?",
     "The plural of child is children, an irregular form that comes from Old English."),
    ("What is the past tense of go?",
     "The past tense of go is went, as in she went home early."),
    ("What is the past tense of run?",
     "The past tense of run is ran, and the past participle is run."),
    ("What is a noun?",
     "A noun is a word that names a person, place, thing or idea, such as teacher, city or freedom."),
    ("What is a verb?",
     "A verb is a word that expresses an action or a state, such as run, think or be."),
    ("What is an adjective?",
     "An adjective is a word that describes a noun, such as red, tall or happy."),
    ("What does bonjour mean?",
     "Bonjour is French for hello or good day, and it is used as an everyday greeting."),
    ("What is the difference between their, there and they're?",
     "Their shows possession, there refers to a place, and they're is short for they are."),
    ("When should I use an instead of a?",
     "Use an before words that begin with a vowel sound, as in an apple or an hour, and a otherwise."),
    ("What is a haiku?",
     "A haiku is a short Japanese poem of three lines with five, seven and five syllables."),
    ("What is an acronym?",
     "An acronym is a word formed from initial letters and pronounced as a word, like NASA or laser."),
    ("What does gracias mean?",
     "Gracias is the Spanish word for thank you, and muchas gracias means thank you very much."),
    ("What is a palindrome?",
     "A palindrome is a word or phrase that reads the same backward and forward, like level or racecar."),
    ("What is the plural of cactus?",
     "The plural of cactus is cacti, though cactuses is also accepted."),
    ("What is the difference between affect and effect?",
     "Usually affect is a verb meaning to influence, and effect is a noun meaning a result."),
    ("What is a metaphor?",
     "A metaphor describes something by saying it is something else, as in time is a thief."),
    ("What is the past tense of write?",
     "The past tense of write is wrote, and the past participle is written."),
    ("How many vowel letters does English have?",
     "English has five vowel letters, a, e, i, o and u, with y sometimes acting as a vowel."),
    ("What is an idiom?",
     "An idiom is a phrase whose meaning differs from its literal words, like break the ice."),
    ("What does danke mean?",
     "Danke is the German word for thank you, and danke schoen means thank you very much."),
    ("What is a simile?",
     "A simile compares two things using like or as, for example as brave as a lion."),
    ("What does the prefix pre- mean?",
     "The prefix pre- means before, as in preview or prehistoric."),
    ("What is the plural of tooth?",
     "The plural of tooth is teeth, just as the plural of foot is feet."),
    ("What is a preposition?",
     "A preposition shows how a noun relates to other words, often in place or time, like in, on or after."),
    ("What does ciao mean?",
     "Ciao is an informal Italian greeting that means both hello and goodbye."),
    ("What is an oxymoron?",
     "An oxymoron is a phrase that combines contradictory words, such as deafening silence or jumbo shrimp."),
    ("What is a homophone?",
     "A homophone is a word that sounds like another but differs in meaning or spelling, like flour and flower."),
]

DEFINITIONS = [
    ("What is inflation?",
     "Inflation is the general rise in prices over time, which means each unit of money buys less."),
    ("What is a budget?",
     "A budget is a plan for how much money you expect to earn and spend over a period."),
    ("What is democracy?",
     "Democracy is a system of government in which citizens hold power, usually by voting for representatives."),
    ("What is a carbon footprint?",
     "A carbon footprint is the total greenhouse gas emissions caused by a person, product or activity."),
    ("What is compound interest?",
     "Compound interest is interest earned on both the original amount and the interest already added to it."),
    ("What is an algorithm?",
     "An algorithm is a precise, step-by-step procedure for solving a problem or completing a task."),
    ("How does a vaccine work?",
     "A vaccine trains the immune system to recognize a germ, so the body can fight it off quickly later."),
    ("What is a recession?",
     "A recession is a significant, widespread decline in economic activity lasting months, often seen in falling GDP."),
    ("What is renewable energy?",
     "Renewable energy comes from sources that replenish naturally, such as sunlight, wind, flowing water and geothermal heat."),
    ("What is a password manager?",
     "A password manager is an app that securely stores your passwords and can generate strong, unique ones."),
    ("What is a mortgage?",
     "A mortgage is a loan used to buy property, with the property itself serving as security for the loan."),
    ("What is a food calorie?",
     "A food calorie is a unit of energy: the heat needed to warm one kilogram of water by one degree Celsius."),
    ("What is a peninsula?",
     "A peninsula is land surrounded by water on three sides, like Italy or Florida."),
    ("What is an ecosystem?",
     "An ecosystem is a community of living things interacting with each other and with their physical environment."),
    ("What is a thesaurus?",
     "A thesaurus is a reference book that lists words grouped with their synonyms and often antonyms."),
    ("What is a browser cookie?",
     "A browser cookie is a small piece of data a website stores on your device to remember you."),
    ("What is an archipelago?",
     "An archipelago is a group or chain of islands, such as the Philippines or Hawaii."),
    ("What is a spreadsheet?",
     "A spreadsheet is a grid of rows and columns for organizing data and doing calculations automatically."),
    ("What is a river delta?",
     "A delta is a landform at a river's mouth, built from sediment the river drops as it slows down."),
    ("What is a biography?",
     "A biography is an account of a person's life written by someone else."),
    ("What is the stock market?",
     "The stock market is where shares of publicly traded companies are bought and sold."),
    ("What is a volcano?",
     "A volcano is an opening in Earth's crust through which molten rock, ash and gases escape."),
    ("What is a glacier?",
     "A glacier is a large, slow-moving mass of ice formed from snow compacted over many years."),
    ("What is a tariff?",
     "A tariff is a tax that a government charges on imported goods."),
    ("What is an allergy?",
     "An allergy is the immune system overreacting to a normally harmless substance, such as pollen or peanuts."),
    ("What is a metronome?",
     "A metronome is a device that clicks at a steady, adjustable tempo to help musicians keep time."),
    ("What is a fossil?",
     "A fossil is the preserved remains or trace of an ancient living thing, usually found in rock."),
]

HOWTO = [
    ("How do I unclog a sink without chemicals?",
     "Try a plunger first; if that fails, remove and clean the trap under the sink or use a drain snake."),
    ("How do I get a red wine stain out of a shirt?",
     "Blot it quickly, rinse from the back with cold water, then treat it with a stain remover before washing."),
    ("How do I change a flat tire?",
     "Loosen the lug nuts, jack up the car, swap in the spare, tighten the nuts in a star pattern, then lower it."),
    ("How often should I replace my toothbrush?",
     "Replace your toothbrush about every three months, or sooner if the bristles are frayed."),
    ("How do I restart a frozen computer?",
     "Hold the power button for about ten seconds until it shuts off, wait a moment, then press it again."),
    ("How do I make a strong password?",
     "Use a long passphrase of several random words, or at least 12 mixed characters, and never reuse it."),
    ("How can I fall asleep faster?",
     "Keep a regular bedtime, avoid screens and caffeine late, and keep your bedroom cool, dark and quiet."),
    ("How do I jump-start a car?",
     "Connect red to both positive terminals, black to the good battery's negative and to bare metal on the dead car, then start the good car."),
    ("How do I get rid of fruit flies?",
     "Remove ripe fruit and trash, then set a trap of cider vinegar with a drop of dish soap."),
    ("How do I tie a square knot?",
     "Tie right over left and under, then left over right and under, and pull both ends tight."),
    ("How should I treat a minor burn?",
     "Cool the burn under cool running water for about 20 minutes, then cover it loosely with a clean dressing."),
    ("How do I clean a cast iron pan?",
     "Rinse it with hot water and a brush, dry it fully on the stove, then rub in a thin coat of oil."),
    ("How can I save water at home?",
     "Fix leaks, take shorter showers, turn off the tap while brushing, and run only full loads in the dishwasher."),
    ("How do I take a screenshot on Windows?",
     "Press Windows key, Shift and S to capture part of the screen, or Print Screen to copy the whole screen."),
    ("How do I keep houseplants alive?",
     "Give them suitable light, water only when the top of the soil is dry, and use pots with drainage holes."),
    ("How do I iron a shirt?",
     "Iron the collar first, then the cuffs and sleeves, then the back and front, using the right heat for the fabric."),
    ("How do I stop hiccups?",
     "Hold your breath briefly or sip cold water slowly; most hiccups stop on their own within minutes."),
    ("How do I measure flour accurately?",
     "Weigh it on a kitchen scale, or spoon it loosely into the cup and level it off with a knife."),
    ("How do I defrost a freezer?",
     "Unplug it, empty it, let the ice melt with towels underneath, then dry it before switching it back on."),
    ("How do I back up my phone?",
     "Turn on the built-in cloud backup in settings, iCloud on an iPhone or Google backup on Android, and connect to Wi-Fi."),
    ("How do I sharpen a kitchen knife?",
     "Draw the blade across a whetstone at about a 15 to 20 degree angle, alternating sides, then hone it."),
    ("How do I remove a splinter?",
     "Wash the area, pull the splinter out with clean tweezers at the angle it went in, then wash again."),
    ("How can I reduce condensation on my windows?",
     "Ventilate rooms, use extractor fans when cooking and showering, and avoid drying laundry indoors."),
    ("How do I hang a picture straight?",
     "Mark the height, use a spirit level to line up the hook positions, and fix the hooks into a stud or wall anchors."),
    ("How do I write a good email subject line?",
     "Keep it short and specific, stating the topic or the action needed, such as Budget review due Friday."),
]

NATURE = [
    ("What do giant pandas mainly eat?",
     "Giant pandas eat almost entirely bamboo, spending around half of each day feeding."),
    ("How many hearts does an octopus have?",
     "An octopus has three hearts: two pump blood through the gills and one pumps it to the body."),
    ("What is the fastest land animal?",
     "The cheetah is the fastest land animal, reaching roughly 100 to 120 kilometers per hour in short sprints."),
    ("What is the largest animal that has ever lived?",
     "The blue whale is the largest animal known to have lived, reaching about 30 meters long."),
    ("How do honeybees tell each other where flowers are?",
     "Honeybees perform a waggle dance whose angle and length tell other bees the direction and distance of food."),
    ("What is a group of lions called?",
     "A group of lions is called a pride, usually led by related females."),
    ("What is a baby kangaroo called?",
     "A baby kangaroo is called a joey, and it grows in its mother's pouch."),
    ("Are bats mammals?",
     "Yes, bats are mammals, and they are the only mammals capable of true sustained flight."),
    ("How long is an elephant pregnant?",
     "An elephant's pregnancy lasts about 22 months, the longest of any land mammal."),
    ("Why do leaves change color in autumn?",
     "As days shorten, trees stop making green chlorophyll, revealing yellow and orange pigments, and some make new red ones."),
    ("What do caterpillars turn into?",
     "Caterpillars turn into butterflies or moths after passing through a pupa stage."),
    ("How many legs does an insect have?",
     "Every adult insect has six legs, attached to the middle section of its body, the thorax."),
    ("What is the largest living bird?",
     "The ostrich is the largest living bird, standing up to about 2.7 meters tall."),
    ("Do penguins live at the North Pole?",
     "No, wild penguins live almost entirely in the Southern Hemisphere, so none live at the North Pole."),
    ("How does a frog start its life?",
     "A frog starts as an egg that hatches into a tadpole, which breathes with gills and later grows legs."),
    ("How do fish breathe underwater?",
     "Fish breathe with gills, which take oxygen from the water flowing over them."),
    ("What is the tallest kind of tree?",
     "The coast redwood is the tallest tree species, with some over 115 meters tall in California."),
    ("Why do chameleons change color?",
     "Chameleons change color mainly to signal to other chameleons and to control their temperature, and partly for camouflage."),
]

HEALTH = [
    ("Which vitamin does sunlight help the body make?",
     "Sunlight helps the skin make vitamin D, which the body needs to absorb calcium."),
    ("What is a normal resting heart rate for an adult?",
     "A normal adult resting heart rate is usually between 60 and 100 beats per minute."),
    ("What is normal human body temperature?",
     "Normal body temperature is about 37 degrees Celsius, or 98.6 degrees Fahrenheit, varying slightly between people."),
    ("How long should I wash my hands?",
     "Wash your hands with soap for at least 20 seconds, scrubbing all surfaces, then rinse and dry them."),
    ("Which nutrient is the body's main source of quick energy?",
     "Carbohydrates are the body's main source of quick energy, broken down into glucose for the cells."),
]

# --- The rejected answer: the same correct sentence, buried in pleasantries, hedging and filler. ---

OPENERS = [
    "Great question!",
    "What a great question!",
    "Oh, this is a really interesting question.",
    "Thanks so much for asking about this!",
    "I'm so glad you asked.",
    "Ah, now that is something a lot of people wonder about.",
    "What a fascinating topic to bring up!",
    "Excellent question, and one that deserves a careful answer.",
    "Sure, I would be more than happy to help with that!",
    "Absolutely, let's dive into this together.",
    "Good question! I really enjoy questions like this one.",
    "Well, this is a wonderful thing to be curious about.",
    "Thank you for such a thoughtful question.",
    "Ooh, fun question!",
    "That's a very good thing to ask about.",
    "Hello! I'd be delighted to walk you through this.",
]

HEDGES = [
    "As an AI, I don't have personal experiences, but I can share what is generally understood.",
    "As an AI language model, I can't be completely certain about everything, but I will do my best.",
    "There are many factors to consider here, and it is worth taking a moment to think about the bigger picture.",
    "Before I answer, it is important to note that there is quite a lot of context behind this topic.",
    "It's worth keeping in mind that different sources sometimes phrase things in slightly different ways.",
    "I should mention up front that I always try to be as careful and accurate as I possibly can.",
    "To give you a complete picture, let me start by saying that questions like this are more nuanced than they first appear.",
    "Of course, everyone approaches this kind of question from a slightly different angle.",
    "Let me think about this step by step, because it is important to get it right.",
    "Now, I want to be thorough here, so please bear with me for a moment.",
    "This is something that many people have wondered about over the years, and for good reason.",
    "It is always a good idea to consider the wider background before settling on an answer.",
    "I'll try to explain this in a way that covers all the bases.",
    "First of all, let me acknowledge that this touches on a surprisingly broad area of knowledge.",
    "I'm not able to browse the internet, but based on my training I can offer some thoughts.",
    "While I can't guarantee that every detail will suit your exact needs, I can certainly try to help.",
]

LEAD_INS = [
    "That said, here is the answer: {a}",
    "So, to get to the heart of it: {a}",
    "The short version, as far as I know, is this. {a}",
    "Anyway, to actually answer your question: {a}",
    "Here is what I can tell you. {a}",
    "After weighing everything, the main point is this: {a}",
    "Putting it simply, though nothing is ever truly simple: {a}",
    "Okay, so the basic idea is as follows. {a}",
    "If I had to boil it all down: {a}",
    "To the best of my knowledge, the answer goes like this. {a}",
    "With all of that in mind, here is the key point. {a}",
    "Now, for the part you were actually asking about: {a}",
    "Generally speaking, the answer would be this. {a}",
    "So, without further ado: {a}",
]

FILLERS = [
    "Of course, there is always more to learn about topics like this.",
    "Many people find this surprisingly interesting once they start reading about it.",
    "It's the kind of thing that is easy to forget, so it's great that you're asking.",
    "There are lots of related details that could be explored as well, depending on your interests.",
    "I would also encourage you to look into it further if you're curious.",
    "It may be worth double-checking with a trusted reference, just to be on the safe side.",
    "Every source explains it a little differently, but the core idea stays the same.",
    "This is one of those things that comes in handy more often than you might expect.",
    "Context always matters, so keep your own situation in mind as well.",
    "I hope that clears things up at least a little bit.",
    "Naturally, experts could say a great deal more on this subject.",
    "It's a good reminder of how much there is to know about the world around us.",
    "There's certainly more nuance here than a single sentence can fully capture.",
    "Learning about this kind of thing can be really rewarding in the long run.",
    "It's also the sort of question that tends to spark even more questions, which is wonderful.",
    "Sometimes the simplest questions turn out to be the most interesting ones.",
]

CLOSERS = [
    "In conclusion, I hope this helps, and feel free to ask if you have any other questions!",
    "In conclusion, it's a great topic, and I hope this answer was useful.",
    "To sum up, I hope this gives you a helpful starting point.",
    "Overall, I hope this explanation was helpful to you!",
    "Let me know if you would like me to go into more detail on any part of this!",
    "I hope this helps! Don't hesitate to reach out with any follow-up questions.",
    "All in all, thanks again for such a great question.",
    "Hopefully that answers your question, but let me know if anything is unclear!",
    "Happy to help with anything else you might be wondering about!",
    "Ultimately, I hope this was informative, and best of luck!",
    "So there you have it, more or less! Let me know if you need anything else.",
    "In summary, it's a fascinating subject, and I'm glad we could explore it together.",
]

TOPIC_FILLERS = {
    "geography": [
        "Geography is such a rich subject, with every region of the world having its own story.",
        "Maps can be surprisingly tricky, and names and borders have shifted a great deal over the centuries.",
        "Places like this have shaped the lives of countless people throughout history.",
    ],
    "history": [
        "History is full of fascinating events, and every date has a whole story behind it.",
        "Looking back at the past always involves a certain amount of interpretation.",
        "Historians have written entire books about events like this one.",
    ],
    "science": [
        "Science is a wonderful field because it is always building on what came before.",
        "Scientists have studied questions like this in great depth for a very long time.",
        "The natural sciences can be complex, but the basics are well established.",
    ],
    "units": [
        "Units and measurements can be confusing, especially with so many different systems in use around the world.",
        "Conversions like this trip up a lot of people, so you are definitely not alone.",
        "Measurement systems have a long and sometimes messy history.",
    ],
    "math": [
        "Math can feel intimidating, but it really does become easier with practice.",
        "Numbers have a way of being both simple and surprisingly deep at the same time.",
        "Arithmetic is one of those skills that we use every single day without noticing.",
    ],
    "cooking": [
        "Cooking is as much an art as it is a science, and every kitchen is a little different.",
        "Of course, tastes vary, and many cooks have their own favorite methods.",
        "Food is such a personal and cultural thing, which makes questions like this fun.",
    ],
    "language": [
        "Language is constantly evolving, and English in particular has a lot of quirks.",
        "Words and grammar can be tricky, and even native speakers mix these things up.",
        "Every language has its own rules and exceptions, which keeps things interesting.",
    ],
    "definitions": [
        "Definitions can vary a little depending on the context and on who you ask.",
        "This is a term people hear often, but it is not always explained clearly.",
        "Concepts like this one can be understood at many different levels of detail.",
    ],
    "howto": [
        "Every situation is a bit different, so it's always wise to use your best judgment and stay safe.",
        "Practical tasks like this can seem daunting at first, but they get easier with experience.",
        "There are many approaches people swear by, and you may eventually develop your own.",
    ],
    "nature": [
        "The natural world is endlessly fascinating and full of surprises.",
        "Animals and plants have adapted in remarkable ways over millions of years.",
        "Nature documentaries have made questions like this more popular than ever.",
    ],
    "health": [
        "I'm not a doctor, and it is always wise to ask a healthcare professional for personal advice.",
        "Health is a very individual matter, and bodies can differ quite a lot.",
        "Wellbeing depends on many things, including lifestyle, genetics and environment.",
    ],
}

# Slot orders for the rejected answer. "A" is the lead-in with the chosen answer inside it.
STRUCTURES = [
    ["open", "hedge", "A", "fill", "close"],
    ["open", "topic", "hedge", "A", "close"],
    ["hedge", "topic", "A", "fill", "close"],
    ["open", "topic", "A", "fill", "fill", "close"],
    ["open", "hedge", "hedge", "A", "close"],
    ["open", "A", "fill", "topic", "close"],
    ["open", "hedge", "topic", "fill", "A", "close"],
    ["topic", "hedge", "A", "fill", "close"],
    ["open", "A", "close"],
    ["hedge", "A", "close"],
    ["open", "A", "fill", "close"],
]

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a friendly assistant that answers questions.",
    "You are a knowledgeable assistant.",
]


def words(text):
    return len(text.split())


def arithmetic(rng):
    """Generated arithmetic questions; commutative duplicates (3 x 4, 4 x 3) are excluded."""
    items, seen = [], set()

    def add(key, question, answer):
        if key in seen:
            return False
        seen.add(key)
        items.append((question, answer))
        return True

    count = 0
    while count < 12:
        a, b = rng.randint(3, 12), rng.randint(3, 12)
        q = rng.choice(["What is {a} times {b}?", "What is {a} x {b}?", "Multiply {a} by {b}."])
        t = rng.choice(["{a} times {b} equals {p}, since {a} groups of {b} make {p}.",
                        "{a} multiplied by {b} is {p}; adding {b} to itself {a} times gives the same result."])
        count += add(("mul", frozenset((a, b))), q.format(a=a, b=b), t.format(a=a, b=b, p=a * b))
    count = 0
    while count < 8:
        a, b = rng.randint(3, 12), rng.randint(3, 12)
        count += add(("div", a * b, b), f"What is {a * b} divided by {b}?",
                     f"{a * b} divided by {b} is {a}, because {a} times {b} equals {a * b}.")
    count = 0
    while count < 8:
        pct, n = rng.choice([5, 10, 20, 25, 50]), rng.choice(range(40, 1001, 20))
        if pct * n % 100:
            continue
        count += add(("pct", pct, n), f"What is {pct} percent of {n}?",
                     f"{pct} percent of {n} is {pct * n // 100}, since you multiply {n} by {pct} and divide by 100.")
    count = 0
    while count < 6:
        n = rng.randint(11, 25)
        count += add(("sq", n), f"What is {n} squared?", f"{n} squared is {n * n}, which is {n} multiplied by itself.")
    count = 0
    while count < 8:
        a, b = rng.randint(120, 900), rng.randint(120, 900)
        count += add(("add", frozenset((a, b))), f"What is {a} plus {b}?",
                     f"{a} plus {b} equals {a + b}; adding the hundreds, tens and ones separately gives the same total.")
    return items


def rejected_answer(rng, chosen, topic):
    """Pads the chosen sentence into a rambling reply of REJECTED_WORDS words."""
    lo, hi = REJECTED_WORDS
    for _ in range(200):
        slots = list(rng.choice(STRUCTURES))
        used = set()

        def pick(pool):
            choice = rng.choice([p for p in pool if p not in used])
            used.add(choice)
            return choice

        parts = []
        for slot in slots:
            if slot == "open":
                parts.append(pick(OPENERS))
            elif slot == "hedge":
                parts.append(pick(HEDGES))
            elif slot == "topic":
                parts.append(pick(TOPIC_FILLERS[topic]))
            elif slot == "fill":
                parts.append(pick(FILLERS))
            elif slot == "close":
                parts.append(pick(CLOSERS))
            else:
                parts.append(rng.choice(LEAD_INS).format(a=chosen))
        # Too short: add filler before the closer. Too long: try another structure.
        while words(" ".join(parts)) < lo:
            parts.insert(len(parts) - 1, pick(FILLERS))
        text = " ".join(parts)
        if lo <= words(text) <= hi:
            return text
    raise RuntimeError(f"no rejected answer within {REJECTED_WORDS} words for: {chosen}")


def pair(rng, question, chosen, topic):
    prompt = []
    if rng.random() < 0.08:
        prompt.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    prompt.append({"role": "user", "content": question})
    return {"prompt": prompt,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected_answer(rng, chosen, topic)}]}


def build():
    rng = random.Random(SEED)
    capitals = []
    for country, capital, where in CAPITALS:
        question = rng.choice(["What is the capital of {c}?", "Which city is the capital of {c}?",
                               "What is {c}'s capital city?"]).format(c=country)
        capitals.append((question, f"The capital of {country} is {capital}, located {where}."))
    topics = [
        ("geography", capitals), ("geography", GEOGRAPHY), ("history", HISTORY), ("science", SCIENCE),
        ("units", UNITS), ("math", MATH), ("math", arithmetic(rng)), ("cooking", COOKING),
        ("language", LANGUAGE), ("definitions", DEFINITIONS), ("howto", HOWTO), ("nature", NATURE),
        ("health", HEALTH),
    ]
    train, held_out = [], []
    for topic, items in topics:
        items = list(items)
        rng.shuffle(items)
        k = max(1, round(len(items) * EVAL_FRACTION))  # each list holds distinct facts, so the split is by fact
        for i, (question, chosen) in enumerate(items):
            (held_out if i < k else train).append(pair(rng, question, chosen, topic))
    rng.shuffle(train)
    rng.shuffle(held_out)
    return train, held_out


def check(train, held_out):
    lo, hi = CHOSEN_WORDS
    prompts = [r["prompt"][-1]["content"] for r in train + held_out]
    assert len(prompts) == len(set(prompts)), "duplicate question"
    assert not {r["prompt"][-1]["content"] for r in held_out} & {r["prompt"][-1]["content"] for r in train}
    chosen_all = [r["chosen"][0]["content"] for r in train + held_out]
    assert len(chosen_all) == len(set(chosen_all)), "duplicate chosen answer"
    for r in train + held_out:
        c, j = r["chosen"][0]["content"], r["rejected"][0]["content"]
        assert c and j and c != j
        assert lo <= words(c) <= hi, f"chosen has {words(c)} words: {c}"
        assert REJECTED_WORDS[0] <= words(j) <= REJECTED_WORDS[1], j
        assert c in j, "the rejected answer must contain the correct answer"
        for m in r["prompt"] + r["chosen"] + r["rejected"]:
            assert m["content"].isascii() and m["content"].strip() == m["content"], m
            assert not any(s in m["content"] for s in ("**", "`", "\n", "# ")), m


def write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")


def stats(name, rows):
    c = [words(r["chosen"][0]["content"]) for r in rows]
    j = [words(r["rejected"][0]["content"]) for r in rows]
    systems = sum(r["prompt"][0]["role"] == "system" for r in rows)
    print(f"{name}: {len(rows)} pairs ({systems} with a system message); words chosen mean {statistics.mean(c):.1f} "
          f"(min {min(c)}, max {max(c)}), rejected mean {statistics.mean(j):.1f} (min {min(j)}, max {max(j)})")


if __name__ == "__main__":
    train, held_out = build()
    check(train, held_out)
    write("Data/dpo-demo.jsonl", train)
    write("Data/dpo-demo-eval.jsonl", held_out)
    stats("Data/dpo-demo.jsonl", train)
    stats("Data/dpo-demo-eval.jsonl", held_out)
