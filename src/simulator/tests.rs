//! Tests of the simulated tenant.
