"""Synthetic faces whose expressions are built from facial action units (FACS).

A face is drawn with OpenCV primitives (filled ellipses and polygons, shaded)
so that OpenCV's Haar frontal-face cascade -- the Viola-Jones detector of the
paper's §3.1 -- finds it. Each emotion is a set of action units (AUs) as in
the EMFACS prototypes; every AU moves concrete geometry with an intensity in
[0, 1] (0 = absent, 1 = FACS level E):

====  ====================  ===============================================
AU    name                  what moves here
====  ====================  ===============================================
1     inner brow raiser     inner brow ends up (oblique brows)
2     outer brow raiser     outer brow ends up (arched brows)
4     brow lowerer          brows down and together, glabella furrows
5     upper lid raiser      upper lids open wider (more white shows)
6     cheek raiser          cheeks up, lower lids pushed up, crow's feet
7     lid tightener         lower lids up and straighter, upper lids narrow
9     nose wrinkler         nostrils up and wider, bridge wrinkles, upper lip up
12    lip corner puller     mouth corners up and out, nasolabial folds deepen
15    lip corner depressor  mouth corners down
16    lower lip depressor   lower lip down, lower teeth show
20    lip stretcher         mouth corners out, lips flatten and thin
23    lip tightener         lips thin and narrow, mouth closes
26    jaw drop              mouth opens, chin goes down
====  ====================  ===============================================

Emotions share AUs (fear and surprise share 1+2+5+26; sadness, fear and anger
share 4; disgust and sadness share 15), apex intensities vary per clip, a few
unrelated AUs leak in at low intensity, and identities differ in face shape,
skin tone, features, hair, lighting, head pose, background and sensor noise:
the emotion is learnable but not trivially separable. (A linear probe --
logistic regression on the pixels of 64 x 64 apex face crops, 16 identities
for training, 8 others for testing -- reaches about 64 % over seven classes,
chance 14 %; fear/surprise, anger/neutral/sadness and disgust/happiness are
the usual confusions.)

Everything random takes a :class:`numpy.random.Generator`; the same generator
state gives the same pixels.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

RENDER_VERSION = 1
"""Bumped whenever the same identity, action units and generator state give different pixels
(for the staleness checks of generated corpora)."""

AU_NUMBERS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 12, 15, 16, 20, 23, 26)
AU_NAMES: list[str] = [f"AU{n}" for n in AU_NUMBERS]

EXPRESSION_AUS: dict[str, tuple[int, ...]] = {
    "anger": (4, 5, 7, 23),
    "disgust": (9, 15, 16),
    "fear": (1, 2, 4, 5, 7, 20, 26),
    "happiness": (6, 12),
    "neutral": (),
    "sadness": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
}
"""Emotion -> the action units of its prototype expression."""

EMOTIONS: tuple[str, ...] = tuple(EXPRESSION_AUS)

APEX_RANGE: tuple[float, float] = (0.35, 1.0)
"""A clip's apex intensity is drawn uniformly from this range; each AU of the
expression then gets this times a factor in [0.65, 1.15], clipped to [0, 1]."""
LEAK_PROBABILITY = 0.15
LEAK_MAX = 0.2
"""Each AU outside the expression leaks in with this probability at an apex
intensity up to ``LEAK_MAX`` (people are not prototypes)."""

_SHIFT = 4  # OpenCV drawing with 4 fractional bits: sub-pixel motion stays smooth
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


@dataclass(frozen=True)
class FaceIdentity:
    """Everything about one synthetic person and their recording set-up.

    Lengths are in units of the face half-width (``a``) unless stated; colours
    are RGB 0-255.
    """

    face_width: float
    """Face width as a fraction of the image's smaller side."""
    aspect: float
    """Face half-height / half-width."""
    jaw_width: float
    """Width of the jaw relative to the cheekbones (1 = oval, <1 = tapered)."""
    skin: tuple[int, int, int]
    """Skin colour, RGB 0-255 (light to dark tones)."""
    eye_spacing: float
    """Horizontal distance of each eye centre from the midline."""
    eye_size: float
    """Eye half-width."""
    eye_open: float
    """Neutral upper-lid opening / eye half-width."""
    iris: tuple[int, int, int]
    """Iris colour, RGB 0-255 (one of five eye colours)."""
    brow_thickness: float
    """Eyebrow thickness."""
    brow_color: tuple[int, int, int]
    """Eyebrow colour, RGB 0-255 (near the hair colour, darker than the skin)."""
    hair_style: int
    """0 short crop, 1 full short hair, 2 long hair."""
    hair_color: tuple[int, int, int]
    """Hair colour, RGB 0-255."""
    nose_length: float
    """Nose length, from the eye line to the tip."""
    mouth_width: float
    """Neutral half-width of the mouth."""
    lip_thickness: float
    """Lower-lip thickness (the upper lip is 0.8 of it)."""
    lip_color: tuple[int, int, int]
    """Lip colour, RGB 0-255 (a redder, darker shade of the skin)."""
    light_angle: float
    """Direction the light comes from, radians in the image plane."""
    light_strength: float
    """Relative brightness difference across the image caused by the light, 0-0.4."""
    roll: float
    """In-plane head rotation, degrees (positive = counter-clockwise)."""
    shift: tuple[float, float]
    """Head offset from the image centre, fractions of the width and height."""
    scale: float
    """Head size multiplier."""
    background_seed: int
    """Seed of this person's background (clutter is fixed over their recordings)."""
    noise_sigma: float
    """Standard deviation of per-frame sensor noise, grey levels."""


