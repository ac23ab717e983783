"""The fault suite's summary table, printed at the end of the run."""
from tests.faults import harness


def pytest_terminal_summary(terminalreporter):
    if harness.RESULTS:
        terminalreporter.write_sep("=", "fault injection")
        for line in harness.table(harness.RESULTS):
            terminalreporter.write_line(line)
