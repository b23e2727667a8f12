//! Unit tests of the permissions step with mocked SDK responses.