def random_identity(rng: np.random.Generator) -> FaceIdentity:
    """Draw one synthetic person: face shape, colouring, features, lighting, pose, background."""
    tone = rng.uniform(0.0, 1.0)
    light_skin, dark_skin = np.array([236, 198, 172]), np.array([128, 88, 64])
    skin = (1 - tone) * light_skin + tone * dark_skin + rng.normal(0, 6, 3)
    hair = _random_hair(rng)
    brow = np.clip(np.minimum(hair, skin * 0.45) + rng.normal(0, 5, 3), 10, 200)
    iris_palette = np.array([[70, 45, 25], [40, 30, 20], [60, 90, 120], [70, 100, 60], [100, 75, 40]])
    iris = iris_palette[rng.integers(len(iris_palette))] + rng.normal(0, 6, 3)
    lip = skin * np.array([0.7, 0.42, 0.42]) + np.array([20, 0, 5]) + rng.normal(0, 6, 3)
    return FaceIdentity(
        face_width=float(rng.uniform(0.42, 0.52)),
        aspect=float(rng.uniform(1.2, 1.4)),
        jaw_width=float(rng.uniform(0.78, 0.95)),
        skin=_rgb(skin),
        eye_spacing=float(rng.uniform(0.38, 0.46)),
        eye_size=float(rng.uniform(0.18, 0.22)),
        eye_open=float(rng.uniform(0.34, 0.44)),
        iris=_rgb(iris),
        brow_thickness=float(rng.uniform(0.08, 0.13)),
        brow_color=_rgb(brow),
        hair_style=int(rng.integers(3)),
        hair_color=_rgb(hair),
        nose_length=float(rng.uniform(0.42, 0.55)),
        mouth_width=float(rng.uniform(0.32, 0.42)),
        lip_thickness=float(rng.uniform(0.06, 0.1)),
        lip_color=_rgb(lip),
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.35)),
        roll=float(rng.uniform(-8, 8)),
        shift=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
        scale=float(rng.uniform(0.92, 1.08)),
        background_seed=int(rng.integers(2**31)),
        noise_sigma=float(rng.uniform(2, 7)),
    )


def render_face(identity: FaceIdentity, au_intensity: dict[int, float], rng: np.random.Generator,
                size: tuple[int, int] = (128, 128)) -> np.ndarray:
    """Draw one frame of ``identity`` showing the given action units.

    Parameters
    ----------
    identity : the person, lighting, pose and background.
    au_intensity : ``{AU number: intensity in [0, 1]}``; missing AUs are 0.
    rng : source of the frame's sensor noise.
    size : ``(height, width)`` in pixels, default 128 x 128.

    Returns
    -------
    uint8 array ``(height, width, 3)``, RGB.
    """
    height, width = int(size[0]), int(size[1])
    unknown = sorted(set(au_intensity) - set(AU_NUMBERS))
    if unknown:
        raise ValueError(f"unknown action unit(s) {unknown}; known: {list(AU_NUMBERS)}")
    au = {n: float(np.clip(au_intensity.get(n, 0.0), 0.0, 1.0)) for n in AU_NUMBERS}
    image = _background(identity.background_seed, height, width).copy()
    _draw_head(_Pen(image, identity), identity, au)
    return _photograph(image, identity.light_angle, identity.light_strength, identity.noise_sigma, rng)


def expression_apex(emotion: str, rng: np.random.Generator) -> np.ndarray:
    """Apex intensities (one per :data:`AU_NAMES`) of one performance of ``emotion``."""
    if emotion not in EXPRESSION_AUS:
        raise ValueError(f"unknown emotion {emotion!r}; choose one of {', '.join(EMOTIONS)}")
    active = EXPRESSION_AUS[emotion]
    level = rng.uniform(*APEX_RANGE)
    apex = np.zeros(len(AU_NUMBERS), dtype=np.float32)
    for i, number in enumerate(AU_NUMBERS):
        if number in active:
            apex[i] = min(1.0, level * rng.uniform(0.65, 1.15))
        elif rng.random() < LEAK_PROBABILITY:
            apex[i] = rng.uniform(0.0, LEAK_MAX)
    return apex


