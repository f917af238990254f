"""Side-view pictures of gait9dof18musc with Pillow: bones from the model's
own meshes, muscles coloured by activation, obstacles, ground and caption.

    renderer = SkeletonRenderer(env.unwrapped.sim.model, env.unwrapped.sim.state)
    image = renderer.draw(sim.state, sim.course.obstacles)      # PIL.Image, RGB
    stats = render_gif(env, policy.act, "gait.gif", seed=0)     # a whole episode

* ``meshes``: .vtp files read with OpenSim, drawn once into shaded sprites;
* ``scene``: :class:`SkeletonRenderer`, one frame;
* ``gif``: :class:`GifWriter`, frames streamed to disk with a fixed palette;
* ``episode``: run a policy and write a GIF or a single still.

Needs OpenSim, numpy and Pillow; never TensorFlow or MPI.
"""
from .episode import RenderStats, frame_count, render_gif, render_still
from .gif import MAX_FPS, GifWriter
from .scene import SkeletonRenderer

__all__ = ["GifWriter", "MAX_FPS", "RenderStats", "SkeletonRenderer", "frame_count", "render_gif", "render_still"]
