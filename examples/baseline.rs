//! The physical limit of the HTTP stack here: a bare warp server that reads
//! the request body and answers a small JSON document, with the same runtime
//! as tokenward. The load benchmark measures tokenward against it in the
//! same run.
//!
//! `cargo run --release --example baseline -- 127.0.0.1:0`

use std::net::SocketAddr;

use warp::Filter;

fn main() -> std::io::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(tokenward::worker_threads())
        .enable_all()
        .build()?
        .block_on(serve())
}

async fn serve() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // Bound as tokenward binds, so both send their answers alike.
    let listener = tokenward::listen(addr)?;
    println!("baseline listening on http://{}", listener.local_addr()?);
    let route = warp::body::bytes().map(|_body: warp::hyper::body::Bytes| {
        warp::reply::with_header(
            r#"{"success":true,"data":{"valid":true,"code":"VALID"}}"#,
            "content-type",
            "application/json",
        )
    });
    warp::serve(route).incoming(listener).run().await;
    Ok(())
}
