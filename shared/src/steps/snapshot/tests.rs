//! Unit tests of the snapshot step with mocked SDK responses.
