"""The TensorFlow package (emlpress.keras) stays an extra: importing emlpress, its compression
and its old training and lossy paths loads no TensorFlow until a function needs it."""

import subprocess
import sys

HEAVY = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "ai_edge_litert")


def test_importing_the_package_and_its_old_paths_loads_no_tensorflow():
    code = ("import sys, emlpress, emlpress.compress, emlpress.compress.lossy, emlpress.train, "
            "emlpress.keras, emlpress.testing, emlpress.metrics\n"
            "from emlpress.compress.lossy import prune, quantize, quantization_table\n"
            "from emlpress.train import fit_regressor, check_sparsities, keras_optimizer\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout
