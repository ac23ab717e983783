"""The layering DESIGN.md asks for, checked on the source (every import,
lazy ones included)."""
import ast

import pytest

from tests.support import ROOT

KERNEL = ROOT / "services" / "common"
PURE = ["members/domain.py", "members/meetings.py", "members/record.py",
        "proposals/domain.py", "proposals/statistics.py", "proposals/unit_suggestions.py",
        "proposals/history_import.py", "liaison/citizen.py", "liaison/consult.py",
        "liaison/opinions.py", "liaison/stations.py", "liaison/tasks.py", "liaison/stats.py",
        "liaison/history_import.py", "notify/rules.py", "notify/policy.py"]


def imports(path):
    """Every module ``path`` imports, as absolute names."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package if node.level else ""
            for _ in range(max(node.level - 1, 0)):
                base = base.rsplit(".", 1)[0]
            module = ".".join(p for p in (base, node.module) if p)
            if node.module is None:
                out.update(f"{module}.{a.name}" for a in node.names)
            else:
                out.add(module)
    return out


def kernel_graph():
    graph = {}
    for path in KERNEL.glob("*.py"):
        graph[path.stem] = {m.split(".")[2] for m in imports(path)
                            if m.startswith("services.common.") and m.count(".") >= 2}
    return graph


def test_the_kernel_imports_no_service_nor_deploy_and_has_no_cycle():
    for path in KERNEL.glob("*.py"):
        outside = [m for m in imports(path) if m.startswith("deploy")
                   or (m.startswith("services.") and not m.startswith("services.common"))]
        assert not outside, (path.name, outside)
    graph = kernel_graph()

    def reach(start, node, seen):
        for nxt in graph.get(node, ()):
            if nxt == start:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reach(start, nxt, seen):
                    return True
        return False
    cyclic = [m for m in graph if reach(m, m, set())]
    assert not cyclic, cyclic


@pytest.mark.parametrize("module", PURE)
def test_domain_code_imports_neither_nameko_nor_pymongo(module):
    graph = kernel_graph()
    seen, todo = set(), [ROOT / "services" / module]
    while todo:
        path = todo.pop()
        for m in imports(path):
            assert not m.startswith(("nameko", "pymongo", "eventlet")), (module, path.name, m)
            if m.startswith("services.common.") and m.split(".")[2] not in seen:
                seen.add(m.split(".")[2])
                todo.append(KERNEL / f"{m.split('.')[2]}.py")
    assert seen <= set(graph)
