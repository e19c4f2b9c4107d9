"""Session setup shared by the tests."""
import os
import sys
from pathlib import Path

# DVC runs stage commands through the shell as `python stages/...`: the tests that drive DVC need
# that `python` to be the interpreter running pytest (the venv), even when it was not activated.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
