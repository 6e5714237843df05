"""Guard against a PySide6 build that leaks references to None.

PySide6-Essentials 6.12.0 on CPython 3.11 drops a reference to ``None`` on every call of a C++
method returning void; after some minutes of plotting the interpreter aborts with
"none_dealloc: deallocating None". pyproject.toml excludes that version; this test catches any
other build with the same fault before a user's session does.
"""

import subprocess
import sys

PROBE = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication([])
widget = QWidget()
before = sys.getrefcount(None)
for _ in range(20000):
    widget.setMinimumWidth(10)
print(sys.getrefcount(None) - before)
"""


def test_void_calls_do_not_leak_none():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"Qt probe crashed: {result.stderr[-500:]}"
    drift = int(result.stdout.strip().splitlines()[-1])
    assert abs(drift) < 1000, f"PySide6 loses {-drift} references to None per 20000 calls"
