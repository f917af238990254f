"""Side view of gait9dof18musc: bones, muscles, obstacles, ground, caption.

Drawn with Pillow alone: bone sprites (see :mod:`.meshes`) rotated and pasted
per frame, muscles as polylines through their current path points coloured by
activation, obstacles as shaded discs cut by the ground. The camera looks at
the model's right side from +z (x forward to the right, y up) and follows the
pelvis horizontally; the ground stays at a fixed height in the image.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Tuple

import numpy as np
import opensim
from PIL import Image, ImageDraw, ImageFont

from .meshes import AMBIENT, LIGHT_DIRECTION, MeshPiece, Sprite, load_mesh_pieces, rasterise, rotation_matrix

RGB = Tuple[int, int, int]

BACKGROUND: RGB = (250, 250, 247)
GROUND_FILL: RGB = (226, 220, 206)
GROUND_LINE: RGB = (90, 84, 74)
TEXT: RGB = (35, 35, 35)
MUTED_TEXT: RGB = (105, 105, 105)
BONE: RGB = (238, 228, 204)
#: Brightness of the rim drawn around each bone relative to the bone.
BONE_OUTLINE_SHADE = 0.55
OBSTACLE: RGB = (120, 132, 150)
#: Muscle colour at activation 0 and 1.
INACTIVE: RGB = (40, 90, 230)
ACTIVE: RGB = (225, 30, 30)
#: Brightness of the far side (the left leg, seen from the right) relative to the near side.
FAR_SIDE_SHADE = 0.68
#: Meshes and muscles whose reference-pose centre lies beyond this distance (m)
#: from the mid-sagittal plane belong to one side.
SIDE_THRESHOLD = 0.02

#: Vertical framing: metres shown above and below the ground line.
VIEW_ABOVE_GROUND = 1.95
VIEW_BELOW_GROUND = 0.28
#: Where the pelvis sits horizontally, as a fraction of the image width.
PELVIS_SCREEN_X = 0.42
#: Muscle line width (m) for a muscle of REFERENCE_FORCE; width grows with the
#: square root of the maximal isometric force (~ the muscle's cross-section).
MUSCLE_WIDTH = 0.012
REFERENCE_FORCE = 3000.0


def lerp_color(a: RGB, b: RGB, t: float) -> RGB:
    t = min(max(float(t), 0.0), 1.0)
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def shade(color: RGB, factor: float) -> RGB:
    return tuple(int(round(min(255.0, c * factor))) for c in color)


def activation_color(activation: float) -> RGB:
    """Blue (inactive) to red (fully active)."""
    return lerp_color(INACTIVE, ACTIVE, activation)


def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's embedded font (Pillow >= 10.1 with FreeType, as every wheel has):
    no system font needed, the same glyphs on every machine."""
    return ImageFont.load_default(size=size)


@dataclasses.dataclass
class _Bone:
    piece: MeshPiece
    sprite: Sprite
    reference_rotation: np.ndarray  # (3, 3) frame rotation in ground, reference pose
    side: int  # -1 far, 0 middle, +1 near


@dataclasses.dataclass
class _Muscle:
    name: str
    width_px: int
    side: int


