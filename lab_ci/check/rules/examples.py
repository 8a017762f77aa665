"""The leaves the rule documentation starts from (:mod:`lab_ci.check.catalog`): each
rule's passing and failing examples are these with one change."""

SKILL_PATH = "compositional_skills/writing/rhymes/qna.yaml"
KNOWLEDGE_PATH = "knowledge/astronomy/moon/qna.yaml"
ATTRIBUTION = b"Title of work: Rhymes\nLicense of the work: CC-BY-4.0\nCreator names: Octocat\n"

#: A valid skill leaf, the base of most examples.
SKILL = """\
version: 3
created_by: octocat
task_description: Find a word that rhymes.
seed_examples:
  - {question: A rhyme for cat, answer: Hat.}
  - {question: A rhyme for dog, answer: Log.}
  - {question: A rhyme for sun, answer: Fun.}
  - {question: A rhyme for tree, answer: Bee.}
  - {question: A rhyme for star, answer: Car.}
"""

#: A valid knowledge leaf.
KNOWLEDGE = """\
version: 3
created_by: octocat
domain: astronomy
document_outline: Facts about the Moon.
document: {repo: 'https://github.com/octocat/moon', commit: 0123456789abcdef0123456789abcdef01234567, patterns: [moon.md]}
seed_examples:
""" + "".join(
    f"  - {{context: Fact {i} about the Moon., questions_and_answers: [{{question: Q{i}a, answer: A.}}, "
    f"{{question: Q{i}b, answer: B.}}, {{question: Q{i}c, answer: C.}}]}}\n"
    for i in range(1, 6)
)

#: The same knowledge leaf in the version 2 shape (questions straight under seed_examples).
KNOWLEDGE_V2 = """\
version: 2
created_by: octocat
domain: astronomy
task_description: Facts about the Moon.
document: {repo: 'https://github.com/octocat/moon', commit: 0123456789abcdef0123456789abcdef01234567, patterns: [moon.md]}
seed_examples:
  - {question: 'What is the Moon?', answer: Earth's satellite.}
  - {question: 'Is the Moon natural?', answer: Yes.}
  - {question: 'How many moons are there?', answer: One.}
  - {question: 'How far is the Moon?', answer: 384400 km.}
  - {question: 'What is the Moon made of?', answer: Rock.}
"""
