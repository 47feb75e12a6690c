//! Many tenants in one process: the tenants file ([`config`]), which of its tenants this
//! process reads ([`shard`]), and running them side by side, each isolated from the others,
//! with reloads that start, stop and change tenants without touching the rest
//! ([`running`]).

pub mod args;
pub mod config;
mod credential;
pub mod plan;
pub mod running;
pub mod shard;
