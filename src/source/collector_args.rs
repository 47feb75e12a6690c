//! The `--collector.*` flags: which call-log functions are read, in node_exporter's style
//! (each on by default, `--no-collector.NAME` turns one off, the last of the two wins).

use clap::Args;

use super::Function;

/// The collectors' flags.
#[derive(Debug, Args)]
pub struct CollectorArgs {
    /// Read getDirectRoutingCalls: calls through the tenant's own SBC trunks (on by default;
    /// turn it off with --no-collector.direct-routing).
    #[arg(
        long = "collector.direct-routing",
        overrides_with = "no_direct_routing"
    )]
    direct_routing: bool,
    #[arg(
        long = "no-collector.direct-routing",
        overrides_with = "direct_routing",
        hide = true
    )]
    no_direct_routing: bool,
    /// Read getPstnCalls: Calling Plan and Operator Connect calls (on by default; turn it
    /// off with --no-collector.pstn).
    #[arg(long = "collector.pstn", overrides_with = "no_pstn")]
    pstn: bool,
    #[arg(long = "no-collector.pstn", overrides_with = "pstn", hide = true)]
    no_pstn: bool,
}

/// Every collector was turned off.
#[derive(Debug, thiserror::Error)]
#[error("every collector is turned off (--no-collector.direct-routing and --no-collector.pstn): there is nothing to read. Leave at least one on")]
pub struct NoCollector;

impl CollectorArgs {
    /// The functions to read, in [`Function::ALL`]'s order; at least one.
    pub fn functions(&self) -> Result<Vec<Function>, NoCollector> {
        let functions: Vec<Function> = Function::ALL
            .into_iter()
            .filter(|function| match function {
                Function::DirectRoutingCalls => !self.no_direct_routing,
                Function::PstnCalls => !self.no_pstn,
            })
            .collect();
        if functions.is_empty() {
            return Err(NoCollector);
        }
        Ok(functions)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        collectors: CollectorArgs,
    }

    fn functions(args: &[&str]) -> Result<Vec<Function>, NoCollector> {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .collectors
            .functions()
    }

    #[test]
    fn every_collector_is_on_unless_turned_off_and_the_last_flag_wins() {
        let both = vec![Function::DirectRoutingCalls, Function::PstnCalls];
        assert_eq!(functions(&[]).unwrap(), both);
        assert_eq!(
            functions(&["--no-collector.pstn"]).unwrap(),
            [Function::DirectRoutingCalls]
        );
        assert_eq!(
            functions(&["--no-collector.direct-routing"]).unwrap(),
            [Function::PstnCalls]
        );
        assert_eq!(
            functions(&["--no-collector.pstn", "--collector.pstn"]).unwrap(),
            both
        );
        assert_eq!(
            functions(&["--collector.pstn", "--no-collector.pstn"]).unwrap(),
            [Function::DirectRoutingCalls]
        );
        let error = functions(&["--no-collector.pstn", "--no-collector.direct-routing"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("at least one"), "{error}");
    }
}
