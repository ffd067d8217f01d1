"""tools/emoji_data.py: the colour art with names that Part A's colour backend is to be trained on."""

import numpy as np
import pytest
from PIL import ImageFont

from tools.emoji_data import FONT, NAMES, PEOPLE, render, variants

pytestmark = pytest.mark.skipif(
    not FONT.exists(), reason="needs Debian's fonts-noto-color-emoji (apt-get install fonts-noto-color-emoji)"
)


def test_every_name_renders_in_colour_as_a_small_distribution():
    images, labels, names = render(16, 6, seed=1)
    assert names == list(NAMES) and images.shape == (6 * len(NAMES), 3, 16, 16) and images.dtype == np.uint8
    assert labels.tolist() == np.repeat(np.arange(len(NAMES)), 6).tolist()
    per_name = images.reshape(len(NAMES), 6, -1).astype(int)
    assert (per_name.std(axis=1).mean(axis=1) > 5).all()  # six different pictures of each name, not one copied
    colour = np.abs(images[:, 0].astype(int) - images[:, 1]).mean(axis=(1, 2))
    assert np.median(colour) > 10  # colour, not grey
    again, _, _ = render(16, 6, seed=1)
    assert np.array_equal(images, again)  # a seed gives the same data


def test_people_come_in_several_skin_tones_other_names_in_one_drawing():
    font = ImageFont.truetype(str(FONT), 109)
    people, rocket = variants(PEOPLE[0], font), variants("rocket", font)
    mean_colours = {tuple(np.asarray(a)[..., :3][np.asarray(a)[..., 3] > 128].mean(axis=0).round(-1)) for a in people}
    assert len(people) == 6 and len(mean_colours) >= 4 and len(rocket) == 1
