import subprocess
import sys


def test_inference_modules_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import mlcore, mlcore.artifacts, mlcore.inference, mlcore.topk, mlcore.errors\n"
        "bad = [m for m in sys.modules if m == 'tensorflow' or m.startswith(('tensorflow.', 'keras'))]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
