"""Drawing of synthetic pedestrians, camera scenes and camera effects.

Every function here is a pure function of its arguments and of a
``numpy.random.Generator``; the dataset generator derives one generator per
identity, camera and image from the seed, so an image is fully determined by
``(seed, person id, camera, index)`` and not by the order of generation.

A person is drawn as a map of part labels (skin, hair, top, ...) with OpenCV
primitives on a canvas twice the output size; colours and clothing patterns
are then looked up in one vectorised step, and the canvas is reduced with
area interpolation, which anti-aliases the edges. Colours are RGB in [0, 1]
until the final conversion to 8-bit BGR.
"""
import colorsys
import math
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

# Named colours. Identities draw their clothes from short palettes on
# purpose: many identities share a top or trouser colour, so only the
# combination of colours, patterns, accessories and body shape tells them
# apart.
COLOURS = {
    'black': (0.08, 0.08, 0.09),
    'white': (0.90, 0.90, 0.88),
    'grey': (0.50, 0.50, 0.52),
    'navy': (0.10, 0.14, 0.38),
    'sky': (0.45, 0.68, 0.90),
    'red': (0.78, 0.10, 0.12),
    'green': (0.15, 0.50, 0.22),
    'yellow': (0.95, 0.82, 0.20),
    'purple': (0.45, 0.20, 0.60),
    'orange': (0.95, 0.50, 0.10),
    'pink': (0.95, 0.60, 0.72),
    'brown': (0.45, 0.28, 0.15),
    'beige': (0.82, 0.74, 0.58),
    'teal': (0.10, 0.50, 0.50),
    'olive': (0.45, 0.45, 0.20),
    'denim': (0.25, 0.35, 0.55),
}
TOP_COLOURS = ('black', 'white', 'grey', 'navy', 'sky', 'red', 'green',
               'yellow', 'purple', 'orange', 'pink', 'teal')
BOTTOM_COLOURS = ('black', 'navy', 'denim', 'grey', 'beige', 'brown',
                  'olive', 'white')
SHOE_COLOURS = ('black', 'white', 'brown', 'grey', 'red')
ACCESSORY_COLOURS = ('black', 'red', 'navy', 'brown', 'grey', 'yellow',
                     'green', 'pink', 'orange', 'white')
SKIN_TONES = ((0.96, 0.80, 0.69), (0.87, 0.68, 0.53), (0.72, 0.52, 0.38),
              (0.55, 0.37, 0.25), (0.38, 0.25, 0.17))
HAIR_COLOURS = ((0.06, 0.05, 0.05), (0.30, 0.18, 0.10), (0.75, 0.60, 0.35),
                (0.62, 0.62, 0.62), (0.50, 0.20, 0.10))
PATTERNS = ('plain', 'stripes', 'checks', 'logo')
VIEWS = ('front', 'back', 'side')

# Part labels of the label map; 0 is "no person".
(_NONE, _SKIN, _HAIR, _TOP, _BOTTOM, _SHOES, _HAT, _BAG, _BACKPACK,
 _LOGO) = range(10)
_NUM_LABELS = 10

# Supersampling factor of the person canvas.
_SS = 2


def _colour(rng: np.random.Generator, name: str,
            jitter: float = 0.04) -> np.ndarray:
    """A palette colour with a small random shift, as RGB float32."""
    base = np.asarray(COLOURS[name], dtype=np.float32)
    return np.clip(base + rng.uniform(-jitter, jitter, 3), 0, 1).astype(
        np.float32)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def sample_identity(rng: np.random.Generator) -> Dict:
    """Sample the fixed appearance of one person.

    Args:
        rng (numpy.random.Generator): Generator owned by this identity.

    Returns:
        dict: Body proportions (as fractions of the body height), clothing
        colours and pattern, hair, accessories and gait of the person.
    """
    top_name = _pick(rng, TOP_COLOURS)
    second_name = _pick(rng, [c for c in ACCESSORY_COLOURS if c != top_name])
    identity = dict(
        height=rng.uniform(0.86, 1.0),
        shoulders=rng.uniform(0.20, 0.30),
        hips=rng.uniform(0.72, 0.95),
        head=rng.uniform(0.115, 0.155),
        legs=rng.uniform(0.43, 0.53),
        limb=rng.uniform(0.8, 1.2),
        skin=np.asarray(_pick(rng, SKIN_TONES), np.float32),
        hair=np.asarray(_pick(rng, HAIR_COLOURS), np.float32),
        hair_style=_pick(rng, ('short', 'short', 'long', 'shaved')),
        top=_colour(rng, top_name),
        top_name=top_name,
        second=_colour(rng, second_name),
        sleeves=_pick(rng, ('long', 'short')),
        pattern=_pick(rng, PATTERNS),
        period=rng.uniform(0.035, 0.06),
        logo_shape=_pick(rng, ('square', 'disc', 'band')),
        bottom=_colour(rng, _pick(rng, BOTTOM_COLOURS)),
        bottom_style=_pick(rng, ('trousers', ) * 5 + ('shorts', ) * 2 +
                           ('skirt', )),
        shoes=_colour(rng, _pick(rng, SHOE_COLOURS)),
        gait=rng.uniform(0.2, 0.45),
        arm_spread=rng.uniform(0.08, 0.25),
        hat=None,
        backpack=None,
        bag=None,
    )
    if rng.random() < 0.3:
        identity['hat'] = dict(
            style=_pick(rng, ('cap', 'beanie')),
            colour=_colour(rng, _pick(rng, ACCESSORY_COLOURS)))
    if rng.random() < 0.3:
        identity['backpack'] = _colour(rng, _pick(rng, ACCESSORY_COLOURS))
    if rng.random() < 0.35:
        identity['bag'] = dict(
            style=_pick(rng, ('shoulder', 'hand')),
            side=float(rng.choice((-1.0, 1.0))),
            size=rng.uniform(0.09, 0.15),
            colour=_colour(rng, _pick(rng, ACCESSORY_COLOURS)))
    return identity


