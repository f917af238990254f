"""The OpenSim side of the env: build the model once, move obstacles, integrate.

Why it is built this way (measured with ``l2run bench env``):

* Obstacles are ``ContactSphere`` geometry fixed to ground, one slot per
  possible obstacle. The 2017 env put each sphere on a massless body with a
  PlanarJoint whose coordinates were locked; OpenSim implements a lock as a
  constraint, which cost ~40% of the simulation speed with three spheres.
  Geometry fixed to ground adds no state at all; moving it means editing its
  location property and calling ``initSystem()``, which for this model takes a
  few milliseconds, so every reset rebuilds the system (also the simplest way
  to guarantee that the same course gives the same trajectory whatever ran
  before). Unused slots are parked deep under the floor, far behind the start.
* All obstacle slots share one ``HuntCrossleyForce``. The 2017 env gave each
  sphere its own force (sphere and feet at stiffness 1e6 / radius); OpenSim
  makes one contact set per force, and ten of them cost 4-8% of every
  derivative evaluation at difficulty 2. In one force each surface has its
  own parameters, and Hunt-Crossley combines a pair's stiffnesses in series,
  so the feet get one stiff value and each sphere the value that gives every
  foot-sphere pair the 2017 stiffness and dissipation exactly
  (:func:`merged_obstacle_stiffness`). The force acts along the contact
  normal and there is no friction, so where SimTK puts the contact point on
  that line changes nothing. Foot-foot pairs share the set, as in 2017, and
  cannot touch: the legs' spheres are 0.18 m apart in z.
* The simulator reads only the handful of values the 41-float observation
  needs, from handles cached at build time: no dictionary of every body, force
  and muscle per step as osim-rl builds.
* One ``Manager`` per episode keeps the integrator's step-size history across
  the 10 ms steps. Excitations are ``Constant`` functions of a
  ``PrescribedController``; after changing them the integrator's cached state
  derivatives would be stale for the first stage of the next step, so the
  cache is invalidated from the Dynamics stage on (measured: trajectories then
  match a fresh integrator per step, as the 2017 grader ran, to within the
  integrator tolerance, at the speed of a persistent one).
"""
from __future__ import annotations

import numbers
import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import opensim

from .constants import (
    BODY_POSITIONS,
    COM,
    JOINT_ANGLES,
    JOINT_COORDINATES,
    JOINT_SPEEDS,
    OBSTACLE,
    PELVIS_POSITION,
    PELVIS_SPEEDS,
    PELVIS_X,
    PSOAS,
    LIGAMENT_FORCES,
    MUSCLE_NAMES,
    OBSERVATION_SIZE,
    PELVIS_COORDINATES,
    PSOAS_L_MUSCLE,
    PSOAS_R_MUSCLE,
    STEP_SECONDS,
    TRACKED_BODIES,
)
from .course import Course
from .integrator_stats import IntegratorCounts, read_counts

#: Foot contact spheres of gait9dof18musc that obstacles push against.
FOOT_SPHERES = ("r_heel", "l_heel", "r_toe", "l_toe")

#: Contact parameters of the 2017 challenge's obstacles (osim-rl RunEnv):
#: stiffness 1e6 / radius, almost no dissipation, frictionless.
OBSTACLE_STIFFNESS_TIMES_RADIUS = 1.0e6
OBSTACLE_DISSIPATION = 1e-5

OBSTACLE_FORCE_NAME = "obstacles_contact"

#: gait9dof18musc's foot-ground contact: Hunt-Crossley forces whose friction
#: (coefficient 0.8) is regularised below a slip speed of 0.1 m/s.
FOOT_CONTACT_FORCES = ("foot_r", "foot_l")
#: Upper bound accepted for that transition velocity (m/s): beyond it the feet
#: would skate at running speeds.
MAX_TRANSITION_VELOCITY = 10.0


def check_transition_velocity(value, name: str = "friction_transition_velocity") -> Optional[float]:
    """None (the model's own) or a speed in (0, 10] m/s, else a ValueError naming it."""
    if value is None:
        return None
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
            or not 0 < value <= MAX_TRANSITION_VELOCITY):
        raise ValueError(f"{name} must be a speed in (0, {MAX_TRANSITION_VELOCITY:g}] m/s or None (the model's "
                         f"own, the grader's), got {value!r}")
    return float(value)