def onset_curve(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Fraction of the apex reached at each frame: neutral, a smooth rise, then held.

    Non-decreasing from 0 at the first frame to 1; onset starts in the first
    quarter of the clip and the apex is reached between 45 % and 80 % of it.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if n_frames == 1:
        return np.ones(1, dtype=np.float32)
    start = rng.uniform(0.0, 0.25)
    apex = rng.uniform(0.45, 0.8)
    t = np.linspace(0.0, 1.0, n_frames)
    x = np.clip((t - start) / (apex - start), 0.0, 1.0)
    return (x * x * (3 - 2 * x)).astype(np.float32)


def render_clip(identity: FaceIdentity, emotion: str, n_frames: int, rng: np.random.Generator,
                size: tuple[int, int] = (128, 128)) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A clip of ``identity`` moving from a neutral face to the apex of ``emotion``.

    The head drifts slightly (roll, position) over the clip.

    Returns
    -------
    frames : uint8 ``(n_frames, height, width, 3)``, RGB.
    au : float32 ``(n_frames, len(AU_NAMES))``, the intensity of every AU in every frame.
    au_names : :data:`AU_NAMES` (the columns of ``au``).
    """
    apex = expression_apex(emotion, rng)
    au = onset_curve(n_frames, rng)[:, None] * apex[None, :]
    drift = np.cumsum(rng.normal(0.0, 1.0, (n_frames, 3)), axis=0) / math.sqrt(max(n_frames, 1))
    frames = np.empty((n_frames, int(size[0]), int(size[1]), 3), dtype=np.uint8)
    for k in range(n_frames):
        moved = dataclasses.replace(
            identity,
            roll=identity.roll + 1.5 * drift[k, 0],
            shift=(identity.shift[0] + 0.008 * drift[k, 1], identity.shift[1] + 0.008 * drift[k, 2]))
        frames[k] = render_face(moved, dict(zip(AU_NUMBERS, au[k].tolist())), rng, size)
    return frames, au.astype(np.float32), list(AU_NAMES)


def render_blank_face(identity: FaceIdentity, rng: np.random.Generator,
                      size: tuple[int, int] = (128, 128)) -> np.ndarray:
    """The head of ``identity`` (hair, ears, neck, background) without eyes, brows, nose or mouth.

    A negative control for the face detector: everything but the facial features.
    """
    height, width = int(size[0]), int(size[1])
    image = _background(identity.background_seed, height, width).copy()
    _draw_head(_Pen(image, identity), identity, {n: 0.0 for n in AU_NUMBERS}, features=False)
    return _photograph(image, identity.light_angle, identity.light_strength, identity.noise_sigma, rng)


def render_blank_ellipse(rng: np.random.Generator, size: tuple[int, int] = (128, 128)) -> np.ndarray:
    """A plain skin-coloured ellipse of face size on a plain background: the detector's harshest negative control.

    OpenCV's cascade "finds" a face in about 40 % of these (a bright oval
    blob on a darker surround resembles a face at coarse scale), which is why
    :mod:`mtl.features.faces` thresholds the detection score.
    """
    height, width = int(size[0]), int(size[1])
    side = min(height, width)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = rng.integers(60, 200, 3)
    skin = random_identity(rng).skin
    center = (int(width / 2 + rng.uniform(-0.05, 0.05) * side), int(height / 2 + rng.uniform(-0.05, 0.05) * side))
    axes = (int(rng.uniform(0.2, 0.26) * side), int(rng.uniform(0.27, 0.34) * side))
    cv2.ellipse(image, center, axes, 0, 0, 360, skin, -1, _AA)
    return _photograph(image, 0.0, 0.0, float(rng.uniform(2, 7)), rng)


def _photograph(image: np.ndarray, light_angle: float, light_strength: float, noise_sigma: float,
                rng: np.random.Generator) -> np.ndarray:
    """Lighting gradient, slight lens blur and sensor noise on a drawn RGB image."""
    height, width = image.shape[:2]
    shaded = image.astype(np.float32) * _light_gain(light_angle, light_strength, height, width)
    shaded = cv2.GaussianBlur(shaded, (3, 3), 0.6)
    # luminance noise: one draw per pixel, shared by the channels (a third of the cost of RGB noise)
    shaded += rng.standard_normal((height, width, 1), dtype=np.float32) * np.float32(noise_sigma)
    return np.clip(shaded, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------
# drawing


class _Pen:
    """Draws in face coordinates: units of the face half-width, origin at the face centre, y down."""

    def __init__(self, image: np.ndarray, identity: FaceIdentity):
        height, width = image.shape[:2]
        self.image = image
        self.unit = identity.face_width * identity.scale * min(height, width) / 2.0
        angle = math.radians(identity.roll)
        self.cos, self.sin = math.cos(angle), math.sin(angle)
        self.roll = identity.roll
        self.cx = width / 2.0 + identity.shift[0] * width
        self.cy = height / 2.0 + identity.shift[1] * height + 0.06 * self.unit
        self.origin = np.array([self.cx * _ONE, self.cy * _ONE])

    def points(self, xy: np.ndarray) -> np.ndarray:
        # y points down, so a counter-clockwise roll on screen is a negative math angle
        c, s = self.cos * self.unit * _ONE, self.sin * self.unit * _ONE
        rotation = np.array([[c, -s], [s, c]])
        return (np.asarray(xy, dtype=np.float64) @ rotation + self.origin).round().astype(np.int32)

    def ellipse(self, x: float, y: float, rx: float, ry: float, color, angle: float = 0.0,
                thickness: int = -1, arc: tuple[float, float] = (0, 360)) -> None:
        x, y = x * self.unit, y * self.unit
        center = (round((self.cx + self.cos * x + self.sin * y) * _ONE),
                  round((self.cy - self.sin * x + self.cos * y) * _ONE))
        axes = (max(1, int(rx * self.unit * _ONE)), max(1, int(ry * self.unit * _ONE)))
        cv2.ellipse(self.image, center, axes, angle - self.roll, arc[0], arc[1], color,
                    thickness if thickness < 0 else max(1, int(round(thickness))), _AA, _SHIFT)

    def fill(self, xy: np.ndarray, color) -> None:
        cv2.fillPoly(self.image, [self.points(xy)], color, _AA, _SHIFT)

    def line(self, xy: np.ndarray, color, width: float) -> None:
        thickness = max(1, int(round(width * self.unit)))
        cv2.polylines(self.image, [self.points(xy)], False, color, thickness, _AA, _SHIFT)


def _draw_head(pen: _Pen, idt: FaceIdentity, au: dict[int, float], features: bool = True) -> None:
    h = idt.aspect
    skin = np.array(idt.skin, dtype=np.float64)
    jaw_drop = 0.12 * au[26]
    if idt.hair_style == 2:
        pen.fill(_oval(1.22, h * 0.95, 0.0, -0.12 * h, lower_height=h * 1.25, jaw=1.05), idt.hair_color)
    _draw_body(pen, idt, skin, h)
    pen.ellipse(-1.02, 0.0, 0.1, 0.2, _rgb(skin * 0.88))  # ears
    pen.ellipse(1.02, 0.0, 0.1, 0.2, _rgb(skin * 0.88))
    pen.fill(_oval(1.0, h, 0.0, 0.0, lower_height=h + jaw_drop, jaw=idt.jaw_width), _rgb(skin * 0.86))
    pen.fill(_oval(0.9, h * 0.93, 0.0, -0.02, lower_height=(h + jaw_drop) * 0.9, jaw=idt.jaw_width),
             _rgb(skin))
    _draw_hairline(pen, idt, h)
    if not features:
        return
    eye_y = -0.06 * h
    _draw_cheeks(pen, idt, skin, au, eye_y)
    _draw_brows(pen, idt, skin, au, eye_y)
    for side in (-1.0, 1.0):
        _draw_eye(pen, idt, skin, au, side, eye_y)
    mouth_y = 0.56 * h + 0.4 * jaw_drop
    _draw_nose(pen, idt, skin, au, eye_y, mouth_y)
    _draw_mouth(pen, idt, skin, au, mouth_y)


def _draw_body(pen: _Pen, idt: FaceIdentity, skin: np.ndarray, h: float) -> None:
    pen.fill(np.array([[-0.4, 0.5 * h], [0.4, 0.5 * h], [0.45, 1.6 * h], [-0.45, 1.6 * h]]), _rgb(skin * 0.78))
    shirt = _rgb(np.array(_hsv_rgb(idt.background_seed % 360 / 360.0, 0.4, 0.45)) * 255)
    pen.ellipse(0.0, 1.55 * h + 0.9, 2.1, 1.0, shirt)


def _draw_hairline(pen: _Pen, idt: FaceIdentity, h: float) -> None:
    if idt.hair_style == 0:
        pen.ellipse(0.0, -0.08 * h, 0.97, h * 0.96, idt.hair_color, thickness=0.05 * pen.unit,
                    arc=(200, 340))
        return
    top = np.linspace(math.pi, 2 * math.pi, 25)
    cap = np.stack([1.04 * np.cos(top), -0.05 * h + 1.03 * h * np.sin(top)], axis=1)
    fringe_x = np.linspace(1.0, -1.0, 15)
    fringe_y = -0.74 * h + 0.14 * h * (fringe_x ** 2) + 0.03 * np.sin(fringe_x * 9)
    edge = np.stack([fringe_x, fringe_y], axis=1)
    pen.fill(np.concatenate([cap, edge]), idt.hair_color)


def _draw_cheeks(pen: _Pen, idt: FaceIdentity, skin: np.ndarray, au: dict[int, float], eye_y: float) -> None:
    lift = au[6] * 0.07 + au[12] * 0.03
    tint = skin * (1.04 + 0.04 * au[6]) + np.array([8, -2, -2]) * (0.5 + au[6])
    for side in (-1.0, 1.0):
        pen.ellipse(side * 0.5, eye_y + 0.45 - lift, 0.24, 0.16 + 0.03 * au[6], _rgb(tint))


def _draw_brows(pen: _Pen, idt: FaceIdentity, skin: np.ndarray, au: dict[int, float], eye_y: float) -> None:
    # No horizontal forehead wrinkles for AU1/AU2: drawn, they made the cascade miss
    # about one apex frame in ten of surprise and fear.
    if au[4] > 0.05:
        furrow = _rgb(skin * (1 - 0.3 * au[4]))
        for side in (-1.0, 1.0):
            pen.line(np.array([[side * 0.06, eye_y - 0.2], [side * 0.05, eye_y - 0.38]]), furrow, 0.03)
    brow_y = eye_y - 0.22 - idt.eye_open * idt.eye_size
    thickness = idt.brow_thickness * (1 + 0.15 * au[4])
    for side in (-1.0, 1.0):
        inner_x = 0.12 + 0.02 * (idt.eye_spacing - 0.4) * 5 - 0.05 * au[4]
        outer_x = idt.eye_spacing + idt.eye_size + 0.08
        inner_y = brow_y + 0.08 * au[4] + 0.04 * au[9] - 0.13 * au[1] - 0.02 * au[2]
        outer_y = brow_y + 0.05 + 0.04 * au[4] - 0.13 * au[2]
        mid_y = brow_y - 0.05 + 0.06 * au[4] - 0.05 * au[1] - 0.08 * au[2]
        mid_x = inner_x + 0.45 * (outer_x - inner_x)
        path = np.array([[inner_x, inner_y], [mid_x, mid_y], [outer_x, outer_y]])
        path[:, 0] *= side
        pen.line(path, idt.brow_color, thickness)


def _draw_eye(pen: _Pen, idt: FaceIdentity, skin: np.ndarray, au: dict[int, float], side: float,
              eye_y: float) -> None:
    ex, ew = side * idt.eye_spacing, idt.eye_size
    upper = idt.eye_open * ew * (1 + 0.55 * au[5]) * (1 - 0.3 * au[7]) * (1 - 0.15 * au[6])
    lower = 0.55 * idt.eye_open * ew * (1 + 0.3 * au[5]) * (1 - 0.6 * au[7]) * (1 - 0.5 * au[6])
    socket = skin * (0.72 - 0.05 * au[4])
    pen.ellipse(ex, eye_y - 0.02, ew * 1.45, ew * 0.95, _rgb(socket))
    t = np.linspace(-1.0, 1.0, 13)
    xs = ex + ew * t
    lid_top = eye_y - upper * np.sqrt(1 - t ** 2) + 0.02 * side * t
    lid_bottom = eye_y + lower * np.sqrt(1 - t ** 2) + 0.01 * (1 - t ** 2) * au[7]
    sclera = np.minimum(np.array([235.0, 230.0, 224.0]), skin * 1.1 + 30)
    pen.fill(np.concatenate([np.stack([xs, lid_top], 1), np.stack([xs[::-1], lid_bottom[::-1]], 1)]),
             _rgb(sclera))
    iris_r = 0.5 * ew
    pen.ellipse(ex, eye_y, iris_r, iris_r, idt.iris)
    pen.ellipse(ex, eye_y, iris_r * 0.45, iris_r * 0.45, (15, 12, 12))
    band = iris_r + 0.03
    above = np.concatenate([np.stack([xs, lid_top], 1), np.stack([xs[::-1], lid_top[::-1] - band], 1)])
    below = np.concatenate([np.stack([xs, lid_bottom], 1), np.stack([xs[::-1], lid_bottom[::-1] + band], 1)])
    pen.fill(above, _rgb(socket))
    pen.fill(below, _rgb(socket * 1.05))
    pen.line(np.stack([xs, lid_top], 1), (30, 22, 20), 0.065)
    pen.line(np.stack([xs, lid_bottom], 1), _rgb(socket * 0.75), 0.02 + 0.02 * au[7])
    if au[6] > 0.1:
        feet = _rgb(skin * (1 - 0.25 * au[6]))
        corner = ex + side * (ew + 0.04)
        for dy in (-0.05, 0.0, 0.05):
            pen.line(np.array([[corner, eye_y + dy * 0.5], [corner + side * 0.09, eye_y + dy]]), feet, 0.02)


def _draw_nose(pen: _Pen, idt: FaceIdentity, skin: np.ndarray, au: dict[int, float], eye_y: float,
               mouth_y: float) -> None:
    tip_y = eye_y + idt.nose_length - 0.03 * au[9]
    shade = _rgb(skin * 0.78)
    for side in (-1.0, 1.0):
        pen.line(np.array([[side * 0.1, eye_y + 0.12], [side * 0.11, tip_y - 0.05]]), shade, 0.03)
    pen.ellipse(0.0, (eye_y + tip_y) / 2, 0.05, (tip_y - eye_y) / 2.2, _rgb(skin * 1.08))
    if au[9] > 0.05:
        wrinkle = _rgb(skin * (1 - 0.3 * au[9]))
        for k in range(3):
            y = eye_y + 0.06 + 0.05 * k
            pen.line(np.array([[-0.08, y], [0.0, y - 0.015], [0.08, y]]), wrinkle, 0.02)
    flare = 1 + 0.35 * au[9]
    pen.ellipse(0.0, tip_y, 0.11 * flare, 0.07, _rgb(skin * 1.03))
    for side in (-1.0, 1.0):
        pen.ellipse(side * 0.13 * flare, tip_y + 0.02, 0.06, 0.06, _rgb(skin * 0.85), thickness=0.025 * pen.unit,
                    arc=(90 - side * 90, 270 - side * 90))
        pen.ellipse(side * 0.065 * flare, tip_y + 0.045, 0.045 * flare, 0.022, (50, 32, 30))
    fold = 0.12 + 0.35 * au[12] + 0.3 * au[9] + 0.15 * au[6]
    mouth_hw = idt.mouth_width * (1 + 0.25 * au[12] + 0.25 * au[20])
    for side in (-1.0, 1.0):
        path = np.array([[side * 0.2, tip_y - 0.02],
                         [side * (0.27 + 0.05 * au[12]), (tip_y + mouth_y) / 2],
                         [side * (mouth_hw + 0.07), mouth_y + 0.08 - 0.06 * au[12]]])
        pen.line(path, _rgb(skin * (1 - 0.25 * fold)), 0.025)


def _draw_mouth(pen: _Pen, idt: FaceIdentity, skin: np.ndarray, au: dict[int, float], mouth_y: float) -> None:
    half = idt.mouth_width * (1 + 0.25 * au[12] + 0.28 * au[20] - 0.15 * au[23] - 0.05 * au[15])
    corner_dy = -0.11 * au[12] + 0.1 * au[15] + 0.015 * au[20]
    thin = (1 - 0.6 * au[23]) * (1 - 0.3 * au[20])
    top_lip, bottom_lip = 0.8 * idt.lip_thickness * thin, idt.lip_thickness * thin
    gap = max(0.0, 0.22 * au[26] + 0.06 * au[16] + 0.05 * au[12] * au[6] + 0.03 * au[9] - 0.05 * au[23])
    upper_raise = 0.03 * au[9] + 0.2 * gap
    lower_drop = 0.08 * au[16] + 0.8 * gap
    t = np.linspace(-1.0, 1.0, 15)
    xs = half * t
    bend = t ** 2
    taper = np.sqrt(np.clip(1 - t ** 2, 0, 1))
    seam = mouth_y + corner_dy * bend
    inner_top = seam - upper_raise * taper
    inner_bottom = seam + lower_drop * taper
    outer_top = inner_top - top_lip * taper ** 0.7 + 0.018 * np.exp(-(t * half / 0.05) ** 2)
    outer_bottom = inner_bottom + bottom_lip * taper ** 0.7
    lip = np.array(idt.lip_color, dtype=np.float64)
    pen.fill(np.concatenate([np.stack([xs, outer_top], 1), np.stack([xs[::-1], inner_top[::-1]], 1)]),
             _rgb(lip * 0.92))
    pen.fill(np.concatenate([np.stack([xs, inner_bottom], 1), np.stack([xs[::-1], outer_bottom[::-1]], 1)]),
             _rgb(lip))
    if gap > 0.015:
        pen.fill(np.concatenate([np.stack([xs, inner_top], 1), np.stack([xs[::-1], inner_bottom[::-1]], 1)]),
                 (55, 18, 22))
        teeth = np.minimum(inner_top + 0.04, inner_bottom)
        pen.fill(np.concatenate([np.stack([xs * 0.8, inner_top], 1), np.stack([xs[::-1] * 0.8, teeth[::-1]], 1)]),
                 (175, 168, 156))
        if au[16] > 0.3:
            lower_teeth = np.maximum(inner_bottom - 0.04 * au[16], inner_top)
            pen.fill(np.concatenate([np.stack([xs * 0.7, lower_teeth], 1),
                                     np.stack([xs[::-1] * 0.7, inner_bottom[::-1]], 1)]), (160, 152, 140))
    pen.line(np.stack([xs, seam - upper_raise * taper * 0.5], 1) if gap <= 0.015 else np.stack([xs, inner_top], 1),
             _rgb(lip * 0.45), 0.025)
    chin = _rgb(skin * 0.9)
    pen.ellipse(0.0, outer_bottom.max() + 0.12, 0.16, 0.05, chin, thickness=0.02 * pen.unit, arc=(200, 340))


def _oval(width: float, height: float, x: float, y: float, lower_height: float, jaw: float) -> np.ndarray:
    """Head outline: an upper half ellipse and a lower half tapering to the jaw."""
    t = np.linspace(0.0, 2 * math.pi, 48, endpoint=False)
    s = np.sin(t)
    lower = s > 0
    xs = width * np.cos(t) * np.where(lower, 1 - (1 - jaw) * s ** 2, 1.0)
    ys = np.where(lower, lower_height, height) * s
    return np.stack([x + xs, y + ys], axis=1)


# ----------------------------------------------------------------------------
# colours, background and light (cached: they are fixed per person)


def _rgb(color) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, int(c))) for c in color)
    return r, g, b


def _hsv_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def _random_hair(rng: np.random.Generator) -> np.ndarray:
    palette = np.array([[25, 20, 18], [60, 40, 25], [110, 75, 45], [170, 130, 80], [130, 125, 120], [90, 35, 20]])
    return palette[rng.integers(len(palette))] + rng.normal(0, 8, 3)


@functools.lru_cache(maxsize=16)
def _background(seed: int, height: int, width: int) -> np.ndarray:
    """A cluttered room-like backdrop: a tinted gradient with boxes, blobs and lines."""
    rng = np.random.default_rng(seed)
    base = np.array(_hsv_rgb(rng.uniform(), rng.uniform(0.05, 0.35), rng.uniform(0.35, 0.85))) * 255
    ramp = np.linspace(1 - 0.2 * rng.uniform(), 1 + 0.2 * rng.uniform(), height, dtype=np.float32)
    image = np.clip(ramp[:, None, None] * base[None, None, :] * np.ones((1, width, 1)), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 9))):
        color = _rgb(np.array(_hsv_rgb(rng.uniform(), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.95))) * 255)
        x0, y0 = int(rng.integers(width)), int(rng.integers(height))
        kind = rng.integers(3)
        if kind == 0:
            corner = (x0 + int(rng.integers(5, width // 2)), y0 + int(rng.integers(5, height // 2)))
            cv2.rectangle(image, (x0, y0), corner, color, -1)
        elif kind == 1:
            cv2.circle(image, (x0, y0), int(rng.integers(3, max(4, width // 6))), color, -1, _AA)
        else:
            cv2.line(image, (x0, y0), (int(rng.integers(width)), int(rng.integers(height))), color,
                     int(rng.integers(1, 4)), _AA)
    image.setflags(write=False)
    return image


@functools.lru_cache(maxsize=16)
def _light_gain(angle: float, strength: float, height: int, width: int) -> np.ndarray:
    """Multiplicative brightness across the image for light coming from ``angle``."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    along = (xs / max(width - 1, 1) - 0.5) * math.cos(angle) + (ys / max(height - 1, 1) - 0.5) * math.sin(angle)
    gain = (1.0 + strength * along)[..., None].astype(np.float32)
    gain.setflags(write=False)
    return gain
