//! The sharding flags, `--shard`, `--total-shards` and `--shard.auto`, checked into a
//! [`ShardPlan`]: a fixed shard, known at start, or one that [`ShardPlan::resolve`] finds
//! from the pod's StatefulSet.

use clap::Args;

use super::shard::{auto_sharding, Cluster, ShardError, Sharding};

/// The sharding flags.
#[derive(Debug, Args)]
pub struct ShardArgs {
    /// This process's shard: it reads the tenants that a consistent hash of the tenant id
    /// assigns to shard N of --total-shards [default: 0].
    #[arg(long = "shard", value_name = "N")]
    pub shard: Option<u32>,
    /// Processes the tenants are spread over, each with its own --shard [default: 1; with
    /// --shard.auto, the StatefulSet's replicas].
    #[arg(long = "total-shards", value_name = "M")]
    pub total_shards: Option<u32>,
    /// Take the shard from the StatefulSet this pod belongs to: the ordinal from POD_INDEX
    /// (downward API of the label apps.kubernetes.io/pod-index) or the -N of POD_NAME (else
    /// HOSTNAME), the total from --total-shards or else the StatefulSet's replicas, read
    /// through the Kubernetes API (needs get on statefulsets).
    #[arg(long = "shard.auto")]
    pub auto: bool,
}

/// Sharding flags that contradict each other.
#[derive(Debug, thiserror::Error)]
pub enum ShardArgsError {
    #[error("--total-shards must be at least 1 (the default): 0 shards would read no tenant")]
    NoShards,
    #[error("--shard={shard} is not below --total-shards={total}; shards count from 0, so give --shard a value from 0 to {last}, or raise --total-shards", last = total - 1)]
    ShardNotBelowTotal { shard: u32, total: u32 },
    #[error("--shard and --shard.auto are both given; --shard.auto takes the shard from the pod's StatefulSet, so leave out --shard (or --shard.auto)")]
    ShardWithAuto,
}

impl ShardArgsError {
    /// The flag at fault.
    pub fn flag(&self) -> &'static str {
        match self {
            ShardArgsError::NoShards => "--total-shards",
            ShardArgsError::ShardNotBelowTotal { .. } => "--shard",
            ShardArgsError::ShardWithAuto => "--shard.auto",
        }
    }
}

/// How this process finds its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardPlan {
    /// `--shard` and `--total-shards` (or neither: every tenant).
    Fixed(Sharding),
    /// `--shard.auto`, with `--total-shards` when given.
    Auto { total: Option<u32> },
}

impl ShardArgs {
    /// Checks the flags.
    pub fn plan(&self) -> Result<ShardPlan, ShardArgsError> {
        if self.total_shards == Some(0) {
            return Err(ShardArgsError::NoShards);
        }
        if self.auto {
            if self.shard.is_some() {
                return Err(ShardArgsError::ShardWithAuto);
            }
            return Ok(ShardPlan::Auto {
                total: self.total_shards,
            });
        }
        let (shard, total) = (self.shard.unwrap_or(0), self.total_shards.unwrap_or(1));
        Sharding::new(shard, total)
            .map(ShardPlan::Fixed)
            .ok_or(ShardArgsError::ShardNotBelowTotal { shard, total })
    }
}

impl ShardPlan {
    /// This process's shard; with `--shard.auto`, from the pod it runs in (see
    /// [`auto_sharding`]), with its own client that trusts only the cluster's CA.
    pub async fn resolve(&self) -> Result<Sharding, ShardError> {
        self.resolve_in(&Cluster::in_cluster()).await
    }

    /// As [`resolve`](Self::resolve), in `cluster`.
    pub async fn resolve_in(&self, cluster: &Cluster) -> Result<Sharding, ShardError> {
        match *self {
            ShardPlan::Fixed(sharding) => Ok(sharding),
            ShardPlan::Auto { total } => auto_sharding(total, cluster).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        shard: ShardArgs,
    }

    fn plan(args: &[&str]) -> Result<ShardPlan, ShardArgsError> {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .shard
            .plan()
    }

    #[test]
    fn without_flags_one_process_reads_every_tenant() {
        assert_eq!(plan(&[]).unwrap(), ShardPlan::Fixed(Sharding::SINGLE));
    }

    #[test]
    fn an_explicit_shard_is_below_its_total() {
        assert_eq!(
            plan(&["--shard=2", "--total-shards=3"]).unwrap(),
            ShardPlan::Fixed(Sharding {
                ordinal: 2,
                total: 3
            })
        );
        assert_eq!(
            plan(&["--total-shards=4"]).unwrap(),
            ShardPlan::Fixed(Sharding {
                ordinal: 0,
                total: 4
            })
        );
        let error = plan(&["--shard=3", "--total-shards=3"]).unwrap_err();
        assert!(
            matches!(
                error,
                ShardArgsError::ShardNotBelowTotal { shard: 3, total: 3 }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("from 0 to 2"), "{error}");
        assert_eq!(error.flag(), "--shard");
        let error = plan(&["--shard=1"]).unwrap_err();
        assert!(error.to_string().contains("--total-shards=1"), "{error}");
        let error = plan(&["--total-shards=0"]).unwrap_err();
        assert!(matches!(error, ShardArgsError::NoShards), "{error}");
        assert_eq!(error.flag(), "--total-shards");
        assert!(Cli::try_parse_from(["x", "--shard=-1"]).is_err());
    }

    #[test]
    fn automatic_sharding_takes_a_total_but_no_shard() {
        assert_eq!(
            plan(&["--shard.auto"]).unwrap(),
            ShardPlan::Auto { total: None }
        );
        assert_eq!(
            plan(&["--shard.auto", "--total-shards=5"]).unwrap(),
            ShardPlan::Auto { total: Some(5) }
        );
        let error = plan(&["--shard.auto", "--shard=0"]).unwrap_err();
        assert!(matches!(error, ShardArgsError::ShardWithAuto), "{error}");
        assert_eq!(error.flag(), "--shard.auto");
        assert!(matches!(
            plan(&["--shard.auto", "--total-shards=0"]),
            Err(ShardArgsError::NoShards)
        ));
    }

    #[tokio::test]
    async fn a_fixed_plan_resolves_without_the_cluster() {
        let plan = plan(&["--shard=1", "--total-shards=2"]).unwrap();
        assert_eq!(
            plan.resolve().await.unwrap(),
            Sharding {
                ordinal: 1,
                total: 2
            }
        );
    }
}
