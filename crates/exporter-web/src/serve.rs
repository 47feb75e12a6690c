//! The accept loop for an exporter's HTTP server (and for test doubles of the services it
//! talks to).
//!
//! It serves HTTP/1.1 and HTTP/2 with hyper on a listener the caller bound, and when asked
//! to shut down stops accepting and lets requests in flight finish. Over TLS
//! (`--web.config.file`) each connection is handshaken with the rustls configuration in
//! force at that moment, so renewed certificates apply to the next connection without a
//! restart.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The response type of every handler served here: small, fully buffered bodies.
pub type HttpResponse = Response<Full<Bytes>>;

/// A body a handler may answer with: [`HttpResponse`]'s, or one streamed as it is sent.
pub trait ResponseBody:
    hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> ResponseBody for B where
    B: hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}

/// How long a client may take to complete the TLS handshake before it is dropped, so that
/// idle or stalled connections cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause after a failed accept: running out of file descriptors must not end the
/// server, nor spin it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How long a scrape or page in flight may take to finish once shutdown begins; then the
/// server stops regardless.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The TLS side of a listener: the rustls configuration for the next connection (`None`
/// serves plain HTTP), and whether HTTP/2 is offered.
#[derive(Clone)]
pub struct Transport {
    pub tls: Arc<dyn Fn() -> Option<Arc<ServerConfig>> + Send + Sync>,
    pub http2: bool,
}

impl Transport {
    /// Plain HTTP/1.1 and h2c.
    pub fn plain() -> Transport {
        Transport {
            tls: Arc::new(|| None),
            http2: true,
        }
    }
}

/// Serves `handler` on `listener` in plain HTTP until `shutdown` is cancelled, then waits
/// for the connections in flight to finish.
///
/// `handler` receives each request and the peer address.
/// The handler's responses may have any body (a test double may stream one).
pub async fn serve<H, F, B>(listener: TcpListener, shutdown: CancellationToken, handler: H)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: ResponseBody,
{
    serve_with(listener, Transport::plain(), shutdown, handler).await;
}

/// [`serve`], over TLS when `transport` says so.
pub async fn serve_with<H, F, B>(
    listener: TcpListener,
    transport: Transport,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: ResponseBody,
{
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let service = hyper::service::service_fn(move |request| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler(request, peer).await) }
        });
        let watcher = graceful.watcher();
        let http2 = transport.http2;
        let tls = transport.tls.clone();
        tokio::spawn(async move {
            // Asked here, not in the accept loop, so a reload never holds up accepting.
            match tls() {
                None => connection(stream, service, http2, watcher, peer).await,
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    // A client speaking plain HTTP, or presenting no acceptable certificate,
                    // fails here and is never served.
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection(stream, service, http2, watcher, peer).await,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, %peer, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// Serves one accepted connection until it ends or the server shuts down.
async fn connection<I, S, B>(
    io: I,
    service: S,
    http2: bool,
    watcher: hyper_util::server::graceful::Watcher,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: ResponseBody,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let builder = if http2 { builder } else { builder.http1_only() };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(error) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

/// A response with the given status, content type and body.
pub fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("static status and header are valid")
}
