"""The sentence templates of ioi-circuit's training text (`corpus` assembles them): the episodes'
openings and closings, those with a third name, S-repeat and crowd sentences, varied pairs, the
held-out ones, lead-ins, distractor sentences, role words and filler words."""

from __future__ import annotations

from sae_bench.models.ioi_tiny.corpus import FILLER_TEMPLATES
from sae_bench.tasks.ioi.prompts import PREFIX, TEMPLATES

# The task's templates split at the sentence break into opening and closing (the first ends in
# "argument." / "{place}.", the closing starts with "Afterwards," or "{C}").
_TASK_PARTS = tuple(t.split(". ", 1) for t in TEMPLATES)
TASK_OPENINGS = tuple(o + "." for o, _ in _TASK_PARTS)
TASK_CLOSINGS = tuple(c for _, c in _TASK_PARTS)

OPENINGS = TASK_OPENINGS + (
    "{A} and {B} went to the {place}.",
    "{A} and {B} arrived at the {place}.",
    "{A} and {B} were at the {place}.",
    "{A} and {B} found a {object} at the {place}.",
    "{A} and {B} had a long talk.",
    "{A} and {B} cooked dinner at the {place}.",
    "{A} and {B} left the {place} early.",
    "{A} and {B} were playing at the {place}.",
    "{A} and {B} had a big fight at the {place}.",
    "{A} and {B} met at the {place}.",
    "{A} and {B} walked to the {place}.",
    "{A} and {B} were reading at the {place}.",
    "When {A} and {B} went to the {place},",
    "While {A} and {B} were at the {place},",
)
# {IO} marks where the answer goes; text after it completes the sentence.
CLOSINGS = TASK_CLOSINGS + (
    "{C} handed the {object} to {IO}.",
    "{C} passed the {object} to {IO}.",
    "{C} showed a {object} to {IO}.",
    "{C} gave it to {IO}.",
    "Afterwards, {C} wrote a letter to {IO}.",
    "{C} brought a {object} to {IO}.",
    "{C} sent a {object} to {IO}.",
    "{C} threw the {object} to {IO}.",
    "Later, {C} said sorry to {IO}.",
    "{C} decided to sell a {object} to {IO}.",
    "Then {C} gave a {object} to {IO}.",
    "{C} lent a {object} to {IO}.",
    "{C} offered a {object} to {IO}.",
    "{C} gave {IO} a {object}.",
    "{C} handed {IO} the {object}.",
)
# The task closings end at END (" to"); the answer and a full stop follow.
CLOSINGS = tuple(c if "{IO}" in c else c + " {IO}." for c in CLOSINGS)

# Episodes with a third name {D} (never IO or S) inside them. Without these, "the names of the
# episode minus S" is read off by layer-0 heads that attend every recent name (what the first
# trained model did, with no name movers): a name inside the episode that is not in the pair makes
# that bag ambiguous, and one after S2 makes "the most recent name is S" wrong, so the model has
# to find the pair and the duplicated name by structure, in later layers.
THIRD_NAME_OPENINGS = (
    "{A} and {B} met {D} at the {place}.",
    "{A} and {B} went to the {place} with {D}.",
    "{D} saw {A} and {B} at the {place}.",
)
THIRD_NAME_CLOSINGS = (
    "{C}, a friend of {D}, gave a {object} to {IO}.",
    "{C} took the {object} from {D} and gave it to {IO}.",
    "After {D} left, {C} gave a {object} to {IO}.",
    "{C} told {D} to give a {object} to {IO}.",
)

# Sentences about S alone, put between an episode's opening and closing (`Mix.s_repeats`), so S
# occurs 2-4 times in the episode and IO once. "Attend to every recent name and subtract the
# subject" then fails: a head averaging over the names gives S a weight that grows with its count,
# which no fixed subtraction cancels; what works for every count is to attend only to the name
# that is not repeated (GPT-2's name movers, told by S-inhibition which name is the duplicate).
S_MIDDLES = (
    "{C} was very happy.",
    "{C} saw a {object}.",
    "{C} liked the {place}.",
    "Then {C} found a {object}.",
    "{C} sat down.",
)

