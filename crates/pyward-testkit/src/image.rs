//! Container images for tests: docker-archive (`docker save` layout), OCI image layout folders
//! and OCI archives, built from in-memory layers.
