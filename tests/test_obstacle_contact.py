"""The obstacles' one merged contact force is the 2017 env's physics.

The 2017 env gave every sphere its own HuntCrossleyForce (sphere and feet at
stiffness 1e6 / radius); ``l2run.simulator`` puts all spheres in one force for
speed. These tests build the 2017 construction next to it on the real
simulator and step both with the same excitations while the feet press on
spheres.
"""
import numpy as np
import opensim
import pytest

from experiments.bench_env import add_obstacles_2017
from l2run import simulator as S
from l2run.constants import STEP_SECONDS
from l2run.course import Course
from l2run.model_file import resolve_model_path


@pytest.mark.parametrize("radii", [[0.05, 0.1, 0.3], [0.01, 0.07], [2.0]])
def test_each_pair_gets_the_2017_series_stiffness(radii):
    """SimTK combines k = K**(2/3) of two surfaces as k1 k2 / (k1 + k2); in
    2017 both surfaces had K = 1e6 / r, so a pair had k = (1e6 / r)**(2/3) / 2."""
    feet, spheres = S.merged_obstacle_stiffness(radii)
    k_feet = feet ** (2 / 3)
    for radius, sphere in zip(radii, spheres):
        k_sphere = sphere ** (2 / 3)
        assert k_feet * k_sphere / (k_feet + k_sphere) == pytest.approx((1e6 / radius) ** (2 / 3) / 2, rel=1e-12)


class Reference2017:
    """gait9dof18musc with one HuntCrossleyForce per sphere, as osim-rl built
    obstacles (``experiments.bench_env.add_obstacles_2017``), stepped the way
    ``Simulator.step`` steps (same integrator, a persistent Manager,
    derivatives invalidated after new excitations)."""

    def __init__(self, obstacles, accuracy, integrator):
        self.model = opensim.Model(str(resolve_model_path()))
        controller = S.add_excitation_controller(self.model)
        add_obstacles_2017(self.model, obstacles)
        state = self.model.initSystem()
        self.constants = S.excitation_constants(controller)
        for constant in self.constants:
            constant.setValue(0.0)
        self.model.equilibrateMuscles(state)
        self.manager = opensim.Manager(self.model)
        self.manager.setIntegratorMethod(getattr(opensim.Manager, S.INTEGRATORS[integrator]))
        self.manager.setIntegratorAccuracy(accuracy)
        self.manager.initialize(state)
        self.steps = 0

    def step(self, excitations):
        for constant, value in zip(self.constants, excitations):
            constant.setValue(float(value))
        if self.steps:
            self.manager.getState().invalidateAllCacheAtOrAbove(opensim.Stage(opensim.Stage.Dynamics))
        self.steps += 1
        return self.manager.integrate(STEP_SECONDS * self.steps)


def body_origins(model, state):
    model.realizePosition(state)
    bodies = model.getBodySet()
    return np.array([[bodies.get(i).getPositionInGround(state).get(k) for k in range(2)]
                     for i in range(bodies.getSize())])


def test_merged_force_steps_like_one_force_per_sphere():
    """Spheres under both feet and one ahead, parked slots besides: the
    skeleton follows the 2017 construction's path as closely as the 2017
    construction follows itself with one radius changed in its last bit
    (rounding differences grow as the integrator's step choices part; at a
    tight accuracy they stay below a micrometre), while the feet press on
    the spheres with kilonewtons."""
    accuracy, integrator = 1e-6, "runge_kutta_merson"
    probe = S.Simulator(resolve_model_path(), 0, accuracy, integrator=integrator)
    probe.reset(Course(np.zeros((0, 3))))
    toes_r = probe.model.getBodySet().get("toes_r").getPositionInGround(probe.state)
    calcn_l = probe.model.getBodySet().get("calcn_l").getPositionInGround(probe.state)
    obstacles = [[toes_r.get(0) + 0.03, 0.0, 0.1], [calcn_l.get(0), -0.05, 0.12], [1.5, 0.02, 0.2]]
    nudged = [list(row) for row in obstacles]
    nudged[0][2] = np.nextafter(nudged[0][2], 1.0)

    merged = S.Simulator(resolve_model_path(), 5, accuracy, integrator=integrator)
    merged.reset(Course(np.array(obstacles)))
    reference = Reference2017(obstacles, accuracy, integrator)
    reference_nudged = Reference2017(nudged, accuracy, integrator)
    excitations = np.repeat(np.random.default_rng(0).random((8, 18)), 5, axis=0)
    forces, gap, rounding_gap = [], 0.0, 0.0
    for action in excitations:
        merged.step(action)
        state, state_nudged = reference.step(action), reference_nudged.step(action)
        forces.append(merged.obstacle_contact_force())
        origins = body_origins(reference.model, state)
        gap = max(gap, np.abs(body_origins(merged.model, merged.state) - origins).max())
        rounding_gap = max(rounding_gap, np.abs(body_origins(reference_nudged.model, state_nudged) - origins).max())
    assert max(forces) > 1000.0, forces
    assert gap < 1e-6 and gap < 10 * rounding_gap, (gap, rounding_gap)


def test_parked_slots_exert_nothing():
    sim = S.Simulator(resolve_model_path(), 3, 3e-2)
    sim.reset(Course(np.zeros((0, 3))))
    assert sim.obstacle_contact_force() == 0.0