# Camera presets. Cameras take distinct entries (in a seeded order) so that
# every pair of cameras differs clearly; only cameras beyond the length of a
# list sample freely.
_CASTS = ((1.18, 1.0, 0.78), (0.80, 0.95, 1.22), (0.92, 1.12, 0.88),
          (1.10, 0.86, 1.06), (1.0, 1.0, 1.0), (1.12, 1.08, 0.82))
_VIEW_PROBS = ((0.7, 0.1, 0.2), (0.1, 0.7, 0.2), (0.15, 0.15, 0.7),
               (0.34, 0.33, 0.33))
_WALLS = ('bricks', 'panels', 'gradient', 'noise', 'windows')
_FLOORS = ('tiles', 'plain', 'noise', 'stripes')


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32)


def sample_cameras(rng: np.random.Generator, num_cameras: int) -> List[Dict]:
    """Sample the settings of every camera of the dataset.

    Args:
        rng (numpy.random.Generator): Generator owned by the cameras.
        num_cameras (int): Number of cameras.

    Returns:
        list[dict]: One dict per camera: scene, lighting (gain, colour cast,
        gamma, light direction), person scale, blur, resolution loss, noise,
        JPEG quality, the distribution of walking directions and the
        occlusion rate.
    """
    casts = rng.permutation(len(_CASTS))
    views = rng.permutation(len(_VIEW_PROBS))
    walls = rng.permutation(len(_WALLS))
    floors = rng.permutation(len(_FLOORS))
    # Spread over their ranges, then shuffled, so no two cameras share them.
    scales = rng.permutation(np.linspace(0.62, 0.95, num_cameras))
    blurs = rng.permutation(np.linspace(0.0, 1.3, num_cameras))
    gains = rng.permutation(np.linspace(0.7, 1.25, num_cameras))
    # Scene hues spread around the colour wheel; muted like real places.
    hues = (rng.uniform() + np.arange(num_cameras) / num_cameras) % 1.0
    cameras = []
    for i in range(num_cameras):

        def preset(order, table, i=i):
            if i < len(order):
                return table[int(order[i])]
            return table[int(rng.integers(len(table)))]

        cast = np.asarray(preset(casts, _CASTS), np.float32)
        if i >= len(_CASTS):
            cast = rng.uniform(0.8, 1.2, 3).astype(np.float32)
        cameras.append(
            dict(
                wall=preset(walls, _WALLS),
                floor=preset(floors, _FLOORS),
                wall_colour=_hsv(hues[i], rng.uniform(0.1, 0.45),
                                 rng.uniform(0.4, 0.85)),
                wall_colour2=_hsv(hues[i] + rng.uniform(-0.15, 0.15),
                                  rng.uniform(0.05, 0.4),
                                  rng.uniform(0.3, 0.9)),
                floor_colour=_hsv(rng.uniform(), rng.uniform(0.0, 0.3),
                                  rng.uniform(0.2, 0.6)),
                horizon=rng.uniform(0.5, 0.8),
                texture_period=rng.uniform(0.12, 0.3),
                scene_seed=int(rng.integers(2**31)),
                view_probs=np.asarray(preset(views, _VIEW_PROBS)),
                scale=float(scales[i]),
                blur=float(blurs[i]),
                downscale=float(rng.choice((1.0, 1.0, 0.7, 0.5))),
                gain=float(gains[i]),
                cast=cast,
                gamma=rng.uniform(0.8, 1.25),
                light_dir=rng.uniform(-1, 1),
                noise=rng.uniform(0.005, 0.03),
                jpeg_quality=int(rng.integers(70, 96)),
                occlusion=rng.uniform(0.15, 0.35),
            ))
    return cameras


