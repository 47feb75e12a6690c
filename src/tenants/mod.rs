//! Many tenants in one deployment: the tenants file that lists them ([`config`]), and the
//! sharding that spreads them over processes ([`shard`], with its flags in
//! [`shard_args`]).

pub mod config;
pub mod shard;
pub mod shard_args;
