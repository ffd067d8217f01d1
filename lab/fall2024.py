"""The Fall 2024 edition's Part A (DeepFloyd IF, DDPM): the course's numbers and prompts, the only place they live.

Every page, request default and course function of the edition reads them from here (tests/test_repo.py fails on a
course literal written anywhere else). SPEC's Part A table; the notebook's signature defaults excepted.
"""

from models.backend import DEFAULT_PROMPT

SEED = 180  # a seed the course's students used (0: report it, reuse it everywhere)
ONE_STEP_TS = (250, 500, 750)  # t of 1.1 to 1.3
ITERATIVE_I_START = 10  # 1.4's i_start (t = 690 on the stride-30 timesteps)
SAMPLES = 5  # 1.5 and 1.6: five samples
CFG_SCALE = 7.0  # gamma of 1.6 and after
SDEDIT_ROW = (1, 3, 5, 7, 10, 20)  # the i_start row of 1.7 / 1.7.1 / 1.7.3
HYBRID_KERNEL, HYBRID_SIGMA = 33, 2.0  # 1.9's Gaussian blur

# The prompts a page starts with on a free-text backend (DeepFloyd IF): the course's, and where a page shows more
# than the course asks (three views, three bands) one more in the same style
COURSE_PROMPTS = {
    "sampling": ("an oil painting of a snowy mountain village", "a man wearing a hat", "a rocket ship"),
    "cfg": (DEFAULT_PROMPT,),
    "sdedit": (DEFAULT_PROMPT,),  # IF: "" is the null prompt, so gamma matters with this one
    "inpaint": (DEFAULT_PROMPT,),
    "text": ("a rocket ship",),
    # the third: the page's three views
    "anagram": (
        "an oil painting of an old man",
        "an oil painting of people around a campfire",
        "an oil painting of a snowy mountain village",
    ),
    "hybrid": (
        "a lithograph of a skull",
        "a lithograph of waterfalls",
        "a lithograph of a rocket ship",
    ),  # far, near, middle
    "colour": ("a lithograph of a skull", "an oil painting of people around a campfire"),  # grey, colour
}
