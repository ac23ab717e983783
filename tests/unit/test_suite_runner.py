"""`make test`'s runner (tests/parallel.py): what it prints last when a group fails."""
from tests.parallel import failure_summary

FAILED_RUN = """\
tests/e2e/test_x.py F.                                                   [100%]

=================================== FAILURES ===================================
_________________________________ test_thing ___________________________________

    def test_thing():
        value = 1
>       assert value == 2, "the county's tasks"
E       AssertionError: the county's tasks
E       assert 1 == 2

tests/e2e/test_x.py:3: AssertionError
=========================== short test summary info ============================
FAILED tests/e2e/test_x.py::test_thing - AssertionError: the county's tasks
========================= 1 failed, 1 passed in 0.02s ==========================
"""


def test_a_failed_group_is_summed_up_by_its_test_line_and_reason():
    assert failure_summary(FAILED_RUN).splitlines() == [
        "E       AssertionError: the county's tasks",
        "E       assert 1 == 2",
        "tests/e2e/test_x.py:3: AssertionError",
        "FAILED tests/e2e/test_x.py::test_thing - AssertionError: the county's tasks",
    ]