def merged_obstacle_stiffness(radii: Sequence[float]) -> tuple[float, list[float]]:
    """OpenSim stiffnesses (feet, [sphere per radius]) for one Hunt-Crossley
    force that gives each foot-sphere pair the contact of the 2017 env.

    SimTK stores a surface's stiffness ``K`` as ``k = K**(2/3)`` and combines a
    pair in series, ``k1 * k2 / (k1 + k2)``. In 2017 both surfaces had
    ``K = 1e6 / radius``, so a pair's ``k`` was ``a / 2`` with ``a = K**(2/3)``.
    With one feet value ``f`` shared by all spheres, sphere ``i`` needs
    ``x_i = (a_i / 2) * f / (f - a_i / 2)``; any ``f > max(a) / 2`` works, and
    ``f = 2 max(a)`` keeps both terms of the same size (no precision lost).
    """
    a = [(OBSTACLE_STIFFNESS_TIMES_RADIUS / float(r)) ** (2.0 / 3.0) for r in radii]
    feet = 2.0 * max(a, default=1.0)
    spheres = [((ai / 2) * feet / (feet - ai / 2)) ** 1.5 for ai in a]
    return feet ** 1.5, spheres


def _contact_parameters_xml(name: str, geometries: Sequence[str]) -> str:
    return (f'<HuntCrossleyForce::ContactParameters name="{name}">'
            f'<geometry>{" ".join(geometries)}</geometry><stiffness>1</stiffness>'
            f'<dissipation>{OBSTACLE_DISSIPATION!r}</dissipation><static_friction>0</static_friction>'
            '<dynamic_friction>0</dynamic_friction><viscous_friction>0</viscous_friction>'
            '</HuntCrossleyForce::ContactParameters>')


def _merged_obstacle_force(sphere_names: Sequence[str]) -> opensim.HuntCrossleyForce:
    """One HuntCrossleyForce between the feet and all the spheres named:
    parameter set 0 for the feet, then one per sphere (stiffness set by
    :func:`set_obstacle_stiffness`). OpenSim's Python bindings cannot append
    contact parameter sets, so the force is read from XML (a temporary file)."""
    parameters = [_contact_parameters_xml("feet", FOOT_SPHERES)]
    parameters += [_contact_parameters_xml(name, (name,)) for name in sphere_names]
    xml = ('<?xml version="1.0" encoding="UTF-8" ?><OpenSimDocument Version="40000">'
           f'<HuntCrossleyForce name="{OBSTACLE_FORCE_NAME}"><contact_parameters>'
           '<HuntCrossleyForce::ContactParametersSet><objects>' + "".join(parameters) +
           '</objects></HuntCrossleyForce::ContactParametersSet></contact_parameters>'
           '</HuntCrossleyForce></OpenSimDocument>')
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "obstacles_contact.xml"
        path.write_text(xml)
        force = opensim.HuntCrossleyForce.safeDownCast(opensim.OpenSimObject.makeObjectFromFile(str(path)))
    if force is None:  # pragma: no cover - another OpenSim build
        raise RuntimeError("OpenSim could not build the obstacles' HuntCrossleyForce from XML")
    return force


def add_obstacle_spheres(model: opensim.Model, obstacles) -> tuple[list, Optional[opensim.HuntCrossleyForce]]:
    """Contact spheres fixed to ground at ``obstacles`` rows (x, y, radius),
    named ``obstacle_<i>``, all in one Hunt-Crossley force with the feet at
    the 2017 contact parameters. Returns the spheres and the force (None
    without spheres); moving a sphere means editing it, then
    :func:`set_obstacle_stiffness` for its radius, then ``initSystem()``."""
    ground = model.getGround()
    spheres = []
    for i, (x, y, radius) in enumerate(obstacles):
        sphere = opensim.ContactSphere(float(radius), opensim.Vec3(float(x), float(y), 0.0), ground, f"obstacle_{i}")
        model.addContactGeometry(sphere)
        spheres.append(sphere)
    if not spheres:
        return spheres, None
    force = _merged_obstacle_force([sphere.getName() for sphere in spheres])
    set_obstacle_stiffness(force, [radius for _, _, radius in obstacles])
    model.addForce(force)
    return spheres, force


