//! Wheels and sdists for tests.
