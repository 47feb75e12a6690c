//! The landing page: what the exporter reads and how it goes, tenant by tenant and source
//! by source, with the fix for whatever is wrong.

use std::fmt::Write;

use super::fleet::{SourceView, TenantShown};
use super::http::Web;
use crate::counting::poller::PollReport;
use crate::counting::store::StoreStatus;
use crate::source::Function;
use exporter_web::web_config::ClientAuth;

impl Web {
    /// What `--web.config.file` turns on, in words.
    fn access_summary(&self) -> String {
        let access = self.web_config.current();
        let mut parts = vec![match (&access.tls, access.client_auth) {
            (None, _) => "plain HTTP".to_owned(),
            (Some(_), ClientAuth::NoClientCert) => "TLS".to_owned(),
            (Some(_), policy) => format!("TLS, client certificates: {policy:?}"),
        }];
        if !access.users.is_empty() {
            let n = access.users.len();
            let plural = if n == 1 { "" } else { "s" };
            parts.push(format!("basic authentication ({n} user{plural})"));
        }
        if let Some(limit) = access.rate_limit {
            parts.push(format!(
                "rate limit: bursts of {}, then one request per {}",
                limit.burst,
                humantime::format_duration(limit.interval)
            ));
        }
        parts.join("; ")
    }

    pub(super) fn landing_page(&self) -> String {
        let a = &self.about;
        let s = &a.schedule;
        let show = |d: std::time::Duration| humantime::format_duration(d).to_string();
        let mut page = String::with_capacity(4096);
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Teams Voice Exporter</title>\
             <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td{{padding:0 1em 0 0}}</style></head><body>\
             <h1>Teams Voice Exporter</h1><p>Version {version}. Prometheus metrics for Microsoft Teams telephony (Direct Routing and PSTN calls), read from Microsoft Graph call logs.</p>\
             <ul><li><a href=\"{metrics}\">Metrics</a></li><li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>\
             <h2>Configuration</h2><table>\
             <tr><td>Tenants</td><td>{tenant}{demo}</td></tr><tr><td>Credential</td><td>{credential}</td></tr>\
             <tr><td>Graph</td><td>{graph}</td></tr>\
             <tr><td>Collected</td><td>{collected}</td></tr>\
             <tr><td>Schedule</td><td>recent window {recent} every {interval};{late} lookback {lookback} every {sweep}</td></tr>\
             <tr><td>Access</td><td>{access}</td></tr></table>",
            version = env!("CARGO_PKG_VERSION"),
            metrics = escape(&self.telemetry_path),
            tenant = escape(&a.tenants),
            demo = if a.demo { " (simulated tenant, --demo)" } else { "" },
            credential = a.credential,
            graph = escape(&a.graph_endpoint),
            collected = self.collected(),
            recent = show(s.recent_window),
            interval = show(s.poll_interval),
            late = if s.has_late_tier() {
                format!(" late window {} every {};", show(s.late_window), show(s.late_interval))
            } else {
                String::new()
            },
            lookback = show(s.lookback),
            sweep = show(s.sweep_interval),
            access = self.access_summary(),
        );
        let tenants = self.fleet.tenants();
        match tenants.as_slice() {
            [tenant] => {
                if let Some(trouble) = tenant.trouble() {
                    let _ = write!(
                        page,
                        "<p><strong>Not read</strong>: {}</p>",
                        escape(&trouble)
                    );
                }
                for source in &tenant.sources {
                    polling_section(&mut page, source, tenant.sources.len() > 1);
                }
                if let Some(quality) = &tenant.metrics.quality {
                    quality_section(&mut page, quality);
                }
                self.budget_section(&mut page, &tenant.sources);
                state_section(&mut page, &tenant.sources);
            }
            tenants => {
                self.budget_section(&mut page, &[]);
                tenants_section(&mut page, tenants);
            }
        }
        page.push_str("</body></html>\n");
        page
    }

    /// The functions read, and how to turn on those that are not.
    fn collected(&self) -> String {
        Function::ALL
            .into_iter()
            .map(|function| {
                let flag = function.short_name();
                let state = if self.functions.contains(&function) {
                    format!("on (turn off with <code>--no-collector.{flag}</code>)")
                } else {
                    format!("<strong>off</strong> (<code>--no-collector.{flag}</code>)")
                };
                format!(
                    "{} <code>{}</code>: {state}",
                    function.description(),
                    function.name()
                )
            })
            .collect::<Vec<_>>()
            .join("<br>")
    }

    fn budget_section(&self, page: &mut String, sources: &[SourceView]) {
        let budget = &self.about.budget;
        let _ = write!(
            page,
            "<h2>Request budget</h2><p>At most {} requests per call-log function and {} per tenant, for each tenant on its own ({}). ",
            budget.per_function,
            budget.per_tenant,
            if self.about.demo {
                "the simulated tenant enforces Graph's limits 30 times faster, as the demo polls"
            } else {
                "Graph documents 50/1m and 200/1m"
            }
        );
        page.push_str("</p>");
        for source in sources {
            page.push_str("<p>");
            if sources.len() > 1 {
                let _ = write!(page, "<code>{}</code>: ", source.function.name());
            }
            match source.status.feasibility() {
                None => page.push_str("The schedule's need is estimated after the first poll."),
                Some(f) if f.verdict.fits() => {
                    let _ = write!(page, "The schedule fits: {}.", escape(&f.to_string()));
                }
                Some(f) => {
                    let _ = write!(
                        page,
                        "<strong>The schedule does not fit</strong>: {}. So {}.",
                        escape(&f.to_string()),
                        escape(f.remedy())
                    );
                }
            }
            page.push_str("</p>");
        }
    }
}

