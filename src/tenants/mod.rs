//! Many tenants in one deployment: the tenants file that lists them ([`config`]), the
//! sharding that spreads them over processes ([`shard`], with its flags in
//! [`shard_args`]), which tenants this process reads ([`plan`]), and running them side by
//! side, each isolated from the others, with reloads that start, stop and change tenants
//! without touching the rest ([`running`]); [`args`] holds the other many-tenant flags.

pub mod args;
pub mod config;
mod credential;
pub mod plan;
pub mod running;
pub mod shard;
pub mod shard_args;
