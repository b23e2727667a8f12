//! Unit tests of the purge step with mocked SDK responses.