def _blotches(rng: np.random.Generator, coarse: Tuple[int, int],
              size: Tuple[int, int], amount: float) -> np.ndarray:
    """Smooth random stains, mostly in brightness with a little tint."""
    grid = rng.uniform(-1, 1, coarse + (1, )) + rng.uniform(
        -0.25, 0.25, coarse + (3, ))
    return amount * cv2.resize(
        grid.astype(np.float32), (size[1], size[0]),
        interpolation=cv2.INTER_CUBIC)


def render_scene(camera: Dict, height: int, width: int) -> np.ndarray:
    """Draw the static scene a camera looks at.

    The scene is wider than one crop (three crop widths) so that each image
    shows the part of it behind the person at that moment.

    Args:
        camera (dict): One camera of :func:`sample_cameras`.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Scene of shape (1.2 * height, 3 * width, 3), float32 RGB.
    """
    rng = np.random.default_rng(camera['scene_seed'])
    sh, sw = int(round(height * 1.2)), width * 3
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    horizon = int(sh * camera['horizon'])
    period = max(4.0, camera['texture_period'] * height)
    c1, c2 = camera['wall_colour'], camera['wall_colour2']

    kind = camera['wall']
    if kind == 'bricks':
        row = np.floor(yy / (period * 0.5))
        xs = xx + (row % 2) * period * 0.5
        mortar = ((yy % (period * 0.5)) < 1.5) | ((xs % period) < 1.5)
        tone = rng.uniform(0.85, 1.1, int(row.max()) + 1).astype(np.float32)
        wall = c1 * tone[row.astype(int)][..., None]
        wall = np.where(mortar[..., None], c2 * 0.6 + 0.3, wall)
    elif kind == 'panels':
        band = (np.floor(xx / period) % 2)[..., None]
        wall = c1 * (1 - band) + (0.7 * c1 + 0.3 * c2) * band
    elif kind == 'gradient':
        t = (xx / sw * 0.6 + yy / sh * 0.4)[..., None]
        wall = c1 * (1 - t) + c2 * t
    elif kind == 'noise':
        wall = c1 + _blotches(rng, (6, 12), (sh, sw), 0.18)
    else:  # windows
        wall = np.broadcast_to(c1, (sh, sw, 3)).copy()
        cell = period * 1.6
        inside = (((xx % cell) > cell * 0.25) & ((xx % cell) < cell * 0.85)
                  & ((yy % cell) > cell * 0.2) & ((yy % cell) < cell * 0.75))
        wall[inside] = c2 * 0.8 + 0.15

    f = camera['floor_colour']
    kind = camera['floor']
    if kind == 'tiles':
        lines = ((xx % period) < 1.5) | ((yy % (period * 0.6)) < 1.5)
        floor = np.where(lines[..., None], f * 0.6, f)
    elif kind == 'stripes':
        band = (np.floor(yy / (period * 0.4)) % 2)[..., None]
        floor = f * (1 - 0.25 * band)
    elif kind == 'noise':
        floor = f + _blotches(rng, (8, 24), (sh, sw), 0.12)
    else:
        depth = np.clip((yy - horizon) / max(1, sh - horizon), 0, 1)
        floor = f * (0.8 + 0.3 * depth[..., None])

    scene = np.where((yy < horizon)[..., None], wall, floor)
    # A few fixed objects (doors, signs, bins) make the scene less uniform.
    for _ in range(int(rng.integers(2, 6))):
        w = int(rng.uniform(0.1, 0.4) * width)
        h = int(rng.uniform(0.1, 0.5) * height)
        x0 = int(rng.integers(0, sw - w))
        y0 = int(rng.integers(0, max(1, horizon - h // 2)))
        scene[y0:y0 + h, x0:x0 + w] = rng.uniform(0.1, 0.9, 3)
    return np.clip(scene, 0, 1).astype(np.float32)


def sample_pose(rng: np.random.Generator, identity: Dict,
                view: str) -> Dict:
    """Sample the pose of one image: walking phase, limbs, lean, direction."""
    return dict(
        view=view,
        facing=float(rng.choice((-1.0, 1.0))),
        phase=rng.uniform(0, 2 * math.pi),
        lean=rng.normal(0, 0.04),
        arm_jitter=rng.normal(0, 0.12, 2),
        leg_jitter=rng.normal(0, 0.05, 2),
        elbow=rng.uniform(0.05, 0.5, 2),
        knee=rng.uniform(0.0, 0.35, 2),
    )


def _pt(x: float, y: float) -> Tuple[int, int]:
    return int(round(x)), int(round(y))


def _limb(lab: np.ndarray, start, angle: float, length: float,
          width: float, label: int) -> Tuple[float, float]:
    """Draw a segment from ``start`` at ``angle`` from the downward vertical
    (positive toward +x) and return its end point."""
    end = (start[0] + length * math.sin(angle),
           start[1] + length * math.cos(angle))
    cv2.line(lab, _pt(*start), _pt(*end), label, max(1, int(round(width))))
    return end


class _Figure:
    """Where the parts of one person go, in pixels of the label map.

    Built from the identity's proportions and the pose of one image; the
    ``_draw_*`` functions below read it.
    """

    def __init__(self, identity: Dict, pose: Dict, cx: float, top: float,
                 body_h: float) -> None:
        ident = identity
        self.ident, self.pose, self.view = ident, pose, pose['view']
        self.cx, self.top, self.body_h = cx, top, body_h
        self.side = side = self.view == 'side'
        self.facing = pose['facing'] if side else 1.0
        # A back view is a mirrored front view, so asymmetric items swap
        # sides.
        self.mirror = -1.0 if self.view == 'back' else 1.0

        self.head_h = head_h = ident['head'] * body_h
        self.head_w = head_h * (0.72 if side else 0.8)
        shoulder_half = ident['shoulders'] * body_h / 2
        hip_half = shoulder_half * ident['hips']
        if side:
            shoulder_half *= 0.55
            hip_half *= 0.6
        self.shoulder_half, self.hip_half = shoulder_half, hip_half
        bottom = top + body_h
        self.hip_y = bottom - ident['legs'] * body_h
        neck_y = top + head_h * 0.95
        self.shoulder_y = neck_y + 0.025 * body_h
        self.arm_w = 0.055 * body_h * ident['limb']
        self.leg_w = 0.075 * body_h * ident['limb']
        self.lean = math.tan(pose['lean'])
        self.swing = ident['gait'] * math.sin(pose['phase'])
        self.head_c = (self.lx(cx, top + head_h / 2), top + head_h / 2)
        self.torso_h = self.hip_y - self.shoulder_y
        self.chest = (self.lx(cx, self.shoulder_y + 0.35 * self.torso_h),
                      self.shoulder_y + .35 * self.torso_h)

    def lx(self, x: float, y: float) -> float:
        """Shift a point above the hips with the lean of the body."""
        return x + (self.hip_y - y) * self.lean

    def bag_side(self, bag: Dict) -> float:
        """-1 or 1: the side of the body the bag is seen on."""
        return bag['side'] * self.mirror * (self.facing if self.side else 1.0)


def _draw_legs(lab: np.ndarray, f: _Figure) -> None:
    """Thigh then shin of each leg, shoes at the ends."""
    ident, pose, body_h, leg_w = f.ident, f.pose, f.body_h, f.leg_w
    thigh = ident['legs'] * body_h * 0.5
    shin = ident['legs'] * body_h * 0.5 - 0.03 * body_h
    leg_label = _SKIN if ident['bottom_style'] == 'skirt' else _BOTTOM
    shin_label = _BOTTOM if ident['bottom_style'] == 'trousers' else _SKIN
    for i, sgn in enumerate((-1.0, 1.0)):
        if f.side:
            a = f.facing * sgn * f.swing + pose['leg_jitter'][i]
            hip = (f.cx, f.hip_y)
        else:
            a = sgn * (0.04 + 0.1 * abs(f.swing)) + pose['leg_jitter'][i]
            hip = (f.cx + sgn * f.hip_half * 0.5, f.hip_y)
        knee = _limb(lab, hip, a, thigh, leg_w, leg_label)
        bend = -f.facing * pose['knee'][i] if f.side else \
            0.3 * pose['knee'][i]
        foot = _limb(lab, knee, a + bend * (1 if f.side else sgn), shin,
                     leg_w * 0.85, shin_label)
        shoe_w = leg_w * (1.1 if f.side else 0.6)
        shoe_c = (foot[0] + (f.facing * leg_w * 0.4 if f.side else 0.0),
                  foot[1] + 0.01 * body_h)
        cv2.ellipse(lab, _pt(*shoe_c),
                    _pt(max(1.0, shoe_w), max(1.0, 0.025 * body_h)), 0, 0,
                    360, _SHOES, -1)


def _draw_pelvis(lab: np.ndarray, f: _Figure) -> None:
    """The pelvis, and the skirt over the thighs."""
    def from_hips(flare: float, drop: float) -> np.ndarray:
        """A trapezoid from the hips down to ``drop`` body heights below
        them, ``flare`` times the hips' width at its bottom."""
        top, bottom = f.hip_y - 0.02 * f.body_h, f.hip_y + drop * f.body_h
        return np.array([
            _pt(f.cx - f.hip_half, top),
            _pt(f.cx + f.hip_half, top),
            _pt(f.cx + f.hip_half * flare, bottom),
            _pt(f.cx - f.hip_half * flare, bottom)
        ])

    cv2.fillConvexPoly(lab, from_hips(0.8, 0.07), _BOTTOM)  # pelvis
    if f.ident['bottom_style'] == 'skirt':
        cv2.fillConvexPoly(lab, from_hips(1.5, 0.2), _BOTTOM)


def _draw_arm(lab: np.ndarray, f: _Figure, i: int,
              sgn: float) -> Tuple[float, float]:
    """Upper arm, forearm and hand of arm ``i`` (``sgn``: its side);
    returns the hand."""
    ident, pose, arm_w = f.ident, f.pose, f.arm_w
    cx, shoulder_y = f.cx, f.shoulder_y
    if f.side:
        shoulder = (f.lx(cx, shoulder_y), shoulder_y + arm_w * 0.5)
        a = -f.facing * sgn * f.swing * 1.2 + pose['arm_jitter'][i] * 0.5
        bend = f.facing * pose['elbow'][i]
    else:
        shoulder = (f.lx(cx + sgn * (f.shoulder_half - arm_w * 0.4),
                         shoulder_y), shoulder_y + arm_w * 0.5)
        a = sgn * (ident['arm_spread'] + abs(pose['arm_jitter'][i]) * .5)
        bend = -sgn * pose['elbow'][i] * 0.3
    upper = 0.18 * f.body_h
    elbow = _limb(lab, shoulder, a, upper, arm_w, _TOP)
    fore = _SKIN if ident['sleeves'] == 'short' else _TOP
    hand = _limb(lab, elbow, a + bend, 0.17 * f.body_h, arm_w * 0.85, fore)
    cv2.circle(lab, _pt(*hand), max(1, int(arm_w * 0.55)), _SKIN, -1)
    return hand


def _draw_behind_torso(lab: np.ndarray, f: _Figure) -> None:
    """A side view's backpack, and long hair falling behind the shoulders
    in front and side views."""
    body_h, shoulder_y = f.body_h, f.shoulder_y
    if f.ident['backpack'] is not None and f.side:
        x_back = f.lx(f.cx, shoulder_y) - f.facing * f.shoulder_half
        x_out = x_back - f.facing * 0.09 * body_h
        box = np.array([
            _pt(x_back, shoulder_y + 0.02 * body_h),
            _pt(x_out, shoulder_y + 0.04 * body_h),
            _pt(x_out, f.hip_y - 0.04 * body_h),
            _pt(x_back, f.hip_y - 0.02 * body_h)
        ])
        cv2.fillConvexPoly(lab, box, _BACKPACK)
    if f.ident['hair_style'] == 'long' and f.view != 'back':
        head_c, head_w = f.head_c, f.head_w
        hx = head_c[0] - (f.facing * head_w * 0.25 if f.side else 0.0)
        cv2.rectangle(lab, _pt(hx - head_w * 0.55, head_c[1]),
                      _pt(hx + head_w * 0.55, shoulder_y + 0.08 * body_h),
                      _HAIR, -1)


def _draw_torso(lab: np.ndarray, f: _Figure) -> None:
    """Torso and neck."""
    cx, shoulder_y, hip_y = f.cx, f.shoulder_y, f.hip_y
    torso = np.array([
        _pt(f.lx(cx - f.shoulder_half, shoulder_y), shoulder_y),
        _pt(f.lx(cx + f.shoulder_half, shoulder_y), shoulder_y),
        _pt(cx + f.hip_half, hip_y + 0.01 * f.body_h),
        _pt(cx - f.hip_half, hip_y + 0.01 * f.body_h)
    ])
    cv2.fillConvexPoly(lab, torso, _TOP)
    head_c, head_w = f.head_c, f.head_w
    cv2.rectangle(lab, _pt(head_c[0] - head_w * 0.18, head_c[1]),
                  _pt(head_c[0] + head_w * 0.18, shoulder_y + 1), _SKIN, -1)


def _draw_logo(lab: np.ndarray, f: _Figure) -> None:
    """The logo of a logo shirt: on the chest in front, and a band shirt's
    band, which wraps around, in side views too."""
    if f.ident['pattern'] != 'logo':
        return
    chest, shoulder_half = f.chest, f.shoulder_half
    shape = f.ident['logo_shape']
    r = shoulder_half * 0.45
    if f.view == 'front' and shape == 'disc':
        cv2.circle(lab, _pt(*chest), max(1, int(r)), _LOGO, -1)
    elif f.view == 'front' and shape == 'square':
        cv2.rectangle(lab, _pt(chest[0] - r, chest[1] - r),
                      _pt(chest[0] + r, chest[1] + r), _LOGO, -1)
    elif f.view == 'front' or (f.side and shape == 'band'):
        cv2.rectangle(lab, _pt(chest[0] - shoulder_half, chest[1] - r / 2),
                      _pt(chest[0] + shoulder_half, chest[1] + r / 2),
                      _LOGO, -1)


def _draw_backpack_and_strap(lab: np.ndarray, f: _Figure) -> None:
    """A backpack seen from the back or its straps seen from the front,
    and the strap of a shoulder bag."""
    cx, shoulder_y, body_h = f.cx, f.shoulder_y, f.body_h
    if f.ident['backpack'] is not None and f.view == 'back':
        bw = f.shoulder_half * 0.8
        corner = (f.lx(cx, shoulder_y) - bw, shoulder_y + 0.03 * body_h)
        cv2.rectangle(lab, _pt(*corner),
                      _pt(cx + bw, f.hip_y - 0.03 * body_h), _BACKPACK, -1)
    elif f.ident['backpack'] is not None and f.view == 'front':
        for sgn in (-1.0, 1.0):
            x = f.lx(cx + sgn * f.shoulder_half * 0.6, shoulder_y)
            cv2.line(lab, _pt(x, shoulder_y),
                     _pt(x, shoulder_y + 0.6 * f.torso_h), _BACKPACK,
                     max(1, int(f.arm_w * 0.35)))
    bag = f.ident['bag']
    if bag is not None and bag['style'] == 'shoulder':
        s = f.bag_side(bag)
        strap_from = (f.lx(cx - s * f.shoulder_half * 0.7, shoulder_y),
                      shoulder_y)
        strap_to = (cx + s * f.hip_half, f.hip_y - 0.02 * body_h)
        cv2.line(lab, _pt(*strap_from), _pt(*strap_to), _BAG,
                 max(1, int(f.arm_w * 0.3)))


def _draw_bag(lab: np.ndarray, f: _Figure, hands: List) -> None:
    """A shoulder bag at the hip, or a hand bag under the hand on its
    side."""
    bag = f.ident['bag']
    if bag is None:
        return
    s = f.bag_side(bag)
    bw = bag['size'] * f.body_h
    if bag['style'] == 'shoulder':
        bc = (f.cx + s * f.hip_half, f.hip_y)
    else:
        hand = hands[1] if (s > 0 or f.side) else hands[0]
        bc = (hand[0], hand[1] + bw * 0.45)
    cv2.rectangle(lab, _pt(bc[0] - bw * 0.5, bc[1] - bw * 0.4),
                  _pt(bc[0] + bw * 0.5, bc[1] + bw * 0.4), _BAG, -1)


def _draw_head(lab: np.ndarray, f: _Figure) -> None:
    """Hair as a slightly larger ellipse behind the face, so that it shows
    on top (front), all over (back) or behind (side)."""
    head_c, head_w, head_h = f.head_c, f.head_w, f.head_h
    side, facing = f.side, f.facing
    hair_axes = _pt(head_w * 0.56, head_h * 0.54)
    if f.ident['hair_style'] == 'shaved':
        hair_axes = _pt(head_w * 0.5, head_h * 0.5)
    hair_c = (head_c[0] - (facing * head_w * 0.12 if side else 0.0),
              head_c[1] - head_h * 0.04)
    cv2.ellipse(lab, _pt(*hair_c), hair_axes, 0, 0, 360, _HAIR, -1)
    if f.view != 'back':
        face_c = (head_c[0] + (facing * head_w * 0.12 if side else 0.0),
                  head_c[1] + head_h * 0.1)
        cv2.ellipse(lab, _pt(*face_c), _pt(head_w * 0.46, head_h * 0.42), 0,
                    0, 360, _SKIN, -1)
    elif f.ident['hair_style'] == 'long':
        cv2.rectangle(lab, _pt(head_c[0] - head_w * 0.5, head_c[1]),
                      _pt(head_c[0] + head_w * 0.5,
                          f.shoulder_y + 0.1 * f.body_h), _HAIR, -1)


def _draw_hat(lab: np.ndarray, f: _Figure) -> None:
    """A cap (crown, and its peak in front and side views) or a beanie."""
    hat = f.ident['hat']
    if hat is None:
        return
    head_c, head_w, head_h = f.head_c, f.head_w, f.head_h
    if hat['style'] != 'cap':
        cv2.ellipse(lab, _pt(head_c[0], head_c[1] - head_h * 0.05),
                    _pt(head_w * 0.58, head_h * 0.55), 0, 180, 360, _HAT, -1)
        return
    cv2.ellipse(lab, _pt(head_c[0], head_c[1] - head_h * 0.12),
                _pt(head_w * 0.56, head_h * 0.42), 0, 180, 360, _HAT, -1)
    if f.view == 'front':
        cv2.ellipse(lab, _pt(head_c[0], head_c[1] - head_h * 0.1),
                    _pt(head_w * 0.5, head_h * 0.1), 0, 0, 360, _HAT, -1)
    elif f.side:
        y = head_c[1] - head_h * 0.14
        cv2.rectangle(lab, _pt(head_c[0], y),
                      _pt(head_c[0] + f.facing * head_w * 0.85,
                          y + head_h * 0.1), _HAT, -1)


def draw_person(lab: np.ndarray, identity: Dict, pose: Dict, cx: float,
                top: float, body_h: float) -> Dict:
    """Draw the part labels of one person into a label map.

    Parts are drawn back to front: legs, pelvis, (side view) the far arm
    and the backpack, hair behind the shoulders, torso, logo, backpack or
    straps, the near arm(s), bag, head, hat.

    Args:
        lab (np.ndarray): uint8 label map of shape (H, W), drawn in place.
        identity (dict): From :func:`sample_identity`.
        pose (dict): From :func:`sample_pose`.
        cx (float): Horizontal centre of the hips, in pixels.
        top (float): Row of the top of the head.
        body_h (float): Height of the person in pixels.

    Returns:
        dict: Geometry the colouring needs (centre, shoulder row, widths).
    """
    f = _Figure(identity, pose, cx, top, body_h)
    _draw_legs(lab, f)
    _draw_pelvis(lab, f)
    hands = [None, None]
    if f.side:  # the far arm goes behind the torso
        hands[0] = _draw_arm(lab, f, 0, -1.0)
    _draw_behind_torso(lab, f)
    _draw_torso(lab, f)
    _draw_logo(lab, f)
    _draw_backpack_and_strap(lab, f)
    if f.side:
        hands[1] = _draw_arm(lab, f, 1, 1.0)
    else:
        hands[0] = _draw_arm(lab, f, 0, -1.0)
        hands[1] = _draw_arm(lab, f, 1, 1.0)
    _draw_bag(lab, f, hands)
    _draw_head(lab, f)
    _draw_hat(lab, f)
    return dict(
        cx=cx,
        shoulder_y=f.shoulder_y,
        width=max(f.shoulder_half, f.hip_half) * 2,
        body_h=body_h)


def colour_person(lab: np.ndarray, identity: Dict, geometry: Dict,
                  light_dir: float) -> np.ndarray:
    """Turn a label map into colours, with clothing pattern and shading.

    Args:
        lab (np.ndarray): uint8 label map of shape (H, W).
        identity (dict): From :func:`sample_identity`.
        geometry (dict): Returned by :func:`draw_person`.
        light_dir (float): In [-1, 1], the side the light comes from.

    Returns:
        np.ndarray: float32 RGB of shape (H, W, 3); zero off the person.
    """
    ident = identity
    lut = np.zeros((_NUM_LABELS, 3), np.float32)
    lut[_SKIN] = ident['skin']
    lut[_HAIR] = ident['hair']
    lut[_TOP] = ident['top']
    lut[_BOTTOM] = ident['bottom']
    lut[_SHOES] = ident['shoes']
    lut[_LOGO] = ident['second']
    if ident['hat'] is not None:
        lut[_HAT] = ident['hat']['colour']
    if ident['backpack'] is not None:
        lut[_BACKPACK] = ident['backpack']
    if ident['bag'] is not None:
        lut[_BAG] = ident['bag']['colour']
    rgb = lut[lab]

    h, w = lab.shape
    if ident['pattern'] in ('stripes', 'checks'):
        # Pattern coordinates follow the body, so stripes keep their count
        # whatever the camera scale.
        period = ident['period'] * geometry['body_h']
        rows = np.floor((np.arange(h) - geometry['shoulder_y']) / period)
        on = (rows % 2).astype(bool)[:, None]
        if ident['pattern'] == 'checks':
            cols = np.floor((np.arange(w) - geometry['cx']) / period)
            on = on ^ (cols % 2).astype(bool)[None, :]
        sel = (lab == _TOP) & on
        rgb[sel] = ident['second']

    # Cylindrical shading across the body and a light from one side.
    u = (np.arange(w, dtype=np.float32) - geometry['cx']) / max(
        1.0, geometry['width'])
    shade = 1.0 - 0.35 * np.clip(u * u * 2.5, 0, 1) + 0.12 * light_dir * u
    return rgb * shade[None, :, None]


def _occlude(img: np.ndarray, rng: np.random.Generator) -> None:
    """Draw a pole or a box (bench, bin, car) over the image, in place."""
    h, w = img.shape[:2]
    colour = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    if rng.random() < 0.5:
        pw = int(rng.uniform(0.07, 0.18) * w) + 1
        x0 = int(rng.integers(0, w - pw + 1))
        profile = 0.75 + 0.35 * np.sin(np.linspace(0, math.pi, pw))
        img[:, x0:x0 + pw] = colour * profile[None, :, None]
    else:
        bh = int(rng.uniform(0.2, 0.45) * h)
        bw = int(rng.uniform(0.4, 1.0) * w)
        x0 = int(rng.integers(-bw // 3, w - bw // 2))
        x0c, x1c = max(0, x0), min(w, x0 + bw)
        img[h - bh:, x0c:x1c] = colour
        img[h - bh:h - bh + 2, x0c:x1c] = colour * 0.6


def render_image(identity: Optional[Dict], camera: Dict, scene: np.ndarray,
                 rng: np.random.Generator, height: int, width: int,
                 distractor: bool = False) -> np.ndarray:
    """Render one detection crop of a person seen by a camera.

    Args:
        identity (dict | None): The person, or None for a crop of the
            scene alone.
        camera (dict): One camera of :func:`sample_cameras`.
        scene (np.ndarray): The scene of that camera (:func:`render_scene`).
        rng (numpy.random.Generator): Generator owned by this image.
        height (int): Output height.
        width (int): Output width.
        distractor (bool): Whether to render a bad detection: the person is
            shifted or enlarged so that the crop shows only part of them.

    Returns:
        np.ndarray: uint8 BGR image of shape (height, width, 3).
    """
    # Which part of the scene is behind the person at this moment.
    sh, sw = scene.shape[:2]
    y0 = int(rng.integers(0, sh - height + 1))
    x0 = int(rng.integers(0, sw - width + 1))
    img = scene[y0:y0 + height, x0:x0 + width].copy()
    img *= rng.uniform(0.9, 1.1)

    if identity is not None:
        view = VIEWS[int(rng.choice(3, p=camera['view_probs']))]
        pose = sample_pose(rng, identity, view)
        # Crop jitter: the detector box is off by a few pixels and its size
        # varies a little around the camera's typical scale.
        scale = camera['scale'] * rng.uniform(0.94, 1.06)
        shift_x = rng.uniform(-0.08, 0.08) * width
        shift_y = rng.uniform(-0.04, 0.04) * height
        if distractor:
            scale *= rng.uniform(1.0, 1.8)
            shift_x = rng.uniform(-0.5, 0.5) * width
            shift_y = rng.uniform(-0.3, 0.3) * height
        img = _paste_person(img, identity, pose, camera, rng, scale, shift_x,
                            shift_y)
        if rng.random() < 0.12 and not distractor:
            # A passer-by at the edge of the crop.
            other = sample_identity(rng)
            other_pose = sample_pose(rng, other, VIEWS[int(rng.integers(3))])
            side = rng.choice((-1.0, 1.0))
            img = _paste_person(img, other, other_pose, camera, rng, scale,
                                side * rng.uniform(0.6, 0.8) * width,
                                shift_y)
    if rng.random() < camera['occlusion']:
        _occlude(img, rng)
    return _camera_effects(img, camera, rng)


def _paste_person(img: np.ndarray, identity: Dict, pose: Dict, camera: Dict,
                  rng: np.random.Generator, scale: float, shift_x: float,
                  shift_y: float) -> np.ndarray:
    """Draw a person on a supersampled canvas and blend it into ``img``."""
    height, width = img.shape[:2]
    hs, ws = height * _SS, width * _SS
    body_h = scale * identity['height'] * hs
    top = (hs - body_h) / 2 + shift_y * _SS
    cx = ws / 2 + shift_x * _SS
    lab = np.zeros((hs, ws), np.uint8)
    geometry = draw_person(lab, identity, pose, cx, top, body_h)
    rgb = colour_person(lab, identity, geometry, camera['light_dir'])
    alpha = (lab > 0).astype(np.float32)

    # A soft shadow on the ground under the feet.
    shadow = np.zeros((height, width), np.float32)
    feet = (int(round(cx / _SS)), int(round((top + body_h) / _SS)))
    cv2.ellipse(shadow, feet, (max(1, int(geometry['width'] / _SS * 0.9)),
                               max(1, int(body_h / _SS * 0.025))), 0, 0, 360,
                0.35, -1)
    img = img * (1 - shadow[..., None])

    # Area reduction of colour (premultiplied) and coverage anti-aliases
    # the drawn edges.
    rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_AREA)
    return img * (1 - alpha[..., None]) + rgb


def _camera_effects(img: np.ndarray, camera: Dict,
                    rng: np.random.Generator) -> np.ndarray:
    """Apply a camera's lighting, colour cast, optics and sensor noise."""
    height, width = img.shape[:2]
    gain = camera['gain'] * rng.uniform(0.9, 1.1)
    img = img * (camera['cast'] * gain)
    # Uneven illumination across the frame.
    ramp = 1.0 + 0.2 * camera['light_dir'] * np.linspace(-1, 1, width)
    img = img * ramp[None, :, None].astype(np.float32)
    img = np.clip(img, 0, 1) ** camera['gamma']
    if camera['downscale'] < 1.0:
        small = (max(1, int(width * camera['downscale'])),
                 max(1, int(height * camera['downscale'])))
        img = cv2.resize(
            cv2.resize(img, small, interpolation=cv2.INTER_AREA),
            (width, height),
            interpolation=cv2.INTER_LINEAR)
    sigma = camera['blur'] * rng.uniform(0.8, 1.2)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, camera['noise'], img.shape).astype(np.float32)
    img = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[..., ::-1])
