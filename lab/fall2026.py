"""The Fall 2026 edition's Part A (PixNerd, linear flow): the notebook's numbers and prompts, the only place they live.

Every page, request default and course function of the edition reads them from here (tests/test_repo.py fails on a
course literal written anywhere else). SPEC's Fall 2026 table; the notebook's signature defaults (``w=7``,
``step_size=0.02``) excepted.
"""

from lab import fall2024
from models.backend import DEFAULT_PROMPT

SEED = 180  # the notebook's: sample i of 1.6 and 2.1 from noise(SEED + i)
NOISY_TS = (0.25, 0.5, 0.75)  # t of 1.1 to 1.4
BLUR_SIGMAS_512 = (1.0, 2.0, 4.0, 8.0, 16.0)  # 1.2's sweep at 512 px, kernel 6 sigma + 1
STEP_SIZE = 0.02  # h of 1.5 and after: 50 Euler updates from noise, 25 from t = 0.5
EULER_T = 0.5  # 1.5 starts from the t = 0.5 input
SAMPLES = 5  # 1.6 and 2.1: five samples
CFG_W = 7.0  # w of 2.1 and after
EDIT_STARTS = (0.02, 0.04, 0.06, 0.10, 0.14, 0.25, 0.5)  # 3.1's start times
ANAGRAM_VIEWS = ("identity", "rotate_180")  # 3.3: R = rotation by 180 degrees (both axes)
HYBRID_KERNEL_512, HYBRID_SIGMA_512 = 265, 16.0  # 3.4's blur at PixNerd's 512 px

# The prompts a page starts with on a free-text backend (PixNerd); a class backend picks classes instead
COURSE_PROMPTS = {
    "cfg": (DEFAULT_PROMPT,),
    "edit": (DEFAULT_PROMPT,),
    "text": ("a photograph of a rocket on a launch pad",),
    "anagram": fall2024.COURSE_PROMPTS["anagram"],  # the course's, as in Fall 2024 (the third: the page's three views)
    "hybrid": (
        "a lithograph of a skull",
        "a lithograph of a waterfall",
        "a lithograph of a rocket ship",
    ),  # far, near, middle
}
# The notebook's two pairs of each illusion (3.3: as is / rotated; 3.4: far / near), as it spells them
COURSE_PAIRS = {
    "anagram": (
        ("an oil painting of an old man", "an oil painting of people around a campfire"),
        ("a lithograph of a snowy mountain village", "a lithograph of a horse"),
    ),
    "hybrid": (
        ("a lithograph of a skull", "a lithograph of a waterfall"),
        ("a lithograph of a cat", "a lithograph of a forest"),
    ),
}