fn state_section(page: &mut String, sources: &[SourceView]) {
    page.push_str("<h2>State</h2>");
    for source in sources {
        page.push_str("<p>");
        if sources.len() > 1 {
            let _ = write!(page, "<code>{}</code>: ", source.function.name());
        }
        state_paragraph(page, source.state.as_deref());
    }
}

/// Every tenant on one line: whether it is read, since when, and what is wrong with the fix.
fn tenants_section(page: &mut String, tenants: &[std::sync::Arc<TenantShown>]) {
    let down = tenants.iter().filter(|t| !t.is_up()).count();
    let _ = write!(
        page,
        "<h2>Tenants</h2><p>{} tenants, {down} not read at their latest poll (<code>teams_voice_exporter_tenant_up</code>).</p>\
         <table><tr><th>Tenant</th><th>Id</th><th>Credential</th><th>Read</th><th>Last success</th><th>Problem and fix</th></tr>",
        tenants.len()
    );
    for tenant in tenants {
        let read = if tenant.is_up() {
            "yes"
        } else if !tenant.has_read_once() {
            "not yet"
        } else {
            "<strong>no</strong>"
        };
        let last_success = tenant
            .sources
            .iter()
            .filter_map(|s| s.status.last_success())
            .min()
            .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
        let trouble = tenant.trouble().map(|t| escape(&t)).unwrap_or_default();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{read}</td><td>{last_success}</td><td>{trouble}</td></tr>",
            escape(&tenant.name),
            escape(&tenant.id),
            escape(&tenant.credential),
        );
    }
    page.push_str("</table>");
}

