"""Bone meshes of an OpenSim model, turned once into shaded 2D sprites.

The model's bodies carry ``Mesh`` geometry naming ``.vtp`` files (the
``Geometry/`` folder next to the ``.osim``); OpenSim's own reader
(``PolygonalMesh.loadFile``) gives their vertices and faces. The model is
planar: every frame turns only about the ground z axis, so a frame's rotation
in ground is ``Rz(angle) @ R_ref`` with ``R_ref`` its rotation in the reference
pose. A mesh seen side-on therefore always looks the same up to an in-plane
rotation, and can be drawn once, in its reference orientation, as an RGBA
sprite (flat-shaded triangles, far ones first, supersampled for smooth edges);
each video frame only rotates and pastes ~20 small images.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import opensim
from PIL import Image, ImageDraw, ImageFilter

#: Direction the light comes from, in ground (x forward, y up, z towards the viewer).
LIGHT_DIRECTION = np.array([-0.35, 0.55, 1.0]) / np.linalg.norm([-0.35, 0.55, 1.0])
#: Share of a face's brightness that does not depend on the light.
AMBIENT = 0.38


@dataclasses.dataclass(frozen=True)
class MeshPiece:
    """One ``Mesh`` component: its polygons in the frame it is attached to."""

    name: str
    file: Path
    frame_path: str
    """Absolute component path of the frame the mesh hangs on (usually a body)."""
    vertices: np.ndarray
    """(n, 3) vertex positions in that frame, scale factors applied, metres."""
    faces: np.ndarray
    """(m, k) vertex indices of each polygon (triangles, quads, a few larger),
    shorter ones padded by repeating their last vertex."""
    face_sizes: np.ndarray
    """(m,) vertices of each polygon."""


@dataclasses.dataclass(frozen=True)
class Sprite:
    """A mesh drawn side-on in its reference orientation."""

    image: Image.Image
    """RGBA, y pointing down as in every image."""
    origin: Tuple[float, float]
    """Pixel (column, row) of the mesh frame's origin in ``image``; may lie outside it."""


def mesh_search_dirs(model: opensim.Model) -> List[Path]:
    """Where OpenSim itself looks for mesh files: next to the model file and
    in its ``Geometry/`` subfolder."""
    model_dir = Path(model.getInputFileName()).resolve().parent
    return [model_dir, model_dir / "Geometry"]


def load_mesh_pieces(model: opensim.Model) -> List[MeshPiece]:
    """Every visible ``Mesh`` attached to a frame of ``model``.

    A mesh whose file is not found is skipped with one warning naming all of
    them (the render still shows the rest and the muscles)."""
    dirs = mesh_search_dirs(model)
    pieces, missing = [], []
    for mesh in _meshes(model):
        if not mesh.get_Appearance().get_visible():
            continue
        filename = mesh.getGeometryFilename()
        path = next((d / filename for d in dirs if (d / filename).is_file()), None)
        if path is None:
            missing.append(filename)
            continue
        vertices, faces, sizes = read_mesh_file(path)
        if len(faces) == 0:
            continue  # nothing to draw
        scale = mesh.get_scale_factors()
        vertices = vertices * np.array([scale[0], scale[1], scale[2]])
        pieces.append(MeshPiece(mesh.getName(), path, mesh.getFrame().getAbsolutePathString(), vertices, faces,
                                sizes))
    if missing:
        warnings.warn(f"mesh files not found in {[str(d) for d in dirs]}: {missing}; these bones are not drawn",
                      stacklevel=2)
    return pieces


def _meshes(model: opensim.Model):
    # getComponentsList() walks every component; only frames carry geometry.
    frames = model.getFrameList()
    for frame in frames:
        for i in range(frame.getPropertyByName("attached_geometry").size()):
            mesh = opensim.Mesh.safeDownCast(frame.get_attached_geometry(i))
            if mesh is not None:
                yield mesh