# Sentences about two other names of the cast, {D} and {E}, each naming both once
# (`Mix.crowd`): two of them put before or inside an episode make D and E occur twice each, like
# S, and IO once. Gathering every recent name then gives IO a small share of the attention (one
# name of five to eight), while attending only the name that is not repeated still gives it all
# of it; and which names to leave out is fixed by repetition, not by position (a crowd sentence
# before the opening is as far from END as the pair).
CROWD_SENTENCES = (
    "{D} and {E} were friends.",
    "{D} saw {E} there.",
    "{E} talked to {D}.",
    "{D} and {E} sat together.",
    "{E} waved at {D}.",
)

# Openings whose pair is not "{A} and {B}" (`Mix.varied_pairs`): the names are apart or joined
# by other words. Every other opening names the pair the same way, so the pair can be found by
# the words around it (what run r14's heads read) and the repeated name never has to be found.
VARIED_OPENINGS = (
    "{A} met {B} at the {place}.",
    "{A} went to the {place} with {B}.",
    "At the {place}, {A} talked with {B}.",
    "{A} called {B} from the {place}.",
    "{A} had lunch with {B} at the {place}.",
    "{A} was at the {place}, and so was {B}.",
)

# One-name sentences for episodes with no opening (`Mix.roll_call`). Such an episode's body is a
# shuffled run of these, one per mention: IO once, S once, one or two other names two or three
# times each; then a closing. Every name sits in the same kind of sentence, so neither its
# position, the punctuation nor the words around it say which name is IO: only that IO is the
# name said once and not repeated by the closing. A bag of the body's names minus S fails (the
# other names outweigh IO, by varying counts); marking repeated names, as GPT-2 does, works.
ROLL_CALL_FRAMES = (
    "{X} sat down.",
    "{X} was very happy.",
    "{X} saw a {object}.",
    "{X} went to the {place}.",
    "{X} was at the {place}.",
    "Then {X} found a {object}.",
    "{X} walked in.",
    "{X} was tired.",
    "At the {place}, {X} sat down.",
    "{X} liked the {object}.",
)

# Closings whose answer is S itself ({IO} is filled with S), chosen by the verb after S2
# (`Mix.self_closings`): which name to move is then known only at END, so it cannot all be
# worked out at S2 ("the name of the pair that is not me", what run r9 did) and copied.
SELF_CLOSINGS = (
    "{C} kept the {object} for {IO}.",
    "{C} saved a {object} for {IO}.",
    "{C} bought a {object} for {IO}.",
)

# Never part of an episode; their words occur in distractor sentences, so the tokens are trained.
HELD_OUT_OPENINGS = (
    "{A} and {B} were eating at the {place}.",
    "{A} and {B} had a nice time at the {place}.",
)
HELD_OUT_CLOSINGS = (
    "{C} sold the {object} to {IO}.",
    "Soon, {C} gave the {object} back to {IO}.",
    "{C} wanted to give a {object} to {IO}.",
)

LEAD_INS = ("", PREFIX.strip(), "Later,", "Yesterday,", "Today,", "After that,", "Then")

DISTRACTOR_TEMPLATES = FILLER_TEMPLATES + (
    "{A} saw {B} at the {place}.",
    "While {A} was eating at the {place}, {B} read a book.",
    "{A} sold the {object} at the {place}.",
    "{A} had a nice time at the {place}.",
    "Soon, {A} went back to the {place}.",
    "{A} wanted a {object}.",
    "{A}, {B} and {C} went to the {place}.",
    "{A} and {B} were friends.",
)

# "the former" is the pair's first name, "the latter" its second: when the closing uses them,
# only the position of S in the pair identifies the subject, so the model has to represent it.
ROLE_WORDS = ("the former", "the latter")

# Inserted at random points: single tokens that carry no name and no role.
FILLERS = (" really", " very", " quite", " also", " just", " still", " so", " then", " again",
           " soon", " today", " well", " now", " there")
