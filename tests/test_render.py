"""l2run render on the real simulator (no mocks): GIF frames, stills, errors."""
import math
import subprocess
import sys

import numpy as np
import opensim
import pytest
from PIL import Image

import l2run
from baselines_ppo import export
from experiments.cli import main
from l2run.rendering import GifWriter, SkeletonRenderer, frame_count

# Small images and the training accuracy keep each run to a second or two.
FAST = ["--accuracy", "3e-2", "--width", "160", "--height", "96", "--quiet"]


def gif_frames(path):
    with Image.open(path) as gif:
        frames, durations = [], []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
            durations.append(gif.info["duration"])
        return gif.size, frames, durations


def test_gif_has_one_frame_per_step_and_the_model_moves(tmp_path, capsys):
    out = tmp_path / "gait.gif"
    assert main(["render", "--policy", "random", "--out", str(out), "--max-steps", "12", "--every", "1",
                 "--fps", "20", *FAST]) == 0
    size, frames, durations = gif_frames(out)
    assert size == (160, 96) and len(frames) == 12
    assert durations == [50] * 12
    below_caption = slice(25, None)  # the caption's time changes in every frame anyway
    assert not np.array_equal(frames[0][below_caption], frames[-1][below_caption])
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    printed = capsys.readouterr().out
    assert "12 frames" in printed and "ms/frame" in printed and "ms/step" in printed
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


@pytest.mark.parametrize("steps, every", [(12, 5), (10, 5), (7, 3)])
def test_every_k_gives_ceil_steps_over_k_frames(tmp_path, steps, every):
    out = tmp_path / "gait.gif"
    assert main(["render", "--policy", "zero", "--out", str(out), "--max-steps", str(steps), "--every", str(every), *FAST]) == 0
    assert len(gif_frames(out)[1]) == math.ceil(steps / every) == frame_count(steps, every)


def test_episode_that_falls_ends_with_the_fall(tmp_path, capsys):
    out = tmp_path / "fall.gif"
    main(["render", "--policy", "random", "--out", str(out), "--every", "10", *FAST])
    printed = capsys.readouterr().out
    steps = int(printed.split("episode: ")[1].split(" steps")[0])
    assert "(fell)" in printed and 50 < steps < 1000
    assert len(gif_frames(out)[1]) == math.ceil(steps / 10)


def test_last_seconds_are_the_last_frames_of_the_whole_episode(tmp_path, capsys):
    """--last draws only the end (a fall): the same pixels as the end of the full GIF."""
    full, last = tmp_path / "full.gif", tmp_path / "last.gif"
    assert main(["render", "--policy", "zero", "--out", str(full), "--every", "1", *FAST]) == 0
    assert main(["render", "--policy", "zero", "--out", str(last), "--every", "1", "--last", "0.3", *FAST]) == 0
    _, full_frames, _ = gif_frames(full)
    _, last_frames, _ = gif_frames(last)
    assert len(last_frames) == 30 and len(full_frames) > 60
    assert all(np.array_equal(a, b) for a, b in zip(last_frames, full_frames[-30:]))
    assert "30 frames (the last 0.3 s of" in capsys.readouterr().out


def test_frame_writes_one_png(tmp_path, capsys):
    out = tmp_path / "frame.png"
    assert main(["render", "--policy", "random", "--out", str(out), "--frame", "7", "--accuracy", "3e-2",
                 "--width", "320", "--height", "180"]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (320, 180) and image.mode == "RGB"
        pixels = np.asarray(image)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # a picture, not a blank canvas
    assert "step 7" in capsys.readouterr().out


def test_frame_after_the_episode_ended_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match=r"ended \(fell\) after \d+ steps, before step 300"):
        main(["render", "--policy", "random", "--out", str(tmp_path / "f.png"), "--frame", "300", *FAST])
    assert not (tmp_path / "f.png").exists()


