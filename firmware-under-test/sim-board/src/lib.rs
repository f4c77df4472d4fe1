//! sim-board
