"""The layout rules of the test suite, checked by reading the test files with ``ast``.

Shared fakes and fixtures live in ``tests/helpers`` (``tests/integration/support.py`` for the
integration-only ones): a test module never imports another test module, and the unit tests
never import the integration support.  Every test method says in a docstring what it checks.
"""

import ast
import os

from twisted.trial.unittest import SynchronousTestCase

TESTS = os.path.dirname(os.path.abspath(__file__))

# Files whose tests may lack a docstring: none.
UNDOCUMENTED_FOR_NOW = set()


def python_files():
    """Every .py file under tests/, as (path relative to tests/, dotted package name)."""
    for directory, dirs, files in os.walk(TESTS):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.relpath(os.path.join(directory, name), TESTS)
                yield path, ".".join(["tests"] + path.split(os.sep)[:-1])


def parse(path):
    with open(os.path.join(TESTS, path), encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def imported_modules(tree, package):
    """(line, dotted name) of every module an import in ``tree`` (a file of ``package``) may
    load, including the ``from package import name`` form where ``name`` is a module, and
    relative imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def is_test_module(name):
    return name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")


class ImportRuleTests(SynchronousTestCase):
    """Shared code lives in tests/helpers, never in a test module."""

    def test_files_found(self):
        """The scan sees the unit tests, the integration tests and the helpers."""
        paths = {path for path, _ in python_files()}
        self.assertIn("test_layout.py", paths)
        self.assertIn(os.path.join("integration", "test_daemon.py"), paths)
        self.assertIn(os.path.join("helpers", "dispatch.py"), paths)

    def test_no_test_module_imports_another(self):
        """No file under tests/ imports a test module (tests.test_*, tests.integration.test_*)."""
        found = []
        for path, package in python_files():
            for line, name in imported_modules(parse(path), package):
                if is_test_module(name):
                    found.append(f"{path}:{line} imports {name}")
        self.assertEqual(found, [])

    def test_unit_tests_do_not_import_integration_support(self):
        """tests/test_*.py import nothing from tests.integration (which uses the real reactor)."""
        found = []
        for path, package in python_files():
            if os.sep in path or not path.startswith("test_"):
                continue
            for line, name in imported_modules(parse(path), package):
                if name == "tests.integration" or name.startswith("tests.integration."):
                    found.append(f"{path}:{line} imports {name}")
        self.assertEqual(found, [])

    def test_checker_sees_every_import_form(self):
        """The import scan catches plain, from, package-from and relative imports."""
        source = ("import tests.test_a\nfrom tests.test_b import X\nfrom tests import test_c\n"
                  "def f():\n    from .test_d import Y\n"
                  "from tests.integration import test_e\nfrom tests.helpers import Z\n")
        names = {name for _, name in imported_modules(ast.parse(source), "tests")}
        self.assertEqual(sorted(n for n in names if is_test_module(n)),
                         ["tests.integration.test_e", "tests.test_a", "tests.test_b",
                          "tests.test_c", "tests.test_d"])
        self.assertFalse(is_test_module("tests.helpers.Z"))


class DocstringRuleTests(SynchronousTestCase):
    """Every test method says what it checks."""

    def test_every_test_method_has_a_docstring(self):
        """Each test* method of a class under tests/ has a docstring (minus the files still
        to be documented on other branches)."""
        missing = []
        for path, _ in python_files():
            if path in UNDOCUMENTED_FOR_NOW:
                continue
            for node in ast.walk(parse(path)):
                if not isinstance(node, ast.ClassDef):
                    continue
                for item in node.body:
                    if (isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                            and item.name.startswith("test")
                            and ast.get_docstring(item) is None):
                        missing.append(f"{path}:{item.lineno} {node.name}.{item.name}")
        self.assertEqual(missing, [])

    def test_skip_list_names_existing_files(self):
        """Every file on the temporary skip list exists (a renamed file leaves no stale entry)."""
        for name in sorted(UNDOCUMENTED_FOR_NOW):
            self.assertTrue(os.path.exists(os.path.join(TESTS, name)), name)