def read_mesh_file(path: os.PathLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (n, 3), polygons (m, k) and polygon sizes (m,) of a .vtp/.obj/.stl
    file, read by OpenSim (SimTK ``PolygonalMesh``) so that we display what
    OpenSim displays. Polygons shorter than k repeat their last vertex, which
    changes neither their outline nor their Newell normal. Degenerate polygons
    (fewer than 3 vertices) are dropped."""
    mesh = opensim.PolygonalMesh()
    try:
        mesh.loadFile(str(path))
    except RuntimeError as err:
        raise ValueError(f"OpenSim could not read the mesh file {str(path)!r}: {err}") from err
    vertices = np.array([_vec3(mesh.getVertexPosition(i)) for i in range(mesh.getNumVertices())]).reshape(-1, 3)
    polygons = [[mesh.getFaceVertex(f, k) for k in range(mesh.getNumVerticesForFace(f))]
                for f in range(mesh.getNumFaces())]
    polygons = [p for p in polygons if len(p) >= 3]
    sizes = np.array([len(p) for p in polygons], dtype=np.int64)
    width = int(sizes.max()) if len(sizes) else 3
    faces = np.array([p + [p[-1]] * (width - len(p)) for p in polygons], dtype=np.int64).reshape(-1, width)
    return vertices, faces, sizes


def _vec3(v) -> Tuple[float, float, float]:
    return (v[0], v[1], v[2])


def rotation_matrix(rotation) -> np.ndarray:
    """A SimTK Rotation as a (3, 3) numpy array."""
    return np.array([[rotation.get(i, j) for j in range(3)] for i in range(3)])


def face_shades(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Brightness in [AMBIENT, 1] of each polygon (rows of ``faces``, padded as
    in :func:`read_mesh_file`) of ``points`` (in ground orientation), lit from
    ``LIGHT_DIRECTION``; normals by Newell's method, lit on both sides (mesh
    files do not agree on a winding)."""
    corners = points[faces]  # (m, k, 3)
    normals = np.cross(corners, np.roll(corners, -1, axis=1)).sum(axis=1)
    length = np.linalg.norm(normals, axis=1)
    length[length == 0] = 1.0
    lambert = np.abs(normals @ LIGHT_DIRECTION) / length
    return AMBIENT + (1.0 - AMBIENT) * lambert


def rasterise(piece: MeshPiece, reference_rotation: np.ndarray, pixels_per_metre: float,
              color: Tuple[int, int, int], outline: Optional[Tuple[int, int, int]] = None,
              supersample: int = 3) -> Sprite:
    """Draw ``piece`` seen from +z in its reference orientation.

    ``reference_rotation``: (3, 3) rotation of the piece's frame in ground in
    the reference pose. Polygons are painted far to near (painter's algorithm),
    each in ``color`` times its shade, at ``supersample`` times the final
    resolution and then reduced, which anti-aliases the edges; ``outline``, if
    given, is the colour of a one-pixel rim around the silhouette."""
    points = piece.vertices @ reference_rotation.T  # frame -> ground orientation
    faces, sizes = piece.faces, piece.face_sizes
    depth = points[faces, 2].max(axis=1)  # padding repeats a vertex: max is unaffected, a mean would be
    shades = face_shades(points, faces)
    scale = pixels_per_metre * supersample
    pad = 2 * supersample
    low = points[:, :2].min(axis=0)
    high = points[:, :2].max(axis=0)
    width = int(np.ceil((high[0] - low[0]) * scale)) + 2 * pad
    height = int(np.ceil((high[1] - low[1]) * scale)) + 2 * pad
    # Pixel coordinates: x to the right, y down.
    u = (points[:, 0] - low[0]) * scale + pad
    v = (high[1] - points[:, 1]) * scale + pad
    image = Image.new("RGBA", (width, height), (*color, 0))
    draw = ImageDraw.Draw(image)
    fills = np.clip(np.outer(shades, color), 0, 255).astype(np.uint8).tolist()
    us, vs = u[faces].tolist(), v[faces].tolist()
    for index in np.argsort(depth, kind="stable").tolist():
        size = sizes[index]
        draw.polygon(list(zip(us[index][:size], vs[index][:size])), fill=(*fills[index], 255))
    # Reduce with premultiplied alpha so that edges fade rather than darken.
    small = image.convert("RGBa").reduce(supersample).convert("RGBA")
    if outline is not None:
        # A one-pixel darker rim under the bone: pale bones on a pale background need an edge.
        rim = Image.new("RGBA", small.size, (*outline, 0))
        rim.putalpha(small.getchannel("A").filter(ImageFilter.MaxFilter(3)))
        small = Image.alpha_composite(rim, small)
    origin = ((0.0 - low[0]) * scale + pad, (high[1] - 0.0) * scale + pad)
    return Sprite(small, (origin[0] / supersample, origin[1] / supersample))
