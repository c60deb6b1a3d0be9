"""PyInstaller's entry script for the one-folder build: the same ``memview`` command pip installs."""

from memview.cli import main

if __name__ == "__main__":
    main(prog_name="memview")
