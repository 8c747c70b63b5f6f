"""A test plugin (registered with HOTMESS_PLUGINS): the example calculator whose ``info()``
reports a ``dtype`` that depends on the machine, as the hf backend's ``dtype: auto`` does.

Stands in for a failure that cannot be produced for real on one machine: the same option
resolving to another dtype on another machine (here: the environment variable FAKE_DTYPE).
"""

import os

from hotmess.core.hookspecs import hookimpl


def _backend(model, **options):
    from hotmess_example.calculator import CalculatorBackend

    class MachineDependent(CalculatorBackend):
        name = "calculator_auto"
        fingerprint_keys = ("dtype",)

        def info(self):
            return {**super().info(), "dtype": os.environ.get("FAKE_DTYPE", "float32")}

    return MachineDependent(model, **options)


@hookimpl
def register_backends(register):
    register("calculator_auto", _backend, description="calculator with a machine-dependent dtype (tests)")