def set_obstacle_stiffness(force: opensim.HuntCrossleyForce, radii: Sequence[float]) -> None:
    """Write :func:`merged_obstacle_stiffness` for spheres of ``radii`` (in the
    order of :func:`add_obstacle_spheres`'s rows) into ``force``; the next
    ``initSystem()`` reads them."""
    feet, spheres = merged_obstacle_stiffness(radii)
    objects = force.updPropertyByName("contact_parameters").updValueAsObject(0).updPropertyByName("objects")
    for i, stiffness in enumerate([feet] + spheres):
        opensim.PropertyHelper.setValueDouble(stiffness, objects.updValueAsObject(i).updPropertyByName("stiffness"))


#: Where unused obstacle slots wait: far behind the start and deep underground,
#: out of reach of any foot.
PARKED_LOCATION = (-100.0, -50.0, 0.0)
PARKED_RADIUS = 0.01

#: Integrators the env can step with (OpenSim Manager methods). The 2017
#: grader used Runge-Kutta-Merson at accuracy 1e-3. Semi-explicit Euler 2 (an
#: error-controlled first/second-order pair) runs ~2.5x faster at 3e-2 on this
#: model with trajectories within millimetres of the grader's: measure with
#: ``l2run bench integrators``.
INTEGRATORS = {
    "runge_kutta_merson": "IntegratorMethod_RungeKuttaMerson",
    "semi_explicit_euler2": "IntegratorMethod_SemiExplicitEuler2",
    "runge_kutta3": "IntegratorMethod_RungeKutta3",
    "runge_kutta2": "IntegratorMethod_RungeKutta2",
    "runge_kutta_feldberg": "IntegratorMethod_RungeKuttaFeldberg",
    "cpodes": "IntegratorMethod_CPodes",
    "verlet": "IntegratorMethod_Verlet",
}
GRADER_INTEGRATOR = "runge_kutta_merson"

LOG_LEVELS = ("off", "critical", "error", "warn", "info", "debug", "trace")


def add_excitation_controller(model: opensim.Model) -> opensim.PrescribedController:
    """A PrescribedController holding one ``Constant`` excitation per muscle
    (model order), added to ``model``; set them through :func:`excitation_constants`."""
    controller = opensim.PrescribedController()
    controller.setName("excitations")
    muscles = model.getMuscles()
    for i in range(muscles.getSize()):
        controller.addActuator(muscles.get(i))
        controller.prescribeControlForActuator(muscles.get(i).getName(), opensim.Constant(0.0))
    model.addController(controller)
    return controller


def excitation_constants(controller: opensim.PrescribedController) -> list:
    """The controller's ``Constant`` functions, one per muscle. initSystem()
    re-creates them: look them up again after each (an old handle crashes)."""
    functions = controller.get_ControlFunctions()
    return [opensim.Constant.safeDownCast(functions.get(i)) for i in range(functions.getSize())]


def check_integrator(integrator, name: str = "integrator") -> str:
    """``integrator`` if it names one of :data:`INTEGRATORS`, else a ValueError naming it (as ``name``)."""
    if not isinstance(integrator, str) or integrator not in INTEGRATORS:
        raise ValueError(f"{name} must be one of {sorted(INTEGRATORS)}, got {integrator!r}")
    return integrator


class SimulationError(RuntimeError):
    """The integrator failed (a SimTK exception) or produced a non-finite state."""


def set_opensim_log_level(level: str) -> None:
    """OpenSim 4.6 logs ~12 info lines per integrate call by default; the env
    sets "warn". The logger is process-wide, so this affects every model."""
    if level not in LOG_LEVELS:
        raise ValueError(f"opensim log level must be one of {LOG_LEVELS}, got {level!r}")
    opensim.Logger.setLevelString(level)