class SkeletonRenderer:
    """Draws a model's state as an RGB image of ``width`` x ``height`` pixels.

    Args:
        model: the OpenSim model, system built (``initSystem()`` done).
        reference_state: a state of ``model`` in which mesh orientations are
            sampled; any pose works for a planar model (the default pose does).
        width, height: image size in pixels; the scale (pixels per metre)
            follows from the height.

    Handles to the model's components are looked up by path for every frame,
    so the renderer stays valid across the simulator's ``initSystem()`` calls.
    Building it costs ~0.2-0.4 s (meshes read and drawn once); a frame ~3-5 ms.
    """

    def __init__(self, model: opensim.Model, reference_state: opensim.State, width: int = 640, height: int = 360):
        if width < 64 or height < 64:
            raise ValueError(f"image size must be at least 64 x 64 pixels, got {width} x {height}")
        self.model = model
        self.width, self.height = int(width), int(height)
        self.pixels_per_metre = self.height / (VIEW_ABOVE_GROUND + VIEW_BELOW_GROUND)
        self.ground_row = self.height - VIEW_BELOW_GROUND * self.pixels_per_metre
        self.pelvis_column = PELVIS_SCREEN_X * self.width
        model.realizePosition(reference_state)
        self._bones = self._prepare_bones(reference_state)
        self._muscles = self._prepare_muscles(reference_state)
        self._pelvis_path = self._pelvis_frame_path()
        scale = self.height / 360.0
        self._font = _font(max(10, round(15 * scale)))
        self._small_font = _font(max(9, round(12 * scale)))
        self._line = max(1, round(1.5 * scale))
        self._background = Image.new("RGB", (self.width, self.height), BACKGROUND)
        self._spheres: dict = {}

    # -- preparation ----------------------------------------------------------
    def _frame(self, path: str) -> opensim.Frame:
        return opensim.Frame.safeDownCast(self.model.getComponent(path))

    def _prepare_bones(self, state) -> List[_Bone]:
        bones = []
        for piece in load_mesh_pieces(self.model):
            transform = self._frame(piece.frame_path).getTransformInGround(state)
            rotation = rotation_matrix(transform.R())
            origin = np.array([transform.p()[i] for i in range(3)])
            centre_z = float((piece.vertices @ rotation.T + origin)[:, 2].mean())
            side = _side(centre_z)
            color = BONE if side >= 0 else shade(BONE, FAR_SIDE_SHADE)
            sprite = rasterise(piece, rotation, self.pixels_per_metre, color, outline=shade(color, BONE_OUTLINE_SHADE))
            bones.append(_Bone(piece, sprite, rotation, side))
        return bones

    def _prepare_muscles(self, state) -> List[_Muscle]:
        muscles = []
        muscle_set = self.model.getMuscles()
        for i in range(muscle_set.getSize()):
            muscle = muscle_set.get(i)
            points = _path_points(muscle, state)
            relative = math.sqrt(max(muscle.getMaxIsometricForce(), 1.0) / REFERENCE_FORCE)
            width = MUSCLE_WIDTH * min(max(relative, 0.6), 1.6) * self.pixels_per_metre
            muscles.append(_Muscle(muscle.getName(), max(1, round(width)), _side(points[:, 2].mean())))
        return muscles

    def _pelvis_frame_path(self) -> str:
        bodies = self.model.getBodySet()
        body = bodies.get("pelvis") if bodies.contains("pelvis") else bodies.get(0)
        return body.getAbsolutePathString()

    # -- projection -------------------------------------------------------------
    def to_pixels(self, x, y, camera_x: float):
        """Ground (x, y) in metres -> image (column, row)."""
        column = self.pelvis_column + (np.asarray(x) - camera_x) * self.pixels_per_metre
        row = self.ground_row - np.asarray(y) * self.pixels_per_metre
        return column, row

    def camera_x(self, state: opensim.State) -> float:
        """Ground x the camera centres on: the pelvis origin."""
        return self._frame(self._pelvis_path).getPositionInGround(state)[0]

    # -- drawing ----------------------------------------------------------------
    def draw(self, state: opensim.State, obstacles: Optional[np.ndarray] = None,
             caption: Optional[str] = None, title: Optional[str] = None, note: str = "") -> Image.Image:
        """The image of ``state``.

        obstacles: (n, 3) absolute (x, y, radius) of the course's spheres.
        caption: text at the top left (default: time and pelvis distance),
        followed by ``note`` (e.g. "fell"); title: smaller text at the top
        right (e.g. the policy and seed).
        """
        self.model.realizeVelocity(state)
        camera_x = self.camera_x(state)
        image = self._background.copy()
        draw = ImageDraw.Draw(image)
        self._draw_obstacles(image, obstacles, camera_x)
        self._draw_ground(draw, camera_x)
        muscle_set = self.model.getMuscles()
        for side in (-1, 0, 1):
            for bone in self._bones:
                if bone.side == side:
                    self._paste_bone(image, bone, state, camera_x)
            for i, muscle in enumerate(self._muscles):
                if muscle.side == side:
                    self._draw_muscle(draw, muscle_set.get(i), muscle, state, camera_x)
        if caption is None:
            caption = f"t = {state.getTime():.2f} s    distance = {camera_x:.2f} m"
        if note:
            caption = f"{caption}    {note}"
        self._draw_texts(draw, caption, title)
        return image

    def _paste_bone(self, image: Image.Image, bone: _Bone, state, camera_x: float) -> None:
        transform = self._frame(bone.piece.frame_path).getTransformInGround(state)
        turn = rotation_matrix(transform.R()) @ bone.reference_rotation.T  # Rz(angle) in a planar model
        angle = math.atan2(turn[1, 0], turn[0, 0])
        origin = transform.p()
        x0, y0 = self.to_pixels(origin[0], origin[1], camera_x)
        sprite = bone.sprite
        c, s = math.cos(angle), math.sin(angle)
        ou, ov = sprite.origin
        w, h = sprite.image.size
        # Sprite pixel (u, v) lands at x0 + c (u - ou) + s (v - ov), y0 - s (u - ou) + c (v - ov):
        # image rows grow downwards, so a counter-clockwise turn in ground is clockwise here.
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64) - (ou, ov)
        xs = x0 + c * corners[:, 0] + s * corners[:, 1]
        ys = y0 - s * corners[:, 0] + c * corners[:, 1]
        left, top = math.floor(xs.min()), math.floor(ys.min())
        right, bottom = math.ceil(xs.max()), math.ceil(ys.max())
        if right < 0 or bottom < 0 or left > self.width or top > self.height:
            return
        dx, dy = left - x0, top - y0
        # Pillow wants the inverse map: output pixel -> sprite pixel.
        coefficients = (c, -s, ou + c * dx - s * dy, s, c, ov + s * dx + c * dy)
        turned = sprite.image.transform((right - left, bottom - top), Image.Transform.AFFINE, coefficients,
                                        resample=Image.Resampling.BILINEAR)
        image.paste(turned, (left, top), turned)

    def _draw_muscle(self, draw: ImageDraw.ImageDraw, osim_muscle, muscle: _Muscle, state, camera_x: float) -> None:
        points = _path_points(osim_muscle, state)
        xs, ys = self.to_pixels(points[:, 0], points[:, 1], camera_x)
        color = activation_color(osim_muscle.getActivation(state))
        if muscle.side < 0:
            color = shade(color, FAR_SIDE_SHADE)
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=color, width=muscle.width_px, joint="curve")
        radius = muscle.width_px / 2.0
        for x, y in ((xs[0], ys[0]), (xs[-1], ys[-1])):  # round ends
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)

    def _draw_obstacles(self, image: Image.Image, obstacles, camera_x: float) -> None:
        if obstacles is None or len(obstacles) == 0:
            return
        for x, y, radius in np.asarray(obstacles, dtype=np.float64).reshape(-1, 3):
            cx, cy = self.to_pixels(x, y, camera_x)
            r = radius * self.pixels_per_metre
            if cx + r < 0 or cx - r > self.width:
                continue
            key = round(r * 4) / 4  # radii of a course are few: one sprite each
            if key not in self._spheres:
                self._spheres[key] = sphere_sprite(key, OBSTACLE)
            sprite = self._spheres[key]
            half = sprite.width / 2.0
            image.paste(sprite, (round(cx - half), round(cy - half)), sprite)

    def _draw_ground(self, draw: ImageDraw.ImageDraw, camera_x: float) -> None:
        row = self.ground_row
        draw.rectangle((0, row, self.width, self.height), fill=GROUND_FILL)
        draw.line((0, row, self.width, row), fill=GROUND_LINE, width=max(2, self._line))
        left_x = camera_x - self.pelvis_column / self.pixels_per_metre
        right_x = left_x + self.width / self.pixels_per_metre
        major = max(3, round(self.height / 50))
        for half_metres in range(math.floor(left_x * 2), math.ceil(right_x * 2) + 1):
            column, _ = self.to_pixels(half_metres / 2.0, 0.0, camera_x)
            whole = half_metres % 2 == 0
            length = major if whole else major * 0.5
            draw.line((column, row, column, row + length), fill=GROUND_LINE, width=self._line)
            if whole:
                draw.text((column, row + major + 2), f"{half_metres // 2} m", fill=MUTED_TEXT,
                          font=self._small_font, anchor="mt")

    def _draw_texts(self, draw: ImageDraw.ImageDraw, caption: str, title: Optional[str]) -> None:
        margin = max(6, round(self.height / 45))
        draw.text((margin, margin), caption, fill=TEXT, font=self._font)
        right, top = self.width - margin, margin
        line_height = self._small_font.getbbox("Ag")[3] + max(3, round(self.height / 120))
        if title:
            draw.text((right, top), title, fill=MUTED_TEXT, font=self._small_font, anchor="ra")
            top += line_height
        # Activation legend at the top right: "muscle activation 0 [blue..red] 1".
        bar_width, bar_height = round(self.width / 8), max(4, round(self.height / 60))
        middle = top + line_height / 2
        draw.text((right, middle), "1", fill=MUTED_TEXT, font=self._small_font, anchor="rm")
        bar_right = right - self._small_font.getlength("1") - 4
        for i in range(bar_width):
            column = bar_right - bar_width + i
            draw.line((column, middle - bar_height / 2, column, middle + bar_height / 2),
                      fill=activation_color(i / max(1, bar_width - 1)))
        draw.text((bar_right - bar_width - 4, middle), "muscle activation  0", fill=MUTED_TEXT,
                  font=self._small_font, anchor="rm")

    # -- colours ----------------------------------------------------------------
    def palette(self) -> List[RGB]:
        """At most 256 colours covering what :meth:`draw` paints, for GIF frames
        that share one palette (no colour flicker between frames)."""
        colors: List[RGB] = [BACKGROUND, GROUND_FILL, GROUND_LINE, TEXT, MUTED_TEXT, (255, 255, 255), (0, 0, 0)]
        colors += [lerp_color(BACKGROUND, TEXT, t) for t in np.linspace(0.1, 0.9, 12)]
        colors += [lerp_color(GROUND_FILL, GROUND_LINE, t) for t in np.linspace(0.1, 0.9, 6)]
        for side_shade in (1.0, FAR_SIDE_SHADE):
            colors += [shade(BONE, side_shade * s) for s in np.linspace(0.3, 1.0, 36)]
            colors += [shade(activation_color(a), side_shade) for a in np.linspace(0.0, 1.0, 32)]
        colors += [shade(OBSTACLE, s) for s in np.linspace(0.5, 1.4, 12)]
        colors += [lerp_color(BACKGROUND, shade(BONE, 0.6), t) for t in (0.3, 0.6)]
        colors += [lerp_color(BACKGROUND, INACTIVE, t) for t in (0.3, 0.6)]
        unique = list(dict.fromkeys(colors))
        return unique[:256]


