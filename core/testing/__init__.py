"""hotmess.testing: the conformance kit plugin authors run in their own test suites.

Plain functions that raise :class:`AssertionError` with a precise message on a contract
violation, so they work in pytest (or anywhere)::

    from hotmess.testing import check_backend, check_plugin_registration, check_task

    def test_my_task():
        task = check_plugin_registration("arith", "task", distribution="my-dist")
        check_task(task)

    def test_my_backend():
        backend = check_plugin_registration("mybackend", "backend", factory_args=(spec,))
        check_backend(backend, deterministic=True)

Nothing heavy is imported here (numpy and hotmess.core only).
"""

from hotmess.testing.backend import check_backend, check_results, conformance_requests
from hotmess.testing.embedder import check_embedder
from hotmess.testing.producer import check_producer
from hotmess.testing.registration import (
    HEAVY_MODULES,
    check_light_import,
    check_plugin_registration,
    registered,
)
from hotmess.testing.task import check_questions, check_task, garbage_results, random_unicode

__all__ = [
    "HEAVY_MODULES",
    "check_backend",
    "check_embedder",
    "check_light_import",
    "check_plugin_registration",
    "check_producer",
    "check_questions",
    "check_results",
    "check_task",
    "conformance_requests",
    "garbage_results",
    "random_unicode",
    "registered",
]
