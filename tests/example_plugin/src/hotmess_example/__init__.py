"""An example third-party hotmess plugin (the distribution ``hotmess-example-plugin``).

Registers the task ``arith`` (multiple-choice addition), the backend ``calculator`` (a
column-addition "model" that slips on digits, forgets carries on some questions and guesses
the digits it had no budget for), the producer ``answers_csv`` (answers another harness
wrote, imported as a cube) and the figure ``example_incoherence``. Nothing heavy is imported
here; the factories import the implementation modules.
"""

from hotmess.core.hookspecs import hookimpl


def _task(**options):
    from hotmess_example.arith import ArithmeticTask

    return ArithmeticTask(**options)


def _backend(model, **options):
    from hotmess_example.calculator import CalculatorBackend

    return CalculatorBackend(model, **options)


@hookimpl
def register_tasks(register):
    register("arith", _task, description="multiple-choice addition of two integers (example plugin)")


@hookimpl
def register_backends(register):
    register("calculator", _backend, description="column-addition calculator with digit slips (example plugin)")


def _producer(**options):
    from hotmess_example.answers import AnswersCSV

    return AnswersCSV(**options)


def _figure(cubes, settings=None):
    from hotmess_example.figures import incoherence_by_budget

    return incoherence_by_budget(cubes, settings)


@hookimpl
def register_producers(register):
    register("answers_csv", _producer, description="import a CSV of per-draw answers (example plugin)",
             declares="hotmess_example.answers:AnswersCSV")


@hookimpl
def register_figures(register):
    register("example_incoherence", _figure, cubes=("arith_demo",), title="Incoherence by budget (example)",
             variables=("outcome", "target"), description="KL incoherence per calculator size and budget")