class Simulator:
    """gait9dof18musc plus ``obstacle_slots`` contact spheres, stepped in 10 ms.

    Not thread-safe; one per env. Call :meth:`reset` before :meth:`step`.
    """

    def __init__(self, model_path: os.PathLike, obstacle_slots: int, integrator_accuracy: float,
                 retry_accuracy: Optional[float] = None, integrator: str = GRADER_INTEGRATOR):
        self.integrator = check_integrator(integrator)
        self._method = getattr(opensim.Manager, INTEGRATORS[integrator])
        self._retry_method = getattr(opensim.Manager, INTEGRATORS[GRADER_INTEGRATOR])
        self.integrator_accuracy = float(integrator_accuracy)
        self.retry_accuracy = None if retry_accuracy is None else float(retry_accuracy)
        self.retries = 0
        """Steps that needed the retry since construction (a diagnostic)."""
        try:
            self.model = opensim.Model(str(model_path))
        except RuntimeError as err:
            raise ValueError(f"OpenSim could not read the model file {str(model_path)!r}: {err}") from err
        self._check_model(model_path)
        self._controller = add_excitation_controller(self.model)
        self._spheres, self._obstacle_force = add_obstacle_spheres(
            self.model, [(*PARKED_LOCATION[:2], PARKED_RADIUS)] * obstacle_slots)
        self.state = self.model.initSystem()
        self._cache_handles()
        muscles = self.model.getMuscles()
        self._psoas_max_force = tuple(
            muscles.get(i).getMaxIsometricForce() for i in (PSOAS_L_MUSCLE, PSOAS_R_MUSCLE)
        )
        self._manager: Optional[opensim.Manager] = None
        self._retired_counts = IntegratorCounts()  # of the integrators already replaced
        self._step_bounds: tuple[Optional[float], Optional[float]] = (None, None)
        forces = self.model.getForceSet()
        self._foot_contacts = [opensim.HuntCrossleyForce.safeDownCast(forces.get(name))
                               for name in FOOT_CONTACT_FORCES if forces.contains(name)]
        self.model_transition_velocity = tuple(f.getTransitionVelocity() for f in self._foot_contacts)
        """The model file's friction transition velocities (feet), restored by None."""
        self.course = Course(np.zeros((0, 3)))
        self.time_steps = 0

    # -- construction ---------------------------------------------------------
    def _check_model(self, model_path) -> None:
        muscles = self.model.getMuscles()
        names = tuple(muscles.get(i).getName() for i in range(muscles.getSize()))
        if names != MUSCLE_NAMES:
            raise ValueError(
                f"model {str(model_path)!r} has muscles {names}; expected the 18 muscles of "
                f"gait9dof18musc in order {MUSCLE_NAMES}"
            )
        bodies = self.model.getBodySet()
        coordinates = self.model.getCoordinateSet()
        missing = [b for b in TRACKED_BODIES if not bodies.contains(b)]
        missing += [c for c in PELVIS_COORDINATES + JOINT_COORDINATES if not coordinates.contains(c)]
        missing += [f for f in LIGAMENT_FORCES if not self.model.getForceSet().contains(f)]
        missing += [g for g in FOOT_SPHERES if not self.model.getContactGeometrySet().contains(g)]
        if missing:
            raise ValueError(f"model {str(model_path)!r} lacks components the env needs: {missing}")

    def _cache_handles(self) -> None:
        """Look up, once per ``initSystem()``, every object read or written per
        step. initSystem() re-creates some of them (the controller's functions
        among them: a handle kept across it crashes), so this runs after each."""
        self._excitations = excitation_constants(self._controller)
        coordinates = self.model.getCoordinateSet()
        self._coordinates = [coordinates.get(name) for name in PELVIS_COORDINATES + JOINT_COORDINATES]
        self._bodies = [self.model.getBodySet().get(name) for name in TRACKED_BODIES]
        forces = self.model.getForceSet()
        self._ligaments = [opensim.CoordinateLimitForce.safeDownCast(forces.get(n)) for n in LIGAMENT_FORCES]
        muscles = self.model.getMuscles()
        self._psoas = (muscles.get(PSOAS_L_MUSCLE), muscles.get(PSOAS_R_MUSCLE))
        self._pelvis_x, self._pelvis_y = self._coordinates[1], self._coordinates[2]
        self._dynamics_stage = opensim.Stage(opensim.Stage.Dynamics)

    def set_integrator_step_bounds(self, minimum: Optional[float] = None, maximum: Optional[float] = None) -> None:
        """Bound the integrator's internal step size from the next :meth:`reset`
        on (None: OpenSim's default). A minimum step that is too large makes
        the integrator diverge: useful to check how failures are handled, and
        for stiff custom models."""
        for name, value in (("minimum", minimum), ("maximum", maximum)):
            if value is not None and not 0 < value <= STEP_SECONDS:
                raise ValueError(f"integrator {name} step must be in (0, {STEP_SECONDS}] s, got {value!r}")
        self._step_bounds = (minimum, maximum)

    def set_friction_transition_velocity(self, velocity: Optional[float]) -> None:
        """The feet's friction transition velocity (m/s) from the next :meth:`reset`
        on; None restores the model's own (0.1 m/s in gait9dof18musc, the grader's).

        Why: below that slip speed Hunt-Crossley friction acts as a viscous
        damper of mu * N / velocity, several thousand N s/m on a foot in stance.
        Acting on the light foot it is the stiffest mode of a running gait
        (eigenvalues of -5000 to -16000 /s along the ankle and knee speeds), and it
        sets the explicit integrator's step. A larger transition velocity softens
        it at the price of more creep of the stance foot: a training setting
        (``EnvConfig.friction_transition_velocity``), never the grader's."""
        velocity = check_transition_velocity(velocity)
        if velocity is not None and len(self._foot_contacts) != len(FOOT_CONTACT_FORCES):
            raise ValueError(f"friction_transition_velocity needs the model's foot contact forces "
                             f"{FOOT_CONTACT_FORCES} (Hunt-Crossley); this model lacks some of them")
        for force, default in zip(self._foot_contacts, self.model_transition_velocity):
            force.setTransitionVelocity(default if velocity is None else velocity)

    @property
    def obstacle_slots(self) -> int:
        return len(self._spheres)

    # -- episode --------------------------------------------------------------
    def reset(self, course: Course) -> None:
        """Place ``course`` in the model, rebuild the system, start from the
        model's default pose with muscles equilibrated."""
        if len(course.obstacles) > self.obstacle_slots:
            raise ValueError(
                f"course has {len(course.obstacles)} obstacles but the env was built with "
                f"{self.obstacle_slots} slots (max_obstacles)"
            )
        radii = []
        for i, sphere in enumerate(self._spheres):
            if i < len(course.obstacles):
                x, y, radius = course.obstacles[i]
                location = (x, y, 0.0)
            else:
                location, radius = PARKED_LOCATION, PARKED_RADIUS
            sphere.set_location(opensim.Vec3(*location))
            sphere.setRadius(float(radius))
            radii.append(float(radius))
        if self._spheres:
            set_obstacle_stiffness(self._obstacle_force, radii)
        for muscle, max_force, strength in zip(self._psoas, self._psoas_max_force, course.psoas):
            muscle.setMaxIsometricForce(max_force * strength)
        self.course = course
        self._retire_manager()  # release the old integrator before building anew
        self.state = self.model.initSystem()
        self._cache_handles()
        for constant in self._excitations:
            constant.setValue(0.0)
        self.model.equilibrateMuscles(self.state)
        self._start_manager(self.state, self.integrator_accuracy, self._method)
        self.time_steps = 0

    def step(self, excitations: np.ndarray) -> None:
        """Hold ``excitations`` (18 floats in [0, 1], already validated) for 10 ms.

        If the integrator fails (at loose accuracies it does, when a falling
        skeleton slams into its joint limits), the step is retried once from
        the state before it at ``retry_accuracy``; then the episode goes on at
        the normal accuracy. Without the retry such episodes would end as
        "truncated" in the middle of a fall, and a learner bootstrapping their
        value would never see that collapsing ends the episode. Raises
        :class:`SimulationError` if the retry fails too (or is off); the
        simulator is then unusable until :meth:`reset`."""
        if self._manager is None:
            raise RuntimeError("Simulator.step() before reset()")
        for constant, value in zip(self._excitations, excitations):
            constant.setValue(float(value))
        if self.time_steps:
            # See the module docstring: new controls invalidate cached derivatives.
            self._manager.getState().invalidateAllCacheAtOrAbove(self._dynamics_stage)
        target = STEP_SECONDS * (self.time_steps + 1)
        # The continuous state (q, u, muscle states) before the step: ~1 us to
        # copy, against ~150 us for a whole SimTK::State, which is only built
        # on a failure. The model has no discrete state variables to save.
        y_before = self.state.getY().to_numpy() if self.retry_accuracy is not None else None
        time_before = self.state.getTime()
        try:
            self._integrate_to(target)
        except SimulationError:
            if y_before is None:
                self._retire_manager()
                raise
            self.retries += 1
            before = opensim.State(self.state)
            before.setTime(time_before)
            before.setY(opensim.Vector.createFromMat(y_before))
            self._start_manager(before, self.retry_accuracy, self._retry_method)
            try:
                self._integrate_to(target)
            except SimulationError:
                self._retire_manager()
                raise
            self._start_manager(opensim.State(self.state), self.integrator_accuracy, self._method)
        self.time_steps += 1

    def _integrate_to(self, target: float) -> None:
        try:
            self.state = self._manager.integrate(target)
            self.model.realizeVelocity(self.state)
        except RuntimeError as err:
            raise SimulationError(str(err)) from err
        if abs(self.state.getTime() - target) > 1e-9:
            raise SimulationError(f"integrator stopped at t={self.state.getTime():.6f} s instead of {target:.6f} s")
        if not np.isfinite(self._pelvis_y.getValue(self.state)):
            raise SimulationError(f"non-finite state at t={target:.2f} s")

    def _start_manager(self, state: opensim.State, accuracy: float, method) -> None:
        """A fresh integrator at ``accuracy`` starting from ``state``, which must
        be owned by the caller: a state returned by the previous integrator
        dies with it."""
        self.state = state
        self._retire_manager()
        self._manager = opensim.Manager(self.model)
        self._manager.setIntegratorMethod(method)
        self._manager.setIntegratorAccuracy(accuracy)
        minimum, maximum = self._step_bounds
        if minimum is not None:
            self._manager.setIntegratorMinimumStepSize(minimum)
        if maximum is not None:
            self._manager.setIntegratorMaximumStepSize(maximum)
        self._manager.initialize(state)

    def _retire_manager(self) -> None:
        if self._manager is not None:
            counts = read_counts(self._manager)
            if counts is not None:
                self._retired_counts = self._retired_counts + counts
        self._manager = None

    def integrator_counts(self) -> Optional[IntegratorCounts]:
        """Internal steps taken/attempted by every integrator this simulator
        ran since construction (retries included); None where the opensim build
        hides them (``l2run.integrator_stats``). A diagnostic for benchmarks:
        differences between two calls count the work of the steps between."""
        current = read_counts(self._manager) if self._manager is not None else IntegratorCounts()
        if current is None:
            return None
        return self._retired_counts + current

    # -- reading --------------------------------------------------------------
    @property
    def pelvis_x(self) -> float:
        return self._pelvis_x.getValue(self.state)

    @property
    def pelvis_y(self) -> float:
        return self._pelvis_y.getValue(self.state)

    def observe(self) -> np.ndarray:
        """The 2017 challenge's 41 floats (``constants.OBSERVATION_NAMES``)."""
        state = self.state
        obs = np.empty(OBSERVATION_SIZE, dtype=np.float64)
        pelvis = self._coordinates[:3]
        joints = self._coordinates[3:]
        obs[PELVIS_POSITION] = [c.getValue(state) for c in pelvis]
        obs[PELVIS_SPEEDS] = [c.getSpeedValue(state) for c in pelvis]
        obs[JOINT_ANGLES] = [c.getValue(state) for c in joints]
        obs[JOINT_SPEEDS] = [c.getSpeedValue(state) for c in joints]
        com = self.model.calcMassCenterPosition(state)
        com_velocity = self.model.calcMassCenterVelocity(state)
        obs[COM] = (com[0], com[1], com_velocity[0], com_velocity[1])
        positions = [body.getTransformInGround(state).p() for body in self._bodies]
        obs[BODY_POSITIONS] = [p[axis] for p in positions for axis in (0, 1)]
        obs[PSOAS] = self.course.psoas
        obs[OBSTACLE] = self.course.next_obstacle(obs[PELVIS_X])
        if not np.all(np.isfinite(obs)):
            raise SimulationError(f"non-finite state at step {self.time_steps}: {obs.tolist()}")
        return obs

    def ligament_forces(self) -> np.ndarray:
        """Forces of the 6 passive joint limits (``constants.LIGAMENT_FORCES``)."""
        return np.array([lig.calcLimitForce(self.state) for lig in self._ligaments])

    def obstacle_contact_force(self) -> float:
        """Magnitude (N) of the force all obstacles exert on the feet now; for
        tests and diagnostics, not read per step. (One force holds every
        sphere, so its record gives their sum: each sphere's row is ground's.)"""
        if self._obstacle_force is None:
            return 0.0
        self.model.realizeDynamics(self.state)
        labels = self._obstacle_force.getRecordLabels()
        values = self._obstacle_force.getRecordValues(self.state)
        first = next(i for i in range(labels.getSize()) if ".ground.force." in labels.get(i))
        return float(np.linalg.norm([values.get(first + i) for i in range(3)]))