/// What the state of one source is kept in, and whether saving it works; ends the paragraph.
fn state_paragraph(page: &mut String, state: Option<&StoreStatus>) {
    let Some(state) = state else {
        page.push_str("In memory only (no <code>--state.path</code>): a restart sets the counters back to zero, and calls that appear while the exporter is down are never counted.</p>");
        return;
    };
    let path = escape(&state.path.display().to_string());
    let health = state.health();
    match health.problem {
        None => {
            let last = health
                .last_commit
                .map_or_else(|| "not yet".to_owned(), |t| t.to_rfc3339());
            let _ = write!(
                page,
                "Saved to <code>{path}</code> after every poll; last saved {last}.</p>"
            );
        }
        Some(problem) => {
            let _ = write!(
                page,
                "<strong>Not saved</strong>: {attempts} attempts to write <code>{path}</code> failed since {since}; the last said: {error}.                      Polling and serving go on with the state in memory ({pending} remembered ids not yet written) and every poll tries again.                      Make the file and its directory writable or free disk space: until then a restart loses what was counted since the last save.</p>",
                attempts = problem.failed_attempts,
                since = problem.since.to_rfc3339(),
                error = escape(&problem.error),
                pending = problem.unsaved_changes,
            );
        }
    }
}

/// How one source's polling goes, under its function's name when there are several.
fn polling_section(page: &mut String, source: &SourceView, named: bool) {
    if named {
        let _ = write!(page, "<h2>Polling {}</h2><table>", source.function.name());
    } else {
        page.push_str("<h2>Polling</h2><table>");
    }
    let ready = if source.status.is_ready() {
        "yes"
    } else {
        "no: waiting for the first poll to read its window"
    };
    let _ = write!(page, "<tr><td>Ready</td><td>{ready}</td></tr>");
    let last_success = source
        .status
        .last_success()
        .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
    let _ = write!(
        page,
        "<tr><td>Last successful poll</td><td>{last_success}</td></tr>"
    );
    if let Some(poll) = source.status.last_poll() {
        poll_row(page, "Last poll", &poll);
    }
    if let Some(sweep) = source.status.last_sweep() {
        poll_row(page, "Last sweep", &sweep);
    }
    if let Some((kind, since)) = source.status.long_read() {
        let _ = write!(
            page,
            "<tr><td>Running</td><td>{} since {} (recent polls go on beside it)</td></tr>",
            kind.as_str(),
            since.to_rfc3339()
        );
    }
    if let Some(since) = source.status.counting_since() {
        let _ = write!(
            page,
            "<tr><td>Counting since</td><td>calls that started from {} (earlier calls are history, or have left the lookback, and are not counted)</td></tr>",
            since.to_rfc3339()
        );
    }
    page.push_str("</table>");
}

/// The call-quality collector (`--collector.call-quality`): records counted, waiting and
/// given up since the start.
fn quality_section(page: &mut String, quality: &crate::quality::metrics::QualityMetrics) {
    let given_up = |reason: &str| quality.given_up.with_label_values(&[reason]).get();
    let _ = write!(
        page,
        "<h2>Call quality</h2><table><tr><td>Call records counted</td><td>{fetched} since the start</td></tr><tr><td>Waiting for Graph</td><td>{pending} records (published 15-60 minutes after the call)</td></tr><tr><td>Given up</td><td>{not_published} never published, {queue_full} beyond --call-quality.max-pending, {error} unreadable</td></tr><tr><td>Streams not placed</td><td>{not_placed} (not between a Teams client and the trunk side: a mediation server or gateway)</td></tr></table>",
        fetched = quality.records_fetched.get(),
        pending = quality.pending.get(),
        not_published = given_up("not_published"),
        queue_full = given_up("queue_full"),
        error = given_up("error"),
        not_placed = quality.not_placed.get(),
    );
}

/// A table row on how `poll` went.
fn poll_row(page: &mut String, title: &str, poll: &PollReport) {
    let outcome = match &poll.result {
        Ok(read) => format!(
            "read {} rows in {} pages, {} new",
            read.rows, read.pages, poll.ingested
        ),
        Err(error) => format!("<strong>failed</strong>: {}", escape(error)),
    };
    let _ = write!(
        page,
        "<tr><td>{title}</td><td>{kind} of {from} to {to}, finished {at} after {took:.1?}: {outcome}</td></tr>",
        kind = poll.kind.as_str(),
        from = poll.window.from.to_rfc3339(),
        to = poll.window.to.to_rfc3339(),
        at = poll.finished_at.to_rfc3339(),
        took = poll.took,
    );
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
