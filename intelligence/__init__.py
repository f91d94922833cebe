"""icos-intelligence, the deciding side: the shared vocabulary, settings, the pure decisions, the decision database,
actuation through the meta-kernel adapters, offline evaluation, and the runtime that wires and runs them.

Each subpackage is one role; ``pyproject.toml``'s import contracts say which may import which
(``docs/architecture.md`` draws them).
"""
