//! fake-server
