"""``l2run render``: a side view of one episode as an animated GIF, or one still.

    l2run render --policy runs/round2 --out gait.gif --seed 0
    l2run render --policy random --out gait.gif --every 1 --fps 50 --width 960 --height 540
    l2run render --policy runs/round2 --frame 150 --out frame.png     # one step, 1280 x 720
    l2run render --policy runs/round2 --seed 106 --last 1.5 --every 1 --out fall.gif   # a fall, slowed 4x

Bones come from the model's own meshes, muscles are coloured by activation
(blue inactive, red active), the far (left) leg is drawn darker and behind.
An exported policy runs on the env it was trained on (observation features,
frame skip: read from the policy file) with the course and integrator given here.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from .cli_types import accuracy, float_in, int_in, non_negative_int, obstacle_count, output_file, positive_int

#: Image sizes when --width/--height are not given.
GIF_SIZE = (640, 360)
STILL_SIZE = (1280, 720)
MIN_SIZE, MAX_SIZE = 64, 4096


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "render", help="draw an episode of a policy as an animated GIF (or one step as a PNG)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--policy", required=True,
                        help="a run directory, an exported policy .npz, 'random' or 'zero'")
    parser.add_argument("--out", required=True, type=output_file(),
                        help="the .gif to write (with --frame: an image file, e.g. .png)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="course seed (and the random policy's)")
    parser.add_argument("--difficulty", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--max-obstacles", type=obstacle_count, default=10)
    parser.add_argument("--accuracy", type=accuracy, default=1e-3,
                        help="integrator accuracy (1e-3: the 2017 grader's)")
    parser.add_argument("--max-steps", type=positive_int, default=1000, help="episode length limit (10 ms steps)")
    parser.add_argument("--fps", type=float, default=25.0,
                        help="GIF frames per second (at most 50: viewers slow faster GIFs down)")
    parser.add_argument("--every", type=positive_int, default=2,
                        help="draw every k-th step (with --fps 25, k=4 plays in real time)")
    parser.add_argument("--width", type=int_in(MIN_SIZE, MAX_SIZE), default=None,
                        help=f"image width in pixels (default {GIF_SIZE[0]}; {STILL_SIZE[0]} with --frame)")
    parser.add_argument("--height", type=int_in(MIN_SIZE, MAX_SIZE), default=None,
                        help=f"image height in pixels (default {GIF_SIZE[1]}; {STILL_SIZE[1]} with --frame)")
    parser.add_argument("--last", type=float_in(0.0, 10.0, include_high=True), default=None, metavar="SECONDS",
                        help="draw only the episode's last SECONDS (e.g. 1.5: the steps before a fall, "
                             "which `l2run falls` profiles); the whole episode is still simulated")
    parser.add_argument("--frame", type=non_negative_int, default=None, metavar="N",
                        help="write only the state after step N (0: the initial pose) as an image "
                             "(--fps and --every do not apply)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _fail(message: str):
    raise SystemExit(f"l2run render: {message}")


def _check_args(args) -> tuple[int, int]:
    """Validate, before anything slow runs, what the parser could not: values that
    depend on each other or on l2run.rendering (single values were checked as
    the command line was parsed, by experiments.cli_types); returns the image size."""
    from PIL import Image

    from l2run.rendering import MAX_FPS

    if not 0 < args.fps <= MAX_FPS:
        _fail(f"--fps must be in (0, {MAX_FPS:g}], got {args.fps:g} (GIF viewers stretch delays under "
              "20 ms; draw fewer steps with --every to play faster)")
    if args.frame is not None and args.last is not None:
        _fail(f"--last {args.last:g} draws a GIF and --frame {args.frame} one still; give one of them")
    if args.frame is not None and not args.frame <= args.max_steps:
        _fail(f"--frame must be in [0, --max-steps={args.max_steps}], got {args.frame}")
    default = STILL_SIZE if args.frame is not None else GIF_SIZE
    size = (default[0] if args.width is None else args.width, default[1] if args.height is None else args.height)

    out: Path = args.out
    suffix = out.suffix.lower()
    if args.frame is None and suffix != ".gif":
        _fail(f"--out must end in .gif (got {str(out)!r}); use --frame N for a single image")
    if args.frame is not None:
        format_name = Image.registered_extensions().get(suffix)
        if format_name is None or format_name not in Image.SAVE:
            _fail(f"cannot write a still as {str(out)!r}: unknown image extension {suffix or '(none)'!r}; "
                  "use e.g. .png")
    from .policies import check_policy_spec

    try:
        check_policy_spec(args.policy)
    except ValueError as err:
        _fail(str(err))
    return size


def _label(spec: str) -> str:
    if spec == "random":
        return "random policy"
    if spec == "zero":
        return "zero excitation"
    path = Path(spec).resolve()
    return path.name if path.is_dir() else f"{path.parent.name}/{path.name}"


def _build(args):
    """The env (features and action repeat as the policy was trained) and the policy."""
    from .envs import make_env
    from .evaluation import policy_env_config
    from .policies import make_policy

    try:
        config = policy_env_config(
            args.policy, difficulty=args.difficulty, max_obstacles=args.max_obstacles,
            integrator_accuracy=args.accuracy, max_steps=args.max_steps,
            reward={},  # the reward is not drawn; skip the shaped terms
        )
    except (ValueError, FileNotFoundError) as err:  # unreadable policy file or env config in it
        _fail(f"cannot load policy {args.policy!r}: {err}")
    # Every 10 ms step is drawn, so the action repeat happens here, not in FrameSkip.
    env = make_env(dataclasses.replace(config, frame_skip=1))
    try:
        policy = make_policy(args.policy, env.observation_space, env.action_space, seed=args.seed)
    except (ValueError, FileNotFoundError) as err:
        _fail(f"cannot load policy {args.policy!r}: {err}")
    return config, env, policy


def run(args) -> int:
    size = _check_args(args)
    # Heavy imports (OpenSim) only now: `l2run --help` imports every command module.
    from l2run.constants import STEP_SECONDS
    from l2run.rendering import render_still

    config, env, policy = _build(args)
    action_repeat = config.frame_skip
    title = f"{_label(args.policy)} · seed {args.seed} · difficulty {config.difficulty}"
    print(f"env: difficulty {config.difficulty}, {config.max_obstacles} obstacles, accuracy "
          f"{config.integrator_accuracy:g}, features {'on' if config.features else 'off'}, "
          f"action repeat {action_repeat}, max {config.max_steps} steps")
    try:
        if args.frame is not None:
            stats = render_still(env, policy.act, args.out, args.frame, seed=args.seed, size=size,
                                 action_repeat=action_repeat, title=title)
        else:
            stats = _render_gif(args, env, policy, size, action_repeat, title)
    except ValueError as err:  # e.g. the episode ended before --frame
        _fail(str(err))

    ms_per_step = 1000 * stats.simulate_s / max(1, stats.steps)
    ms_per_frame = 1000 * stats.draw_s / max(1, stats.frames)
    print(f"episode: {stats.steps} steps ({stats.end}), pelvis at {stats.distance:.2f} m"
          + (f"; simulator error: {stats.sim_error}" if stats.sim_error else ""))
    if args.frame is not None:
        print(f"wrote {args.out} ({size[0]}x{size[1]}, step {args.frame}) in {stats.total_s:.1f} s: "
              f"simulation {stats.simulate_s:.1f} s, meshes {stats.setup_s:.1f} s, drawing {ms_per_frame:.0f} ms")
        return 0
    speed = args.every * args.fps * STEP_SECONDS  # simulated seconds per second of GIF
    shown = "" if args.last is None else f" (the last {args.last:g} s of {stats.steps} steps)"
    print(f"wrote {args.out}: {stats.frames} frames{shown} {size[0]}x{size[1]} at {args.fps:g} fps, every "
          f"{args.every} step(s) ({speed:.2g}x real time), {args.out.stat().st_size / 1e6:.1f} MB")
    print(f"time {stats.total_s:.1f} s: simulation {stats.simulate_s:.1f} s ({ms_per_step:.1f} ms/step), "
          f"meshes {stats.setup_s:.1f} s, drawing {stats.draw_s:.1f} s ({ms_per_frame:.1f} ms/frame), "
          f"GIF encoding {stats.encode_s:.1f} s ({1000 * stats.encode_s / max(1, stats.frames):.1f} ms/frame); "
          f"{stats.frames / max(stats.total_s, 1e-9):.1f} frames/s overall")
    return 0


def _steps(seconds: float) -> int:
    """10 ms steps in ``seconds``, at least one."""
    from l2run.constants import STEP_SECONDS

    return max(1, round(seconds / STEP_SECONDS))


def _render_gif(args, env, policy, size, action_repeat, title):
    from l2run.rendering import render_gif

    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=args.max_steps, unit="step", desc="render", leave=False)
    try:
        return render_gif(env, policy.act, args.out, seed=args.seed, every=args.every, fps=args.fps, size=size,
                          action_repeat=action_repeat, title=title,
                          progress=(lambda step: bar.update(1)) if bar is not None else None,
                          last_steps=None if args.last is None else _steps(args.last))
    finally:
        if bar is not None:
            bar.close()
