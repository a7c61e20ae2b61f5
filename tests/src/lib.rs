//! Cross-process tests live in tests/ and tests/python.