def test_exported_policy_on_its_training_env(tmp_path, capsys):
    """A policy trained on the 82 features with frame skip 2 renders on that env."""
    policy = tmp_path / "run" / "policy.npz"
    rng = np.random.default_rng(0)
    actor = [(rng.normal(size=(82, 16)) * 0.1, np.zeros(16)), (rng.normal(size=(16, 18)) * 0.1, np.full(18, 0.3))]
    export.export_policy(policy, actor, np.zeros(18), "tanh", np.zeros(82), np.ones(82), 5.0, np.zeros(18),
                         np.ones(18), metadata={"env": {"features": True, "frame_skip": 2, "difficulty": 1}})
    out = tmp_path / "policy.gif"
    main(["render", "--policy", str(tmp_path / "run"), "--out", str(out), "--max-steps", "6", "--every", "2", *FAST])
    assert len(gif_frames(out)[1]) == 3
    printed = capsys.readouterr().out
    assert "features on" in printed and "action repeat 2" in printed


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--every", "0"], "argument --every: expected an integer >= 1, got '0'"),
        (["--fps", "0"], "--fps must be in"),
        (["--fps", "60"], "--fps must be in"),
        (["--width", "10"], "argument --width: expected an integer in [64, 4096], got '10'"),
        (["--width", "0"], "argument --width: expected an integer in [64, 4096], got '0'"),  # not the default
        (["--height", "100000"], "argument --height: expected an integer in [64, 4096]"),
        (["--max-steps", "0"], "argument --max-steps: expected an integer >= 1"),
        (["--accuracy", "0"], "argument --accuracy: expected a number in (0, 1)"),
        (["--max-obstacles", "-1"], "argument --max-obstacles: expected an integer in [0, 100]"),
        (["--frame", "20", "--max-steps", "10"], "--frame must be in"),
        (["--last", "0"], "argument --last: expected a number in (0, 10], got '0'"),
        (["--last", "nan"], "argument --last: expected a number in (0, 10], got 'nan'"),
        (["--last", "1", "--frame", "3"], "--last 1 draws a GIF and --frame 3 one still"),
        (["--out", "{tmp}/missing/gait.gif"], "missing' does not exist"),
        (["--out", "{tmp}"], "not a directory"),
        (["--out", "{tmp}/gait.png"], "--out must end in .gif"),
        (["--out", "{tmp}/frame.xyz", "--frame", "3"], "unknown image extension"),
        (["--policy", "{tmp}/nowhere.npz"], "neither 'random', 'zero'"),
        (["--policy", "{tmp}/text.npz"], "cannot load policy"),
        (["--policy", "{tmp}"], "cannot load policy"),  # a directory without a policy
    ],
)
def test_bad_arguments_give_clear_errors(tmp_path, capsys, extra, message):
    """Single values fail in argparse (usage, then the error line, exit 2), the
    rest in render's own checks (one line, exit 1)."""
    (tmp_path / "text.npz").write_text("not a policy")
    args = {"--policy": "random", "--out": str(tmp_path / "gait.gif")}
    rest = []
    for i in range(0, len(extra), 2):
        key, value = extra[i], extra[i + 1].replace("{tmp}", str(tmp_path))
        if key in args:
            args[key] = value
        else:
            rest += [key, value]
    argv = ["render", *[x for pair in args.items() for x in pair], *rest]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    error = str(exit_info.value) if exit_info.value.code not in (2, None) else capsys.readouterr().err
    assert message in error
    assert not list(tmp_path.glob("*.gif"))


def test_muscle_colour_follows_activation():
    env = l2run.L2RunEnv(difficulty=0, max_obstacles=0)
    env.reset(seed=0)
    sim = env.sim
    renderer = SkeletonRenderer(sim.model, sim.state, 320, 180)
    muscles = sim.model.getMuscles()

    def draw_with(activation):
        for i in range(muscles.getSize()):
            muscles.get(i).setActivation(sim.state, activation)
        rgb = np.asarray(renderer.draw(sim.state)).astype(int)
        red = (rgb[..., 0] > 150) & (rgb[..., 0] - rgb[..., 2] > 90)
        blue = (rgb[..., 2] > 150) & (rgb[..., 2] - rgb[..., 0] > 90)
        legend = np.zeros_like(red)
        legend[:40, 160:] = True  # the activation colour bar at the top right
        return np.count_nonzero(red & ~legend), np.count_nonzero(blue & ~legend)

    red, blue = draw_with(1.0)
    assert red > 30 and blue == 0
    red, blue = draw_with(0.0)
    assert blue > 30 and red == 0


def test_far_leg_is_darker_than_near_leg():
    """Right leg (near the camera) bright, left leg darker: legs apart, sample the shins."""
    env = l2run.L2RunEnv(difficulty=0, max_obstacles=0)
    env.reset(seed=0)
    model, state = env.sim.model, env.sim.state
    coordinates = model.getCoordinateSet()
    coordinates.get("hip_flexion_r").setValue(state, 0.6)
    coordinates.get("hip_flexion_l").setValue(state, -0.6)
    renderer = SkeletonRenderer(model, state, 640, 360)
    muscles = model.getMuscles()
    for i in range(muscles.getSize()):
        muscles.get(i).setActivation(state, 0.0)
    gray = np.asarray(renderer.draw(state).convert("L")).astype(float)

    def shin_brightness(side):
        tibia = model.getBodySet().get(f"tibia_{side}")
        middle = tibia.findStationLocationInGround(state, opensim.Vec3(0.0, -0.2, 0.0))
        column, row = renderer.to_pixels(middle[0], middle[1], renderer.camera_x(state))
        patch = gray[int(row) - 3:int(row) + 4, int(column) - 3:int(column) + 4]
        return patch.max()  # the bone's lit face, whatever muscle lines cross it

    assert shin_brightness("r") > shin_brightness("l") + 30


def test_gif_writer_keeps_the_frame_rate_and_cleans_up(tmp_path):
    path = tmp_path / "a.gif"
    frames = [Image.new("RGB", (8, 8), (255 * (i % 2), 0, 0)) for i in range(6)]
    with GifWriter(path, (8, 8), 30, [(0, 0, 0), (255, 0, 0)]) as writer:
        for frame in frames:
            writer.append(frame)
    durations = gif_frames(path)[2]
    assert len(durations) == 6 and sum(durations) == 200  # 6 frames at 30 fps: 0.2 s, in whole centiseconds
    with pytest.raises(RuntimeError):
        with GifWriter(tmp_path / "b.gif", (8, 8), 30, [(0, 0, 0)]) as writer:
            writer.append(frames[0])
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]
    with pytest.raises(ValueError, match="frame size"):
        with GifWriter(tmp_path / "c.gif", (8, 8), 30, [(0, 0, 0)]) as writer:
            writer.append(Image.new("RGB", (4, 4)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]


def test_rendering_imports_neither_tensorflow_nor_mpi(tmp_path):
    code = (
        "import sys\n"
        "from experiments.cli import main\n"
        f"main(['render', '--policy', 'zero', '--out', {str(tmp_path / 'g.gif')!r}, '--max-steps', '2', "
        f"{', '.join(repr(a) for a in FAST)}])\n"
        "bad = [m for m in ('tensorflow', 'mpi4py') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], timeout=120, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