def sphere_sprite(radius_px: float, color: RGB) -> Image.Image:
    """An RGBA disc shaded as a sphere lit from ``LIGHT_DIRECTION`` (the bones'
    light), with a soft highlight and an anti-aliased edge."""
    size = 2 * math.ceil(radius_px) + 2
    centre = size / 2.0
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    nx = (xs - centre) / radius_px
    ny = (centre - ys) / radius_px
    nz = np.sqrt(np.clip(1.0 - nx ** 2 - ny ** 2, 0.0, None))
    lambert = np.clip(nx * LIGHT_DIRECTION[0] + ny * LIGHT_DIRECTION[1] + nz * LIGHT_DIRECTION[2], 0.0, None)
    brightness = AMBIENT + (1.0 - AMBIENT) * lambert
    highlight = lambert ** 24 * 0.35
    rgb = np.clip(np.asarray(color, dtype=np.float64) * brightness[..., None] + 255 * highlight[..., None], 0, 255)
    distance = np.hypot(xs - centre, ys - centre)
    alpha = np.clip(radius_px + 0.5 - distance, 0.0, 1.0) * 255
    return Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8), "RGBA")


def _side(z: float) -> int:
    if z > SIDE_THRESHOLD:
        return 1
    if z < -SIDE_THRESHOLD:
        return -1
    return 0


def _path_points(muscle, state) -> np.ndarray:
    """(n, 3) ground positions of the muscle's current path points."""
    path = muscle.getGeometryPath().getCurrentPath(state)
    points = np.empty((path.getSize(), 3))
    for j in range(path.getSize()):
        p = path.get(j).getLocationInGround(state)
        points[j] = (p[0], p[1], p[2])
    return points
