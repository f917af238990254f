"""Wiring of l2run (OpenSim env), observation/, rewards/ and baselines_ppo into
the ``l2run`` command, plus the TOML configs and mpirun scripts."""
