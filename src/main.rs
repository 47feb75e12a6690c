//! The `teams-voice-exporter` command: parses flags, sets up logging, and hands over to the
//! library.

#![forbid(unsafe_code)]

use clap::Parser;
use teams_voice_exporter::cli::{Cli, Command, EnvSecrets, LogArgs, LogFormat, LogLevel};
use teams_voice_exporter::{app, backfill, check};

fn main() {
    let cli = Cli::parse();
    let (log, quiet) = match &cli.command {
        #[cfg(feature = "demo")]
        Some(Command::Simulate(args)) => (&args.log, false),
        // The report is the output; routine log lines would only clutter it.
        Some(Command::Check(args)) => (&args.exporter.log, true),
        // The progress bar and the summary are the output; warnings still show.
        Some(Command::Backfill(args)) => (&args.exporter.log, true),
        None => (&cli.exporter.log, false),
    };
    init_logging(log, quiet);
    // Read once, here, so the library never touches the process environment itself.
    let env = EnvSecrets {
        client_secret: std::env::var("AZURE_CLIENT_SECRET").ok(),
        certificate_password: std::env::var("AZURE_CLIENT_CERTIFICATE_PASSWORD").ok(),
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("teams-voice-exporter: cannot start the async runtime: {error}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            #[cfg(feature = "demo")]
            Some(Command::Simulate(args)) => app::run_simulator(*args).await,
            Some(Command::Check(args)) => {
                let code = check::run(args.exporter, env, std::io::stdout()).await;
                std::process::exit(code);
            }
            Some(Command::Backfill(args)) => {
                let code = backfill::run(*args, env).await;
                std::process::exit(code);
            }
            None => app::run_exporter(cli.exporter, env).await,
        }
    });
    if let Err(error) = result {
        eprintln!("teams-voice-exporter: error: {error}");
        std::process::exit(error.exit_code());
    }
}

fn init_logging(log: &LogArgs, quiet: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = match log.level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info if quiet => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    // Libraries below us (hyper, reqwest) stay at warn unless tracing everything.
    let filter = tracing_subscriber::EnvFilter::new(if level == "trace" {
        "trace".to_owned()
    } else {
        format!("warn,teams_voice_exporter={level}")
    });
    let registry = tracing_subscriber::registry().with(filter);
    match log.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .with_span_name(false)
                    .with_span_path(false)
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}
